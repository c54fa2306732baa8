/* features: mel spectrogram with FFTW (batched, plan made once per front end), the HTK mel
 * filterbank of torchaudio, and the per-preset clip pipeline (trim, repeat-pad, chunks).
 * See include/adfd/features.h for every numerical choice. */
#include "adfd/features.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/util.h"
#include "features_kernels.h"

/* Frames per mel batch (BATCH) and per FFTW call (GROUP). The real frames go through FFTW's
 * complex transforms, which its SIMD codelets make about twice as fast as its r2c plans here, in
 * one of two layouts (src/features_kernels.h), whichever FFTW runs faster for n_fft:
 *  - even/odd: a frame's n_fft samples as n_fft/2 complex ones (even samples real, odd
 *    imaginary), split into the real spectrum after. For a power of two (default: 512) FFTW's
 *    n_fft/2-point plans are vectorised with AVX throughout;
 *  - frame pairs: two frames in the real and imaginary parts of one n_fft-point transform,
 *    separated after. For n_fft 400 (seed) FFTW's 200-point plans have a radix-10 pass it can
 *    only vectorise with SSE2, while 400 = 20 x 20 runs in AVX: 22% less FFT time per frame, and
 *    this split needs no twiddles (seed mel_spectrogram 17-20% faster). For 512, pairs were
 *    8-13% slower: FFTW's 512-point transform costs as much per frame as two 256-point ones.
 * FFTW works frame-major [transforms][dist] (a bin-major stride or split re/im arrays are 2-5x
 * slower); the split then stores the group's power bin-major into the batch's [n_freq][BATCH]
 * (src/features_kernels.h), so that the mel and log loops run over frames in vectors. A group is
 * windowed, transformed and split before the next one: its frames and spectra (2 x 13 KB for
 * n_fft 400) stay in L1, where a whole batch's (2 x 53 KB) did not. */
enum { BATCH = FEATURES_BATCH, GROUP = FEATURES_GROUP };

struct mel_frontend {
    feature_params p;
    int n_freq;          /* n_fft/2 + 1 */
    float *window;       /* [n_fft], zero outside the centred win_length */
    int pairs;           /* 1: frame pairs layout, 0: even/odd (see above) */
    int dist;            /* complex values from one transform to the next in frames and spec */
    float *frames;       /* [transforms][2 dist]: the windowed samples (fftwf_malloc) */
    fftwf_complex *spec; /* [transforms][dist]: their FFTs (fftwf_malloc) */
    float *twiddle;      /* [n_fft/2][2]: exp(-2 pi i k / n_fft) */
    float *power;        /* [n_freq][BATCH], 4 |X|^2 (fftwf_malloc: aligned) */
    int use_avx2;        /* the AVX2 kernels (same results) */
    fftwf_plan plan;
    mel_filter *fb_filters; /* [n_mels], sparse filterbank (src/features_kernels.h) */
    float *fb_weight;       /* [nonzeros], the weights / 4 (the power is 4 |X|^2) */
    mel_sparse_fb fb;       /* the two arrays above, for the kernels */
    float *fb_dense;        /* [n_freq][n_mels], torchaudio layout */
};

int feature_params_preset(feature_params *p, const char *preset) {
    memset(p, 0, sizeof *p);
    p->sample_rate = 16000;
    p->hop_length = 200;
    p->n_mels = ADFD_N_MELS;
    p->f_min = 0.0f;
    p->f_max = 8000.0f;
    p->center = 1;
    p->power = 2.0f;
    p->chunk_frames = ADFD_CHUNK_FRAMES;
    if (!strcmp(preset, "seed")) {
        p->n_fft = p->win_length = 400;
        p->chunk_hop = ADFD_CHUNK_FRAMES;
    } else if (!strcmp(preset, "default")) {
        p->n_fft = p->win_length = 512;
        p->log_db = 1;
        p->trim_silence = 1;
        p->trim_db = 40.0f;
        p->repeat_pad = 1;
        p->chunk_hop = 40;
    } else {
        return adfd_fail("unknown feature preset '%s' (expected seed or default)", preset);
    }
    strcpy(p->preset, preset);
    return 0;
}

