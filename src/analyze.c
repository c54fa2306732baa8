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
    a->segment_frames = ADFD_ANALYZE_SEGMENT_FRAMES;
    /* analyze trims with features_trim_bounds itself (it needs the trimmed start for the
     * times), so the front end it calls gets the trimmed signal and must not trim again. */
    feature_params untrimmed = a->window_params;
    untrimmed.trim_silence = 0;
    a->frontend = mel_frontend_create(&untrimmed);
    if (!a->frontend) return adfd_fail("cannot create the '%s' front end", m->features.preset);
    return 0;
}

void analyzer_free(analyzer *a) {
    if (a->frontend) mel_frontend_free(a->frontend);
    memset(a, 0, sizeof *a);
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

/* Scores the windows of one piece of the trimmed signal whose first frame is global frame
 * first_frame, keeping those that start in [keep_from, keep_to), appended to r (capacity *cap). */
static int score_piece(analyzer *a, const float *piece, int64_t len, int64_t first_frame,
                       int64_t keep_from, int64_t keep_to, analyze_result *r, int *cap) {
    const feature_params *p = &a->window_params;
    float *chunks = NULL;
    int32_t *offsets = NULL;
    int n = 0;
    if (features_clip_chunks(a->frontend, piece, len, &chunks, &offsets, &n) != 0) return -1;
    int i0 = 0, i1;
    while (i0 < n && first_frame + offsets[i0] < keep_from)
        i0++;
    for (i1 = i0; i1 < n && first_frame + offsets[i1] < keep_to; i1++)
        ;
    if (r->n_windows + (i1 - i0) > *cap) {
        *cap = 2 * (r->n_windows + (i1 - i0));
        analyze_window *grown = realloc(r->windows, sizeof(analyze_window) * *cap);
        if (!grown) adfd_die(__FILE__, __LINE__, "out of memory for %d windows", *cap);
        r->windows = grown;
    }
    float *scores = mallocCheck(sizeof(float) * (i1 > i0 ? i1 - i0 : 1));
    size_t chunk_size = (size_t)p->n_mels * p->chunk_frames;
    int status = predict_windows(a, chunks + (size_t)i0 * chunk_size, i1 - i0, scores);
    double frame_seconds = (double)p->hop_length / p->sample_rate;
    for (int i = i0; status == 0 && i < i1; i++) {
        analyze_window *w = &r->windows[r->n_windows++];
        w->offset_frames = (int32_t)(first_frame + offsets[i]);
        w->start_seconds = r->trim_seconds + w->offset_frames * frame_seconds;
        w->end_seconds = fmin(w->start_seconds + analyze_window_seconds(p), r->seconds);
        w->score = scores[i - i0];
    }
    free(scores);
    free(chunks);
    free(offsets);
    return status;
}

static int64_t greatest_common_divisor(int64_t a, int64_t b) {
    return b ? greatest_common_divisor(b, a % b) : a;
}

/* A long clip is scored piece by piece so that only one piece's windows are in memory at a time.
 * Pieces of the trimmed signal start on multiples of `unit` = lcm(hop, chunk_frames) frames, so
 * the window grid and the seed preset's padding to a multiple of chunk_frames line up with one
 * call on the whole signal, and reach `margin` frames (>= n_fft/2 samples) beyond the windows
 * they keep, so that every kept frame is computed from the same samples as in that call (the
 * STFT's reflect padding only touches frames in the margins). The last piece runs to the end and
 * keeps everything from its start, with the preset's end rules (padding, the window flush with
 * the end). A clip of one piece is exactly one features_clip_chunks call. */
static int score_trimmed(analyzer *a, const float *signal, int64_t len, analyze_result *r) {
    const feature_params *p = &a->window_params;
    int64_t hop = a->hop_frames, cf = p->chunk_frames;
    int64_t unit = hop / greatest_common_divisor(hop, cf) * cf;
    int64_t unit_samples = unit * p->hop_length;
    int64_t margin = unit * ((p->n_fft / 2 + unit_samples - 1) / unit_samples);
    int64_t clip_frames = len / p->hop_length + 1;
    int64_t piece = a->segment_frames < clip_frames ? a->segment_frames : clip_frames;
    piece = piece < unit ? unit : (piece + unit - 1) / unit * unit;
    int cap = 0;
    for (int64_t t0 = 0;; t0 += piece) {
        int64_t first = t0 > margin ? t0 - margin : 0;
        int64_t end_sample = (t0 + piece + cf + margin) * p->hop_length;
        int last = end_sample >= len;
        if (last) end_sample = len;
        int64_t begin_sample = first * p->hop_length;
        if (score_piece(a, signal + begin_sample, end_sample - begin_sample, first, t0,
                        last ? INT64_MAX : t0 + piece, r, &cap) != 0)
            return -1;
        if (last) return 0;
    }
}

int analyze_clip(analyzer *a, const float *x, int64_t n, analyze_result *r) {
    memset(r, 0, sizeof *r);
    const feature_params *p = &a->window_params;
    if (n <= 0) return adfd_fail("the clip has no samples");
    int64_t begin, end;
    features_trim_bounds(p, x, n, &begin, &end);
    r->seconds = (double)n / p->sample_rate;
    r->trim_seconds = (double)begin / p->sample_rate;
    r->padded = end - begin < window_min_samples(p);
    if (score_trimmed(a, x + begin, end - begin, r) != 0) {
        analyze_result_free(r);
        return -1;
    }
    if (r->n_windows == 0) {
        analyze_result_free(r);
        return adfd_fail("the front end produced no window");
    }
    float *scores = mallocCheck(sizeof(float) * r->n_windows);
    for (int i = 0; i < r->n_windows; i++)
        scores[i] = r->windows[i].score;
    r->clip_score = model_aggregate(a->aggregate, scores, r->n_windows);
    r->is_spoof = r->clip_score >= a->model->threshold;
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
