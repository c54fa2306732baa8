/* split: speaker-disjoint assignment by an exact subset-sum search over speakers' clip counts. */
#include "adfd/split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/csv.h"
#include "adfd/util.h"

static int bit_is_set(const uint64_t *row, int64_t s) {
    return (int)((row[s >> 6] >> (s & 63)) & 1u);
}

/* next = prev | (prev << shift): the sums reachable without and with one more speaker. */
static void add_speaker_sums(uint64_t *next, const uint64_t *prev, int64_t words, int64_t shift) {
    int64_t word_shift = shift >> 6;
    int bit_shift = (int)(shift & 63);
    for (int64_t i = words - 1; i >= 0; i--) {
        int64_t j = i - word_shift;
        uint64_t moved = 0;
        if (j >= 0) moved = prev[j] << bit_shift;
        if (j >= 1 && bit_shift) moved |= prev[j - 1] >> (64 - bit_shift);
        next[i] = prev[i] | moved;
    }
}

/* Chooses which of the m speakers (clip counts count[0..m)) go to test: *in_test[k] = 1 for
 * them. Row k of the table holds the sums of clips reachable with the first k speakers of a
 * seeded order; the best sum is the reachable one closest to the target (the smaller on a tie),
 * and walking back from it, wherever both "with" and "without" a speaker reach the sum, the seed
 * decides. Cost: m * (total/64) words of memory and time. */
static void choose_test_speakers(const int *count, int m, double test_fraction, uint64_t seed,
                                 int *in_test) {
    int64_t total = 0;
    for (int k = 0; k < m; k++)
        total += count[k];
    int *order = mallocCheck((size_t)m * sizeof(int));
    for (int k = 0; k < m; k++)
        order[k] = k;
    rng_shuffle_int(order, m, seed, 0);
    int64_t words = total / 64 + 1;
    uint64_t *reach = callocCheck((size_t)(m + 1) * (size_t)words, sizeof(uint64_t));
    reach[0] = 1; /* the empty set sums to 0 */
    for (int k = 0; k < m; k++)
        add_speaker_sums(reach + (k + 1) * words, reach + k * words, words, count[order[k]]);
    const uint64_t *all = reach + (int64_t)m * words;
    double target = test_fraction * (double)total;
    int64_t best = 0;
    for (int64_t s = 0; s <= total; s++)
        if (bit_is_set(all, s) && fabs((double)s - target) < fabs((double)best - target)) best = s;
    int64_t s = best;
    for (int k = m; k >= 1; k--) {
        int speaker = order[k - 1];
        const uint64_t *prev = reach + (int64_t)(k - 1) * words;
        int without = bit_is_set(prev, s);
        int with = s >= count[speaker] && bit_is_set(prev, s - count[speaker]);
        int take = with && (!without || (rng_hash64(seed, 1, (uint64_t)k) & 1));
        in_test[speaker] = take;
        if (take) s -= count[speaker];
    }
    ADFD_CHECK(s == 0, "subset-sum walk-back ended at %lld, not 0", (long long)s);
    free(reach);
    free(order);
}

int split_assign(dataset *ds, const char *const *holdout, int n_holdout, double test_fraction,
                 uint64_t seed) {
    int *held = callocCheck((size_t)ds->n_speakers, sizeof(int));
    for (int h = 0; h < n_holdout; h++) {
        int s = dataset_find_speaker(ds, holdout[h]);
        if (s < 0) {
            free(held);
            return adfd_fail("%s: held-out speaker '%s' is not in the data (%d speakers; names "
                             "must match the speaker column exactly)",
                             ds->source_path, holdout[h], ds->n_speakers);
        }
        held[s] = 1;
    }
    /* The speakers left for train/test, in order of first appearance, and their clip counts. */
    int *clips_of = callocCheck((size_t)ds->n_speakers, sizeof(int));
    for (int i = 0; i < ds->n_clips; i++)
        clips_of[ds->clips[i].speaker]++;
    int *free_speaker = mallocCheck((size_t)ds->n_speakers * sizeof(int));
    int *count = mallocCheck((size_t)ds->n_speakers * sizeof(int));
    int m = 0;
    for (int s = 0; s < ds->n_speakers; s++)
        if (!held[s]) free_speaker[m] = s, count[m++] = clips_of[s];
    int rc = 0;
    if (m == 0) {
        rc = adfd_fail("%s: every speaker is held out: none left for train and test",
                       ds->source_path);
    } else {
        int *in_test = callocCheck((size_t)m, sizeof(int));
        choose_test_speakers(count, m, test_fraction, seed, in_test);
        int *split_of = mallocCheck((size_t)ds->n_speakers * sizeof(int));
        for (int s = 0; s < ds->n_speakers; s++)
            split_of[s] = SPLIT_HOLDOUT;
        for (int k = 0; k < m; k++)
            split_of[free_speaker[k]] = in_test[k] ? SPLIT_TEST : SPLIT_TRAIN;
        for (int i = 0; i < ds->n_clips; i++)
            ds->clips[i].split = split_of[ds->clips[i].speaker];
        free(split_of);
        free(in_test);
    }
    free(count);
    free(free_speaker);
    free(clips_of);
    free(held);
    return rc;
}

void split_count(const dataset *ds, split_counts counts[3]) {
    memset(counts, 0, 3 * sizeof *counts);
    int *seen = callocCheck((size_t)ds->n_speakers * 3, sizeof(int));
    for (int i = 0; i < ds->n_clips; i++) {
        const clip_entry *c = &ds->clips[i];
        if (c->split < SPLIT_TRAIN || c->split > SPLIT_HOLDOUT) continue;
        split_counts *k = &counts[c->split];
        k->clips++;
        if (c->label == LABEL_SPOOF)
            k->fake++;
        else
            k->real++;
        if (!seen[c->speaker * 3 + c->split]) k->speakers++;
        seen[c->speaker * 3 + c->split] = 1;
    }
    free(seen);
}

void split_print_table(const dataset *ds, FILE *out) {
    split_counts k[3];
    split_count(ds, k);
    split_counts total = {0, 0, 0, 0};
    for (int s = 0; s < 3; s++) {
        total.clips += k[s].clips, total.real += k[s].real, total.fake += k[s].fake;
        total.speakers += k[s].speakers; /* speakers are disjoint across splits */
    }
    fprintf(out, "%-8s %8s %8s %8s %8s %7s\n", "split", "clips", "real", "fake", "speakers",
            "share");
    for (int s = 0; s < 3; s++)
        fprintf(out, "%-8s %8d %8d %8d %8d %7.4f\n", split_name(s), k[s].clips, k[s].real,
                k[s].fake, k[s].speakers, total.clips ? (double)k[s].clips / total.clips : 0.0);
    fprintf(out, "%-8s %8d %8d %8d %8d %7.4f\n", "total", total.clips, total.real, total.fake,
            total.speakers, 1.0);
}

int split_write_csv(const dataset *ds, const char *path) {
    atomic_file af;
    if (atomic_file_open(&af, path) != 0) return -1;
    fputs("file,speaker,label,split\n", af.fp);
    for (int i = 0; i < ds->n_clips; i++) {
        const clip_entry *c = &ds->clips[i];
        csv_write_field(af.fp, c->file);
        fputc(',', af.fp);
        csv_write_field(af.fp, ds->speakers[c->speaker]);
        fprintf(af.fp, ",%s,%s\n", label_name(c->label), split_name(c->split));
    }
    return atomic_file_commit(&af);
}