/* torch.linspace(a, b, steps) in float32 as torch 1.13 computes it on x86-64 (AVX2 build): the
 * first half counts up from a, the second half down from b, and blocks of 8 values are built as
 * base + i*step from the block's first value (its vectorised kernel; the tail is scalar). */
static void torch_linspace_f32(float *out, float a, float b, int steps) {
    enum { VEC = 8 };
    float step = (b - a) / (float)(steps - 1);
    int half = steps / 2, idx = 0;
    int vectorised = steps / (2 * VEC) * (2 * VEC);
    for (; idx < vectorised; idx += VEC) {
        float base = idx < half ? a + step * (float)idx : b - step * (float)(steps - idx - 1);
        for (int i = 0; i < VEC; i++)
            out[idx + i] = base + (float)i * step;
    }
    for (; idx < steps; idx++)
        out[idx] = idx < half ? a + step * (float)idx : b - step * (float)(steps - idx - 1);
}

/* torchaudio.functional.melscale_fbanks(n_freq, f_min, f_max, n_mels, sample_rate, norm=None,
 * mel_scale="htk"): triangles between points equally spaced on the HTK mel scale; fb is
 * [n_freq][n_mels]. Done in float32 with torch's operation order so that the weights are
 * bit-identical to torchaudio's: exact arithmetic moves weights by up to 1.5e-5, which changes
 * narrow low bands by 2e-4 relative. */
static void melscale_fbanks(float *fb, int n_freq, double f_min, double f_max, int n_mels,
                            int sample_rate) {
    int n_pts = n_mels + 2;
    float *all_freqs = mallocCheck((size_t)n_freq * sizeof(float));
    float *f_pts = mallocCheck((size_t)n_pts * sizeof(float));
    torch_linspace_f32(all_freqs, 0.0f, (float)(sample_rate / 2), n_freq);
    /* m_min, m_max are Python floats (double); the points are a float32 linspace */
    torch_linspace_f32(f_pts, (float)(2595.0 * log10(1.0 + f_min / 700.0)),
                       (float)(2595.0 * log10(1.0 + f_max / 700.0)), n_pts);
    for (int i = 0; i < n_pts; i++)
        f_pts[i] = 700.0f * (powf(10.0f, f_pts[i] / 2595.0f) - 1.0f);
    for (int k = 0; k < n_freq; k++)
        for (int m = 0; m < n_mels; m++) {
            float down = (-1.0f * (f_pts[m] - all_freqs[k])) / (f_pts[m + 1] - f_pts[m]);
            float up = (f_pts[m + 2] - all_freqs[k]) / (f_pts[m + 2] - f_pts[m + 1]);
            float w = fminf(down, up);
            fb[(size_t)k * n_mels + m] = w > 0.0f ? w : 0.0f;
        }
    free(all_freqs);
    free(f_pts);
}

static void build_sparse_filterbank(mel_frontend *fe) {
    int n_mels = fe->p.n_mels, n_freq = fe->n_freq;
    fe->fb_filters = mallocCheck((size_t)n_mels * sizeof(mel_filter));
    fe->fb_weight = mallocCheck((size_t)n_freq * n_mels * sizeof(float));
    int nnz = 0;
    for (int m = 0; m < n_mels; m++) {
        int first = n_freq, last = -1;
        for (int k = 0; k < n_freq; k++)
            if (fe->fb_dense[(size_t)k * n_mels + m] != 0.0f) {
                if (first == n_freq) first = k;
                last = k;
            }
        mel_filter f = {m, first < n_freq ? first : 0, last - first + 1 > 0 ? last - first + 1 : 0,
                        nnz};
        for (int k = first; k <= last; k++)
            fe->fb_weight[nnz++] = 0.25f * fe->fb_dense[(size_t)k * n_mels + m];
        /* insertion by n_bins, after the filters of as many bins: a stable order */
        int i = m;
        for (; i > 0 && fe->fb_filters[i - 1].n_bins > f.n_bins; i--)
            fe->fb_filters[i] = fe->fb_filters[i - 1];
        fe->fb_filters[i] = f;
    }
    fe->fb = (mel_sparse_fb){n_mels, fe->fb_filters, fe->fb_weight};
}

