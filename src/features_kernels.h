/* features: the per-frame-group kernels of the mel front end (src/features.c), in a portable
 * version (features.c) and an AVX2 one (src/features_avx2.c) that computes every value with the
 * same operations in the same order, so both give identical bits and a feature file does not
 * depend on which nodes computed it.
 *
 * A group is FEATURES_GROUP = 8 consecutive frames. After the FFT of a group each frame holds
 * Z = FFT(z), z[j] = x[2j] + i x[2j+1], as h = n_fft/2 interleaved complex values, frame b at
 * spec + b * frame_floats. The kernels produce
 *  - pw [h+1][8]: 4 |X[k]|^2 per bin and frame, bin-major so that the mel sums run over the 8
 *    frames in one vector. The factor 4 (powers of 2 are exact) saves the halvings of the
 *    textbook split; the mel weights carry the 1/4, and (w/4)(4p) == w p bit for bit;
 *  - dst [n_mels] rows of 8 frames: dst[m * stride + b] = sum_j w_q[m][j] pw[first[m] + j][b]
 *    (the first product initialises the sum), then 10 log10 when log_db. */
#ifndef ADFD_FEATURES_KERNELS_H
#define ADFD_FEATURES_KERNELS_H

#include <stdint.h>

enum { FEATURES_GROUP = 8 };

/* The sparse filterbank, weights scaled by 1/4: band m has fb_start[m+1] - fb_start[m]
 * weights fb_weight[fb_start[m] ..] on bins fb_first_bin[m], fb_first_bin[m] + 1, ... */
typedef struct {
    int n_mels;
    const int *start;     /* [n_mels + 1] */
    const int *first_bin; /* [n_mels] */
    const float *weight;  /* [nonzeros] */
} mel_sparse_fb;

/* Bins k and h-k of one frame from Z[k] = (zkr, zki) and Z[h-k] = (zjr, zji), times 4:
 * X[k] = E + w^k O and X[h-k] = conj(E - w^k O), where 2E = Z[k] + conj Z[h-k],
 * 2O = -i (Z[k] - conj Z[h-k]), w = exp(-2 pi i / n_fft) = (wr, wi) here to the power k.
 * The AVX2 kernel does these operations in this order on 8 frames at once. */
static inline void split_bin_pair(float *pk, float *pj, float zkr, float zki, float zjr, float zji,
                                  float wr, float wi) {
    float even_re = zkr + zjr, even_im = zki - zji;                       /* 2E */
    float odd_re = zki + zji, odd_im = zjr - zkr;                         /* 2O */
    float tr = wr * odd_re - wi * odd_im, ti = wr * odd_im + wi * odd_re; /* 2 w^k O */
    *pk = (even_re + tr) * (even_re + tr) + (even_im + ti) * (even_im + ti);
    *pj = (even_re - tr) * (even_re - tr) + (even_im - ti) * (even_im - ti);
}

/* Bins 0 and h of one frame (real), times 4: X[0] = Re Z[0] + Im Z[0], X[h] = Re - Im. */
static inline void split_edge_bins(float *p0, float *ph, float re, float im) {
    float sum = re + im, diff = re - im;
    *p0 = 4.0f * (sum * sum);
    *ph = 4.0f * (diff * diff);
}

/* twiddle [h][2]: exp(-2 pi i k / n_fft) */
void split_power_group(float *pw, const float *spec, int frame_floats, int h, const float *twiddle);
void mel_bands_group(float *dst, int64_t stride, const float *pw, const mel_sparse_fb *fb,
                     int log_db);

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_FEATURES_AVX2 1
int features_cpu_has_avx2(void);
void split_power_group_avx2(float *pw, const float *spec, int frame_floats, int h,
                            const float *twiddle);
void mel_bands_group_avx2(float *dst, int64_t stride, const float *pw, const mel_sparse_fb *fb,
                          int log_db);
#endif

#endif
