/* features: the per-frame-group kernels of the mel front end (src/features.c), in a portable
 * version (features.c) and an AVX2 + FMA one (src/features_avx2.c) that computes every value with
 * the same operations in the same order, so both give identical bits and a feature file does not
 * depend on which nodes computed it. Fused multiply-adds are written as fmaf (libm's is exact
 * everywhere, in hardware where the CPU has FMA), never left to contraction.
 *
 * A batch is FEATURES_BATCH = 32 consecutive frames, a group 8 of them. After the FFT each frame
 * holds Z = FFT(z), z[j] = x[2j] + i x[2j+1], as h = n_fft/2 interleaved complex values, frame b
 * at spec + b * frame_floats. The kernels produce
 *  - split_power_group, for the 8 frames of a group: pw [h+1][FEATURES_BATCH] columns 0..7 (the
 *    caller points pw at the group's column), 4 |X[k]|^2 per bin and frame, bin-major so that the
 *    mel sums run over frames in vectors. The factor 4 (powers of 2 are exact) saves the halvings
 *    of the textbook split; the mel weights carry the 1/4, and (w/4)(4p) == w p bit for bit;
 *  - mel_bands_batch, for the 32 frames: dst[m * stride + b] = sum_j w_q[m][j] pw[first + j][b]
 *    (the first product initialises the sum), then 10 log10 when log_db. A whole batch per filter
 *    (4 vectors): on 8 frames the per-filter loop overhead and the latency of one chain of
 *    multiply-adds cost twice the arithmetic. */
#ifndef ADFD_FEATURES_KERNELS_H
#define ADFD_FEATURES_KERNELS_H

#include <math.h>
#include <stdint.h>

enum { FEATURES_GROUP = 8, FEATURES_BATCH = 32 };

/* The input samples the next batch of frames will read, [next, end), prefetched a few cache lines
 * at a time from inside the kernels. Streaming a long signal from memory is bandwidth-bound
 * (~12 lines per frame): prefetched in one burst while windowing, the prefetches queued behind
 * each other and the windowing loop waited (a fifth of the seed preset's time); spread over the
 * split and mel loops, the lines arrive while those compute. Prefetching changes no value. */
typedef struct {
    const char *next, *end;
} prefetch_stream;

enum { CACHE_LINE = 64 };

static inline void prefetch_lines(prefetch_stream *ps, int lines) {
    for (int i = 0; i < lines && ps->next < ps->end; i++, ps->next += CACHE_LINE)
        __builtin_prefetch(ps->next);
}

/* One mel filter of the sparse filterbank: weights weight[offset .. offset + n_bins) on bins
 * first_bin, first_bin + 1, ... */
typedef struct {
    int band, first_bin, n_bins, offset;
} mel_filter;

/* The sparse filterbank, weights scaled by 1/4. The filters are listed by their number of bins
 * (1, 2, ..., each band once): the inner loop then ends after the same count as the last time
 * and its branch is predicted; in band order it mispredicted on most bands. */
typedef struct {
    int n_mels;
    const mel_filter *filters; /* [n_mels] */
    const float *weight;       /* [nonzeros] */
} mel_sparse_fb;

/* Bins k and h-k of one frame from Z[k] = (zkr, zki) and Z[h-k] = (zjr, zji), times 4:
 * X[k] = E + w^k O and X[h-k] = conj(E - w^k O), where 2E = Z[k] + conj Z[h-k],
 * 2O = -i (Z[k] - conj Z[h-k]), w = exp(-2 pi i / n_fft) = (wr, wi) here to the power k.
 * The AVX2 kernel does these operations in this order on 8 frames at once. */
static inline void split_bin_pair(float *pk, float *pj, float zkr, float zki, float zjr, float zji,
                                  float wr, float wi) {
    float even_re = zkr + zjr, even_im = zki - zji;                                  /* 2E */
    float odd_re = zki + zji, odd_im = zjr - zkr;                                    /* 2O */
    float tr = fmaf(wr, odd_re, -(wi * odd_im)), ti = fmaf(wr, odd_im, wi * odd_re); /* 2 w^k O */
    float ar = even_re + tr, ai = even_im + ti, br = even_re - tr, bi = even_im - ti;
    *pk = fmaf(ar, ar, ai * ai);
    *pj = fmaf(br, br, bi * bi);
}