/* FFTs per group: two frames in each (pairs) or one */
static int group_transforms(const mel_frontend *fe) {
    return fe->pairs ? GROUP / 2 : GROUP;
}

/* The batched FFT of a group: [transforms][dist] complex in, [transforms][dist] out. */
static fftwf_plan plan_fft(mel_frontend *fe, unsigned flags) {
    int n = fe->pairs ? fe->p.n_fft : fe->p.n_fft / 2;
    return fftwf_plan_many_dft(1, &n, group_transforms(fe), (fftwf_complex *)fe->frames, NULL, 1,
                               fe->dist, fe->spec, NULL, 1, fe->dist, FFTW_FORWARD, flags);
}

char *mel_frontend_measure_wisdom(const feature_params *params, int n_params) {
    mel_frontend **fe = callocCheck((size_t)n_params, sizeof *fe);
    fftwf_plan *plan = callocCheck((size_t)n_params, sizeof *plan);
    for (int i = 0; i < n_params; i++)
        if (!(fe[i] = mel_frontend_create(&params[i]))) return NULL;
    fftwf_forget_wisdom();
    for (int i = 0; i < n_params; i++) {
        plan[i] = plan_fft(fe[i], FFTW_MEASURE);
        ADFD_CHECK(plan[i] != NULL, "FFTW could not plan a %d-point transform", params[i].n_fft);
    }
    char *wisdom = fftwf_export_wisdom_to_string();
    for (int i = 0; i < n_params; i++) {
        fftwf_destroy_plan(plan[i]);
        mel_frontend_free(fe[i]);
    }
    free(fe);
    free(plan);
    return wisdom;
}

mel_frontend *mel_frontend_create(const feature_params *p) {
    if (p->power != 2.0f) return adfd_fail("features: only power 2 is supported"), NULL;
    if (p->n_mels != ADFD_N_MELS || p->chunk_frames != ADFD_CHUNK_FRAMES)
        return adfd_fail("features: n_mels must be %d and chunk_frames %d", ADFD_N_MELS,
                         ADFD_CHUNK_FRAMES),
               NULL;
    if (p->n_fft < 16 || p->n_fft % 2 || p->win_length < 1 || p->win_length > p->n_fft ||
        p->hop_length < 1 || p->chunk_hop < 1 || p->sample_rate < 1 || p->f_max <= p->f_min)
        return adfd_fail("features: invalid parameters (n_fft %d, win_length %d, hop %d)", p->n_fft,
                         p->win_length, p->hop_length),
               NULL;
    mel_frontend *fe = callocCheck(1, sizeof *fe);
    fe->p = *p;
    int n_fft = p->n_fft;
    fe->n_freq = n_fft / 2 + 1;
    fe->window = callocCheck((size_t)n_fft, sizeof(float));
    int left = (n_fft - p->win_length) / 2;
    for (int i = 0; i < p->win_length; i++)
        fe->window[left + i] =
            (float)(0.5 - 0.5 * cos(2.0 * 3.14159265358979323846 * i / p->win_length));
    fe->pairs = (n_fft & (n_fft - 1)) != 0; /* not a power of two: see the top of this file */
    /* Transforms are 8 complex values further apart than their length: with n_fft 512 a 2 KiB
     * stride put the same bin of every frame in the same L1 sets, and the split, which reads one
     * bin across the frames, missed the cache (default preset 15% slower). The pairs' split also
     * reads Z[n_fft], a copy of Z[0], there. */
    fe->dist = (fe->pairs ? n_fft : n_fft / 2) + 8;
    size_t frame_floats = (size_t)group_transforms(fe) * 2 * fe->dist;
    fe->frames = fftwf_malloc(frame_floats * sizeof(float));
    fe->spec = fftwf_malloc(frame_floats * sizeof(float));
    fe->power = fftwf_malloc((size_t)BATCH * fe->n_freq * sizeof(float));
    ADFD_CHECK(fe->frames && fe->spec && fe->power, "out of memory for FFT buffers");
    fe->twiddle = mallocCheck((size_t)n_fft * sizeof(float));
    for (int k = 0; k < n_fft / 2; k++) {
        fe->twiddle[2 * k] = (float)cos(2.0 * 3.14159265358979323846 * k / n_fft);
        fe->twiddle[2 * k + 1] = (float)-sin(2.0 * 3.14159265358979323846 * k / n_fft);
    }
    memset(fe->frames, 0, frame_floats * sizeof(float));
    memset(fe->power, 0, (size_t)BATCH * fe->n_freq * sizeof(float));
    /* FFTW_MEASURE finds faster plans than FFTW_ESTIMATE (n_fft 512: 20%) but may find another
     * one on each rank or run, which changes the last bits. So measured plans are compiled in as
     * wisdom (src/features_wisdom.c) and taken with FFTW_WISDOM_ONLY: every process gets the same
     * plan. Where they do not apply (another FFTW build, a CPU without AVX), FFTW_ESTIMATE. */
    static int wisdom_loaded;
    if (!wisdom_loaded) wisdom_loaded = fftwf_import_wisdom_from_string(features_fftw_wisdom) || 1;
    fe->plan = plan_fft(fe, FFTW_MEASURE | FFTW_WISDOM_ONLY);
    if (!fe->plan) fe->plan = plan_fft(fe, FFTW_ESTIMATE);
    ADFD_CHECK(fe->plan != NULL, "FFTW could not plan a %d-point r2c transform", n_fft);
    fe->fb_dense = mallocCheck((size_t)fe->n_freq * p->n_mels * sizeof(float));
    melscale_fbanks(fe->fb_dense, fe->n_freq, p->f_min, p->f_max, p->n_mels, p->sample_rate);
    build_sparse_filterbank(fe);
#ifdef HAVE_FEATURES_AVX2
    fe->use_avx2 = cpu_has_avx2_fma();
#endif
    return fe;
}

