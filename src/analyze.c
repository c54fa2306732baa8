#include "adfd/analyze.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/util.h"

int analyze_hop_frames(const feature_params *p, double hop_seconds) {
    long frames = lround(hop_seconds * p->sample_rate / p->hop_length);
    return frames < 1 ? 1 : (int)frames;
}

double analyze_window_seconds(const feature_params *p) {
    return (double)p->chunk_frames * p->hop_length / p->sample_rate;
}

static int aggregate_is_known(const char *name) {
    return !strcmp(name, "rms") || !strcmp(name, "mean") || !strcmp(name, "max");
}

int analyzer_init(analyzer *a, cnn_model *m, int hop_frames, const char *aggregate) {
    memset(a, 0, sizeof *a);
    if (hop_frames < 1) return adfd_fail("the window hop must be at least one frame");
    const char *name = aggregate && aggregate[0] ? aggregate
                       : m->aggregate[0]         ? m->aggregate
                                                 : "rms";
    if (!aggregate_is_known(name))
        return adfd_fail("unknown aggregate '%s' (rms, mean or max)", name);
    a->model = m;
    a->window_params = m->features;
    a->window_params.chunk_hop = hop_frames;
    a->hop_frames = hop_frames;
    snprintf(a->aggregate, sizeof a->aggregate, "%s", name);
    a->batch = ADFD_ANALYZE_BATCH;
    a->frontend = mel_frontend_create(&a->window_params);
    if (!a->frontend) return adfd_fail("cannot create the '%s' front end", m->features.preset);
    return 0;
}

void analyzer_free(analyzer *a) {
    if (a->frontend) mel_frontend_free(a->frontend);
    memset(a, 0, sizeof *a);
}

/* The samples the preset keeps, [*begin, *end): features_clip_chunks removes blocks of hop_length
 * samples whose mean square is more than trim_db below the loudest block from both ends
 * (features.h), and its offsets count frames from *begin. The same rule here maps them back to
 * the decoded clip; test_analyze_windows checks that the two agree on a clip with silence. */
static void trimmed_bounds(const feature_params *p, const float *x, int64_t n, int64_t *begin,
                           int64_t *end) {
    *begin = 0;
    *end = n;
    if (!p->trim_silence) return;
    int block = p->hop_length;
    int64_t n_blocks = (n + block - 1) / block;
    double *energy = mallocCheck(sizeof(double) * n_blocks);
    double peak = 0.0;
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t s0 = b * block, s1 = s0 + block < n ? s0 + block : n;
        double sum = 0.0;
        for (int64_t i = s0; i < s1; i++)
            sum += (double)x[i] * x[i];
        energy[b] = sum / (double)(s1 - s0);
        if (energy[b] > peak) peak = energy[b];
    }
    if (peak > 0.0) {
        double threshold = peak * pow(10.0, -p->trim_db / 10.0);
        int64_t first = 0, last = n_blocks - 1;
        while (energy[first] < threshold)
            first++;
        while (energy[last] < threshold)
            last--;
        *begin = first * block;
        *end = (last + 1) * block < n ? (last + 1) * block : n;
    }
    free(energy);
}

/* Samples the preset needs for one whole window; shorter (trimmed) clips are padded. */
static int64_t window_min_samples(const feature_params *p) {
    return (int64_t)(p->chunk_frames - 1) * p->hop_length +
           (p->center ? 0 : p->n_fft - p->hop_length);
}

/* Window scores in batches: chunks is [n][n_mels][chunk_frames]. */
static int predict_windows(analyzer *a, const float *chunks, int n, float *scores) {
    size_t chunk_size = (size_t)a->window_params.n_mels * a->window_params.chunk_frames;
    for (int i = 0; i < n; i += a->batch) {
        int count = n - i < a->batch ? n - i : a->batch;
        if (model_predict(a->model, chunks + (size_t)i * chunk_size, count, scores + i) != 0)
            return -1;
    }
    return 0;
}

int analyze_clip(analyzer *a, const float *x, int64_t n, analyze_result *r) {
    memset(r, 0, sizeof *r);
    const feature_params *p = &a->window_params;
    float *chunks = NULL;
    int32_t *offsets = NULL;
    int n_chunks = 0;
    if (n <= 0) return adfd_fail("the clip has no samples");
    if (features_clip_chunks(a->frontend, x, n, &chunks, &offsets, &n_chunks) != 0) return -1;
    if (n_chunks <= 0) {
        free(chunks);
        free(offsets);
        return adfd_fail("the front end produced no window");
    }
    float *scores = mallocCheck(sizeof(float) * n_chunks);
    if (predict_windows(a, chunks, n_chunks, scores) != 0) {
        free(chunks);
        free(offsets);
        free(scores);
        return -1;
    }
    int64_t begin, end;
    trimmed_bounds(p, x, n, &begin, &end);
    r->seconds = (double)n / p->sample_rate;
    r->trim_seconds = (double)begin / p->sample_rate;
    r->padded = end - begin < window_min_samples(p);
    double frame_seconds = (double)p->hop_length / p->sample_rate;
    double window_seconds = analyze_window_seconds(p);
    r->n_windows = n_chunks;
    r->windows = mallocCheck(sizeof(analyze_window) * n_chunks);
    for (int i = 0; i < n_chunks; i++) {
        analyze_window *w = &r->windows[i];
        w->offset_frames = offsets[i];
        w->start_seconds = r->trim_seconds + offsets[i] * frame_seconds;
        w->end_seconds = fmin(w->start_seconds + window_seconds, r->seconds);
        w->score = scores[i];
    }
    r->clip_score = model_aggregate(a->aggregate, scores, n_chunks);
    r->is_spoof = r->clip_score >= a->model->threshold;
    free(chunks);
    free(offsets);
    free(scores);
    return 0;
}

void analyze_result_free(analyze_result *r) {
    free(r->windows);
    memset(r, 0, sizeof *r);
}

int analyze_top_windows(const analyze_result *r, int k, int *idx) {
    int count = k < r->n_windows ? k : r->n_windows;
    /* Selection by insertion into the sorted prefix: k is small, n_windows may be large. */
    int filled = 0;
    for (int i = 0; i < r->n_windows && count > 0; i++) {
        float s = r->windows[i].score;
        if (filled == count && s <= r->windows[idx[filled - 1]].score) continue;
        int j = filled < count ? filled++ : filled - 1;
        while (j > 0 && r->windows[idx[j - 1]].score < s) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return count;
}