/* Frame pairs layout: frame features_pair_a[q] of a group in the real part and frame
 * features_pair_b[q] in the imaginary part of transform q, Z = FFT(x_a + i x_b), N = n_fft points.
 * For k = 0 .. N/2, with Z[N] = Z[0]: 2 X_a[k] = Z[k] + conj Z[N-k] and 2i X_b[k] = Z[k] -
 * conj Z[N-k], so 4 |X_a|^2 and 4 |X_b|^2 are the squared norms of the sum and the difference.
 * Pairing frames 0-2, 1-3, 4-6, 5-7 leaves the AVX2 kernel's horizontal sums in frame order.
 * The rounding error of a bin now scales with both frames' energy, not one: a quiet frame next to
 * a loud one is less exact far below the loud one's peak. Against torchaudio the seed preset
 * stays within 4.4e-5-7.1e-5 relative on the test clips (tests/test_features.c; it
 * was 4.6e-5-7.1e-5). */
static const int features_pair_a[4] = {0, 1, 4, 5}, features_pair_b[4] = {2, 3, 6, 7};
static inline void split_pair_bin(float *pa, float *pb, float lr, float li, float hr, float hi) {
    float cr = hr, ci = -hi; /* conj Z[N-k] */
    float sr = lr + cr, si = li + ci, dr = lr - cr, di = li - ci;
    *pa = sr * sr + si * si;
    *pb = dr * dr + di * di;
}

/* Bins 0 and h of one frame (real), times 4: X[0] = Re Z[0] + Im Z[0], X[h] = Re - Im. */
static inline void split_edge_bins(float *p0, float *ph, float re, float im) {
    float sum = re + im, diff = re - im;
    *p0 = 4.0f * (sum * sum);
    *ph = 4.0f * (diff * diff);
}

/* 10 log10(max(x, 1e-10)) for x >= 0 (torchaudio AmplitudeToDB("power", top_db=None)) without
 * libm (log10f on 128 bands per frame would cost more than the FFT) and without a division (the
 * divider was the bottleneck of the default preset): x = 2^e m with m in [sqrt(1/2), sqrt(2)),
 * log2 m = t P(t), t = m - 1 (exact), P a degree-6 least-maximum-error fit of log2(1+t)/t
 * (error of t P(t) below 4e-7, 1.1e-6 dB, with float Horner). The AVX2 kernel does the same
 * operations in the same order. */
#define DB_POLY6 0.170633987f
#define DB_POLY5 -0.272698015f
#define DB_POLY4 0.297262669f
#define DB_POLY3 -0.358961821f
#define DB_POLY2 0.480465025f
#define DB_POLY1 -0.721375883f
#define DB_POLY0 1.44269967f
#define DB_FLOOR_BITS 0x2edbe6ff     /* 1e-10f; positive floats order like their bits */
#define DB_PER_OCTAVE 3.01029995664f /* 10 log10(2) */
static inline float power_to_db(float x) {
    union {
        float f;
        int32_t i;
    } v = {x};
    int32_t bits = v.i > DB_FLOOR_BITS ? v.i : DB_FLOOR_BITS;
    int32_t mantissa = (bits & 0x007fffff) | 0x3f800000; /* m in [1, 2) */
    int32_t big = mantissa > 0x3fb504f3;                 /* m > sqrt(2): use m/2, e+1 */
    v.i = mantissa - (big << 23);
    float t = v.f - 1.0f;
    float e = (float)((bits >> 23) - 127 + big);
    float p = DB_POLY6;
    p = fmaf(p, t, DB_POLY5);
    p = fmaf(p, t, DB_POLY4);
    p = fmaf(p, t, DB_POLY3);
    p = fmaf(p, t, DB_POLY2);
    p = fmaf(p, t, DB_POLY1);
    p = fmaf(p, t, DB_POLY0);
    return DB_PER_OCTAVE * fmaf(p, t, e);
}

/* FFTW wisdom for the front end's FFTs of both presets (src/features_wisdom.c) */
extern const char features_fftw_wisdom[];

/* twiddle [h][2]: exp(-2 pi i k / n_fft); ps: lines to prefetch meanwhile (2 per 4 bins) */
void split_power_group(float *pw, const float *spec, int frame_floats, int h, const float *twiddle,
                       prefetch_stream *ps);
/* frame pairs: spec [4][transform_floats] (Z[n_fft] filled in); pw as split_power_group; ps: a
 * line per 4 bins */
void split_pairs_group(float *pw, const float *spec, int transform_floats, int n_fft,
                       prefetch_stream *ps);
/* ps: one line prefetched per filter */
void mel_bands_batch(float *dst, int64_t stride, const float *pw, const mel_sparse_fb *fb,
                     int log_db, prefetch_stream *ps);

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_FEATURES_AVX2 1
void split_power_group_avx2(float *pw, const float *spec, int frame_floats, int h,
                            const float *twiddle, prefetch_stream *ps);
void split_pairs_group_avx2(float *pw, const float *spec, int transform_floats, int n_fft,
                            prefetch_stream *ps);
void mel_bands_batch_avx2(float *dst, int64_t stride, const float *pw, const mel_sparse_fb *fb,
                          int log_db, prefetch_stream *ps);
#endif

#endif