void mel_frontend_free(mel_frontend *fe) {
    if (!fe) return;
    fftwf_destroy_plan(fe->plan);
    fftwf_free(fe->frames);
    fftwf_free(fe->spec);
    fftwf_free(fe->power);
    free(fe->twiddle);
    free(fe->window);
    free(fe->fb_filters);
    free(fe->fb_weight);
    free(fe->fb_dense);
    free(fe);
}

int mel_frontend_use_avx2(mel_frontend *fe, int enable) {
#ifdef HAVE_FEATURES_AVX2
    fe->use_avx2 = enable && cpu_has_avx2_fma();
#endif
    return fe->use_avx2;
}

const feature_params *mel_frontend_params(const mel_frontend *fe) {
    return &fe->p;
}

void mel_frontend_filterbank(const mel_frontend *fe, float *fb) {
    memcpy(fb, fe->fb_dense, (size_t)fe->n_freq * fe->p.n_mels * sizeof(float));
}

int64_t mel_frontend_frames(const mel_frontend *fe, int64_t n_samples) {
    const feature_params *p = &fe->p;
    int64_t padded = p->center ? n_samples + 2 * (p->n_fft / 2) : n_samples;
    if (padded < p->n_fft) return 0;
    return (padded - p->n_fft) / p->hop_length + 1;
}

/* Index into x[0..n) of position i of the reflect-padded signal (torch "reflect": the edge
 * sample is not repeated), folded again and again for very short clips. */
