#include "adfd/evaluate.h"

#include <stdlib.h>
#include <string.h>

#include "adfd/csv.h"
#include "adfd/dataset.h"
#include "adfd/util.h"

enum { EVAL_BLOCK = 64 }; /* chunks read and scored at a time */

int evaluate_split(feature_store *store, cnn_model *model, int split, const char *aggregate,
                   split_scores *out) {
    memset(out, 0, sizeof *out);
    int n = 0;
    for (int64_t r = 0; r < store->n_rows; r++)
        n += store->clip_split[store->row_clip[r]] == split;
    if (n == 0)
        return adfd_fail("the %s split has no chunks in this feature file", split_name(split));
    out->n_chunks = n;
    out->chunk_row = mallocCheck(sizeof(int64_t) * n);
    out->chunk_clip = mallocCheck(sizeof(int) * n);
    out->chunk_score = mallocCheck(sizeof(float) * n);
    out->chunk_label = mallocCheck(sizeof(int) * n);
    int k = 0;
    for (int64_t r = 0; r < store->n_rows; r++) {
        int c = store->row_clip[r];
        if (store->clip_split[c] != split) continue;
        out->chunk_row[k] = r;
        out->chunk_clip[k] = c;
        out->chunk_label[k] = store->clip_label[c];
        k++;
    }
    float *block = mallocCheck(sizeof(float) * EVAL_BLOCK * ADFD_N_MELS * ADFD_CHUNK_FRAMES);
    for (int start = 0; start < n; start += EVAL_BLOCK) {
        int b = n - start < EVAL_BLOCK ? n - start : EVAL_BLOCK;
        if (store_read_rows(store, out->chunk_row + start, b, block) ||
            model_predict(model, block, b, out->chunk_score + start)) {
            free(block);
            split_scores_free(out);
            return -1;
        }
    }
    free(block);

    /* Clips in clip-table order; a clip's chunks need not be contiguous in the file. */
    int *first = mallocCheck(sizeof(int) * (store->n_clips ? store->n_clips : 1));
    int *count = callocCheck(store->n_clips ? store->n_clips : 1, sizeof(int));
    for (int i = 0; i < n; i++)
        count[out->chunk_clip[i]]++;
    for (int c = 0; c < store->n_clips; c++)
        out->n_clips += count[c] > 0;
    out->clip = mallocCheck(sizeof(int) * out->n_clips);
    out->clip_score = mallocCheck(sizeof(float) * out->n_clips);
    out->clip_label = mallocCheck(sizeof(int) * out->n_clips);
    out->clip_chunks = mallocCheck(sizeof(int) * out->n_clips);
    int total = 0;
    for (int c = 0; c < store->n_clips; c++)
        first[c] = total, total += count[c];
    float *grouped = mallocCheck(sizeof(float) * n);
    int *fill = callocCheck(store->n_clips ? store->n_clips : 1, sizeof(int));
    for (int i = 0; i < n; i++) {
        int c = out->chunk_clip[i];
        grouped[first[c] + fill[c]++] = out->chunk_score[i];
    }
    for (int c = 0, j = 0; c < store->n_clips; c++) {
        if (!count[c]) continue;
        out->clip[j] = c;
        out->clip_score[j] = model_aggregate(aggregate, grouped + first[c], count[c]);
        out->clip_label[j] = store->clip_label[c];
        out->clip_chunks[j] = count[c];
        j++;
    }
    free(first), free(count), free(grouped), free(fill);
    return 0;
}

void split_scores_free(split_scores *s) {
    free(s->chunk_row), free(s->chunk_clip), free(s->chunk_score), free(s->chunk_label);
    free(s->clip), free(s->clip_score), free(s->clip_label), free(s->clip_chunks);
    memset(s, 0, sizeof *s);
}

int evaluate_choose_threshold(const split_scores *s, const char *method, double *threshold) {
    if (!strcmp(method, "eer")) {
        eer_point e;
        if (metrics_eer(s->clip_score, s->clip_label, s->n_clips, &e)) return -1;
        *threshold = e.threshold;
        return 0;
    }
    if (!strcmp(method, "youden"))
        return metrics_youden_threshold(s->clip_score, s->clip_label, s->n_clips, threshold);
    return adfd_fail("unknown threshold method '%s' (eer or youden)", method);
}

int evaluate_metrics(const split_scores *s, int replicates, uint64_t seed, eval_metrics *m) {
    if (metrics_summarize(s->clip_score, s->clip_label, s->n_clips, m->threshold, replicates, seed,
                          &m->clip) ||
        metrics_summarize(s->chunk_score, s->chunk_label, s->n_chunks, m->threshold, replicates,
                          seed, &m->chunk))
        return adfd_fail("%s split: %s", m->split, adfd_error());
    return 0;
}

static int write_scores_csv(const char *path, const feature_store *store, const split_scores *s) {
    atomic_file af;
    if (atomic_file_open(&af, path)) return -1;
    fprintf(af.fp, "file,speaker,label,score,chunks\n");
    for (int j = 0; j < s->n_clips; j++) {
        int c = s->clip[j];
        csv_write_field(af.fp, store->clip_file[c]);
        fputc(',', af.fp);
        csv_write_field(af.fp, store->speaker_name[store->clip_speaker[c]]);
        fprintf(af.fp, ",%s,%.7g,%d\n", label_name(s->clip_label[j]), s->clip_score[j],
                s->clip_chunks[j]);
    }
    return atomic_file_commit(&af);
}

static int write_chunks_csv(const char *path, const feature_store *store, const split_scores *s) {
    atomic_file af;
    if (atomic_file_open(&af, path)) return -1;
    fprintf(af.fp, "file,offset,label,score\n");
    for (int i = 0; i < s->n_chunks; i++) {
        csv_write_field(af.fp, store->clip_file[s->chunk_clip[i]]);
        fprintf(af.fp, ",%d,%s,%.7g\n", store->row_offset[s->chunk_row[i]],
                label_name(s->chunk_label[i]), s->chunk_score[i]);
    }
    return atomic_file_commit(&af);
}

int evaluate_write(const char *dir, const feature_store *store, const split_scores *s,
                   const eval_metrics *m, int plots) {
    char path[4352], title[128];
    if (make_dirs(dir)) return -1;
    path_join(path, sizeof path, dir, "scores.csv");
    if (write_scores_csv(path, store, s)) return -1;
    path_join(path, sizeof path, dir, "chunks.csv");
    if (write_chunks_csv(path, store, s)) return -1;
    path_join(path, sizeof path, dir, "metrics.json");
    if (report_write_metrics_json(path, m)) return -1;
    if (!plots) return 0;
    snprintf(title, sizeof title, "%s split, clips, threshold %.4g", m->split, m->threshold);
    if (report_plot_roc(dir, s->clip_score, s->clip_label, s->n_clips, s->chunk_score,
                        s->chunk_label, s->n_chunks, m->threshold, m->split) ||
        report_plot_confusion(dir, "confusion", &m->clip.cm, title) ||
        report_plot_score_histograms(dir, s->clip_score, s->clip_label, s->n_clips, m->threshold,
                                     title))
        return -1;
    return 0;
}