static int64_t reflect_index(int64_t i, int64_t n) {
    if (i >= 0 && i < n) return i;
    if (i < 0 && -i < n) return -i; /* one reflection: all but the shortest clips */
    if (i >= n && i < 2 * (n - 1)) return 2 * (n - 1) - i;
    if (n == 1) return 0;
    int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

/* Copies frame t of the (padded) signal times the window into dst[n_fft]. */
static inline __attribute__((always_inline)) void
window_frame(const mel_frontend *fe, const float *x, int64_t n, int64_t t, float *dst) {
    int n_fft = fe->p.n_fft;
    int64_t start = t * fe->p.hop_length - (fe->p.center ? n_fft / 2 : 0);
    const float *w = fe->window;
    if (start >= 0 && start + n_fft <= n) {
        const float *src = x + start;
        for (int i = 0; i < n_fft; i++)
            dst[i] = src[i] * w[i];
    } else {
        for (int i = 0; i < n_fft; i++)
            dst[i] = x[reflect_index(start + i, n)] * w[i];
    }
}

/* Frames ta and tb of the (padded) signal times the window into the real and the imaginary parts
 * of dst[n_fft][2] (frame pairs layout). */
static inline __attribute__((always_inline)) void
window_pair(const mel_frontend *fe, const float *x, int64_t n, int64_t ta, int64_t tb, float *dst) {
    int n_fft = fe->p.n_fft;
    int64_t half = fe->p.center ? n_fft / 2 : 0;
    int64_t sa = ta * fe->p.hop_length - half, sb = tb * fe->p.hop_length - half; /* sa < sb */
    const float *w = fe->window;
    if (sa >= 0 && sb + n_fft <= n) {
        const float *xa = x + sa, *xb = x + sb;
        for (int i = 0; i < n_fft; i++) {
            dst[2 * i] = xa[i] * w[i];
            dst[2 * i + 1] = xb[i] * w[i];
        }
    } else {
        for (int i = 0; i < n_fft; i++) {
            dst[2 * i] = x[reflect_index(sa + i, n)] * w[i];
            dst[2 * i + 1] = x[reflect_index(sb + i, n)] * w[i];
        }
    }
}

/* The windowed frames t .. t+count-1 (count <= GROUP) of a group into fe->frames, in its layout;
 * with pairs, a pair whose first frame is past count is left stale. Prefetches the next batch's
 * samples meanwhile (2 lines per frame). */
static inline __attribute__((always_inline)) void window_group(const mel_frontend *fe,
                                                               const float *x, int64_t n, int64_t t,
                                                               int count, prefetch_stream *ps) {
    if (fe->pairs) {
        for (int q = 0; q < GROUP / 2 && features_pair_a[q] < count; q++) {
            prefetch_lines(ps, 4);
            window_pair(fe, x, n, t + features_pair_a[q], t + features_pair_b[q],
                        fe->frames + (size_t)q * 2 * fe->dist);
        }
        return;
    }
    for (int b = 0; b < count; b++) {
        prefetch_lines(ps, 2);
        window_frame(fe, x, n, t + b, fe->frames + (size_t)b * 2 * fe->dist);
    }
}

/* The portable kernels (src/features_kernels.h). Kept out of line and without FMA contraction:
 * inlined into the AVX2 clone below they could be contracted and round differently. */
__attribute__((noinline, optimize("fp-contract=off"))) void
split_power_group(float *pw, const float *spec, int frame_floats, int h, const float *twiddle,
                  prefetch_stream *ps) {
    for (int b = 0; b < FEATURES_GROUP; b++) {
        const float *z = spec + (size_t)b * frame_floats;
        split_edge_bins(&pw[b], &pw[(size_t)h * FEATURES_BATCH + b], z[0], z[1]);
    }
    for (int k = 1; k <= h / 2; k++) {
        if (k % 4 == 1) prefetch_lines(ps, 2);
        for (int b = 0; b < FEATURES_GROUP; b++) {
            const float *z = spec + (size_t)b * frame_floats;
            split_bin_pair(&pw[(size_t)k * FEATURES_BATCH + b],
                           &pw[(size_t)(h - k) * FEATURES_BATCH + b], z[2 * k], z[2 * k + 1],
                           z[2 * (h - k)], z[2 * (h - k) + 1], twiddle[2 * k], twiddle[2 * k + 1]);
        }
    }
}

__attribute__((noinline, optimize("fp-contract=off"))) void
split_pairs_group(float *pw, const float *spec, int transform_floats, int n_fft,
                  prefetch_stream *ps) {
    for (int k = 0; k <= n_fft / 2; k++) {
        if (k % 4 == 0) prefetch_lines(ps, 1);
        for (int q = 0; q < FEATURES_GROUP / 2; q++) {
            const float *z = spec + (size_t)q * transform_floats;
            split_pair_bin(&pw[(size_t)k * FEATURES_BATCH + features_pair_a[q]],
                           &pw[(size_t)k * FEATURES_BATCH + features_pair_b[q]], z[2 * k],
                           z[2 * k + 1], z[2 * (n_fft - k)], z[2 * (n_fft - k) + 1]);
        }
    }
}

__attribute__((noinline, optimize("fp-contract=off"))) void
mel_bands_batch(float *dst, int64_t stride, const float *pw, const mel_sparse_fb *fb, int log_db,
                prefetch_stream *ps) {
    for (int i = 0; i < fb->n_mels; i++) {
        prefetch_lines(ps, 1);
        const mel_filter *f = &fb->filters[i];
        const float *w = fb->weight + f->offset;
        int n_bins = f->n_bins, m = f->band;
        const float *p = pw + (size_t)f->first_bin * FEATURES_BATCH;
        float acc[FEATURES_BATCH];
        for (int b = 0; b < FEATURES_BATCH; b++)
            acc[b] = n_bins > 0 ? w[0] * p[b] : 0.0f;
        for (int j = 1; j < n_bins; j++)
            for (int b = 0; b < FEATURES_BATCH; b++)
                acc[b] = fmaf(w[j], p[j * FEATURES_BATCH + b], acc[b]);
        for (int b = 0; b < FEATURES_BATCH; b++)
            dst[m * stride + b] = log_db ? power_to_db(acc[b]) : acc[b];
    }
}

/* The power of the group at columns g .. g+7 of the batch, from its FFT in fe->spec. */
static void split_group(mel_frontend *fe, int g, prefetch_stream *ps) {
    const float *spec = (const float *)fe->spec;
    int n_fft = fe->p.n_fft, h = n_fft / 2, frame_floats = 2 * fe->dist;
    if (fe->pairs) {
        for (int q = 0; q < GROUP / 2; q++) /* Z[n_fft] = Z[0]: bin 0's mirror */
            memcpy(fe->spec[(size_t)q * fe->dist + n_fft], fe->spec[(size_t)q * fe->dist],
                   sizeof(fftwf_complex));
#ifdef HAVE_FEATURES_AVX2
        if (fe->use_avx2) {
            split_pairs_group_avx2(fe->power + g, spec, frame_floats, n_fft, ps);
            return;
        }
#endif
        split_pairs_group(fe->power + g, spec, frame_floats, n_fft, ps);
        return;
    }
#ifdef HAVE_FEATURES_AVX2
    if (fe->use_avx2) {
        split_power_group_avx2(fe->power + g, spec, frame_floats, h, fe->twiddle, ps);
        return;
    }
#endif
    split_power_group(fe->power + g, spec, frame_floats, h, fe->twiddle, ps);
}

/* The mel bands of the batch (its power in fe->power) into dst [n_mels][stride]; the columns of
 * frames past the clip's end get values of stale frames when stride allows them. */
static void mel_batch(mel_frontend *fe, float *dst, int64_t stride, prefetch_stream *ps) {
#ifdef HAVE_FEATURES_AVX2
    if (fe->use_avx2) {
        mel_bands_batch_avx2(dst, stride, fe->power, &fe->fb, fe->p.log_db, ps);
        return;
    }
#endif
    mel_bands_batch(dst, stride, fe->power, &fe->fb, fe->p.log_db, ps);
}

/* The samples of x[0..n) that the frames of the batch after the one at t0 read and this one does
 * not (hop_length per frame), for prefetching while this batch is computed. */
static prefetch_stream next_batch_samples(const mel_frontend *fe, const float *x, int64_t n,
                                          int64_t t0) {
    int64_t hop = fe->p.hop_length, half = fe->p.center ? fe->p.n_fft / 2 : 0;
    int64_t from = (t0 + BATCH - 1) * hop - half + fe->p.n_fft, to = from + BATCH * hop;
    from = from < 0 ? 0 : from > n ? n : from;
    to = to < from ? from : to > n ? n : to;
    return (prefetch_stream){(const char *)(x + from), (const char *)(x + to)};
}

/* Chunks [n_chunks][n_mels][ADFD_CHUNK_FRAMES] starting at frames off[0..n_chunks) (ascending)
 * that the spectrogram is written into, instead of rows. */
typedef struct {
    float *out;
    const int32_t *off;
    int n_chunks;
} chunk_sink;

/* Copies frames t0 .. t0+nb of batch [n_mels][BATCH] into every chunk holding some of them.
 * The copies are of constant size (32 frames, a whole batch inside a chunk, or blocks of 8),
 * which the compiler inlines: a memcpy call per band and chunk cost a fifth of the pipeline. */
static inline __attribute__((always_inline)) void scatter_batch(const chunk_sink *sink, int64_t t0,
                                                                int nb, const float *batch) {
    enum { CF = ADFD_CHUNK_FRAMES };
    for (int c = 0; c < sink->n_chunks && sink->off[c] < t0 + nb; c++) {
        int64_t lo = t0 > sink->off[c] ? t0 : sink->off[c];
        int64_t hi = t0 + nb < sink->off[c] + CF ? t0 + nb : sink->off[c] + CF;
        if (lo >= hi) continue;
        float *dst = sink->out + (size_t)c * ADFD_N_MELS * CF + (lo - sink->off[c]);
        const float *src = batch + (lo - t0);
        int len = (int)(hi - lo);
        if (len == BATCH) {
            for (int m = 0; m < ADFD_N_MELS; m++)
                memcpy(dst + m * CF, src + m * BATCH, BATCH * sizeof(float));
            continue;
        }
        for (int m = 0; m < ADFD_N_MELS; m++) { /* overlapping chunks: often 8, 16 or 24 frames */
            int t = 0;
            for (; t + 8 <= len; t += 8)
                memcpy(dst + m * CF + t, src + m * BATCH + t, 8 * sizeof(float));
            for (; t < len; t++)
                dst[m * CF + t] = src[m * BATCH + t];
        }
    }
}

/* mel [n_mels][row_stride]: frames go to columns 0..n_frames-1 of each band's row; or, with a
 * sink, into its chunks (mel unused). Compiled twice, AVX2 and baseline, picked at load time,
 * for the windowing loop (a product per sample, the same bits at any vector width). */
__attribute__((target_clones("arch=x86-64-v3", "default"))) static void
mel_spectrogram_rows(mel_frontend *fe, const float *x, int64_t n, float *mel, int64_t row_stride,
                     const chunk_sink *sink) {
    int64_t n_frames = mel_frontend_frames(fe, n);
    float tail[ADFD_N_MELS * BATCH]; /* [n_mels][BATCH]: a last batch of fewer frames */
    for (int64_t t0 = 0; t0 < n_frames; t0 += BATCH) {
        int nb = n_frames - t0 < BATCH ? (int)(n_frames - t0) : BATCH;
        prefetch_stream next = next_batch_samples(fe, x, n, t0);
        for (int g = 0; g < nb; g += GROUP) {
            window_group(fe, x, n, t0 + g, nb - g < GROUP ? nb - g : GROUP, &next);
            fftwf_execute(fe->plan); /* frames past nb hold stale data and are ignored */
            split_group(fe, g, &next);
        }
        if (sink) {
            mel_batch(fe, tail, BATCH, &next);
            scatter_batch(sink, t0, nb, tail);
            continue;
        }
        if (nb == BATCH) {
            mel_batch(fe, mel + t0, row_stride, &next);
            continue;
        }
        mel_batch(fe, tail, BATCH, &next);
        for (int m = 0; m < fe->p.n_mels; m++)
            memcpy(mel + (size_t)m * row_stride + t0, tail + m * BATCH, (size_t)nb * sizeof(float));
    }
}

void mel_spectrogram(mel_frontend *fe, const float *x, int64_t n, float *mel) {
    mel_spectrogram_rows(fe, x, n, mel, mel_frontend_frames(fe, n), NULL);
}

/* Sum of x[i]^2 over [0, n) in double, in 8 interleaved partial sums: one running sum waited
 * for each add (a quarter of the default preset's time). Compiled for AVX2 and baseline; the
 * order of operations is the same in both, so are the sums. */
__attribute__((target_clones("arch=x86-64-v3", "default"),
               optimize("fp-contract=off"))) static double
sum_squares(const float *x, int64_t n) {
    enum { LANES = 8 };
    double part[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            part[j] += (double)x[i + j] * x[i + j];
    for (int j = 0; i + j < n; j++)
        part[j] += (double)x[i + j] * x[i + j];
    return ((part[0] + part[1]) + (part[2] + part[3])) +
           ((part[4] + part[5]) + (part[6] + part[7]));
}

void features_trim_bounds(const feature_params *p, const float *x, int64_t n, int64_t *begin,
                          int64_t *end) {
    *begin = 0;
    *end = n;
    if (!p->trim_silence || n < 1) return;
    int block = p->hop_length;
    int64_t n_blocks = (n + block - 1) / block;
    double peak = 0.0;
    double *energy = mallocCheck((size_t)n_blocks * sizeof *energy);
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t s0 = b * block, s1 = s0 + block < n ? s0 + block : n;
        energy[b] = sum_squares(x + s0, s1 - s0) / (double)(s1 - s0);
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

int features_clip_chunks_into(mel_frontend *fe, const float *x, int64_t n, chunk_reserve_fn reserve,
                              void *ctx, int *n_chunks) {
    const feature_params *p = &fe->p;
    if (n < 1) return adfd_fail("features: empty clip");
    int64_t begin = 0, end = n;
    features_trim_bounds(p, x, n, &begin, &end);
    const float *signal = x + begin;
    int64_t len = end - begin;
    float *tiled = NULL;
    int64_t min_samples =
        (int64_t)(p->chunk_frames - 1) * p->hop_length + (p->center ? 0 : p->n_fft - p->hop_length);
    if (p->repeat_pad && len < min_samples) {
        tiled = mallocCheck((size_t)min_samples * sizeof(float));
        for (int64_t i = 0; i < min_samples; i++)
            tiled[i] = signal[i % len];
        signal = tiled;
        len = min_samples;
    }
    int64_t n_frames = mel_frontend_frames(fe, len);
    int cf = p->chunk_frames;
    int64_t padded_frames = n_frames;
    if (!p->repeat_pad) padded_frames = (n_frames + cf - 1) / cf * cf;
    if (padded_frames < cf) padded_frames = cf;
    /* chunk start frames: a regular grid, plus one flush with the end if the grid leaves a tail */
    int64_t count = (padded_frames - cf) / p->chunk_hop + 1;
    int64_t last_start = (count - 1) * p->chunk_hop;
    int tail = last_start + cf < padded_frames;
    int total = (int)(count + tail);
    chunk_storage room = reserve(ctx, total);
    int32_t *off = room.offsets;
    for (int64_t c = 0; c < count; c++)
        off[c] = (int32_t)(c * p->chunk_hop);
    if (tail) off[count] = (int32_t)(padded_frames - cf);
    /* the frames go straight from each batch into the chunks that hold them */
    chunk_sink sink = {room.chunks, off, total};
    mel_spectrogram_rows(fe, signal, len, NULL, 0, &sink);
    free(tiled);
    float silence[ADFD_N_MELS * BATCH]; /* the value of zero power, for the padding frames */
    for (int i = 0; i < ADFD_N_MELS * BATCH; i++)
        silence[i] = p->log_db ? -100.0f : 0.0f;
    for (int64_t t0 = n_frames; t0 < padded_frames; t0 += BATCH)
        scatter_batch(&sink, t0, padded_frames - t0 < BATCH ? (int)(padded_frames - t0) : BATCH,
                      silence);
    *n_chunks = total;
    return 0;
}

/* ctx is the chunk_storage the buffers are recorded in, for the caller to own */
static chunk_storage reserve_malloc(void *ctx, int n_chunks) {
    chunk_storage *room = ctx;
    room->chunks = mallocCheck((size_t)n_chunks * ADFD_N_MELS * ADFD_CHUNK_FRAMES * sizeof(float));
    room->offsets = mallocCheck((size_t)n_chunks * sizeof(int32_t));
    return *room;
}

int features_clip_chunks(mel_frontend *fe, const float *x, int64_t n, float **chunks,
                         int32_t **offsets, int *n_chunks) {
    chunk_storage room = {NULL, NULL};
    if (features_clip_chunks_into(fe, x, n, reserve_malloc, &room, n_chunks) != 0) return -1;
    *chunks = room.chunks;
    *offsets = room.offsets;
    return 0;
}
