/* AVX2 + FMA kernels of the mel front end (src/features_kernels.h), runtime-dispatched from
 * src/features.c. Every value is rounded exactly as in the portable kernels: the same operations,
 * fused where those call fmaf, in the same order. */
#include "features_kernels.h"

#include "adfd/features.h"

#ifdef HAVE_FEATURES_AVX2
#include <immintrin.h>

/* r[c][b] = r[b][c] for an 8x8 block of floats */
__attribute__((target("avx2,fma"))) static inline void transpose8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);     /* 0 0 1 1 | 4 4 5 5 */
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]); /* 2 2 3 3 | 6 6 7 7 */
    }
    for (int i = 0; i < 2; i++) { /* rows 4i .. 4i+3 */
        s[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int c = 0; c < 4; c++) { /* s[c] holds columns c and c+4 of rows 0-3, s[c+4] of 4-7 */
        r[c] = _mm256_permute2f128_ps(s[c], s[c + 4], 0x20);
        r[c + 4] = _mm256_permute2f128_ps(s[c], s[c + 4], 0x31);
    }
}

/* Four bins k .. k+3 and their mirrors h-k-3 .. h-k of the 8 frames: each frame's 4 complex
 * values are one vector; two 8x8 transposes turn them into re and im vectors over the frames. */
__attribute__((target("avx2,fma"))) void split_power_group_avx2(float *pw, const float *spec,
                                                                int frame_floats, int h,
                                                                const float *twiddle,
                                                                prefetch_stream *ps) {
    for (int b = 0; b < FEATURES_GROUP; b++) {
        const float *z = spec + (size_t)b * frame_floats;
        split_edge_bins(&pw[b], &pw[(size_t)h * FEATURES_BATCH + b], z[0], z[1]);
    }
    int k = 1;
    for (; k + 3 <= h / 2; k += 4) {
        __m256 lo[8], hi[8]; /* lo: bins k..k+3; hi: bins h-k-3 .. h-k */
        prefetch_lines(ps, 2);
        for (int b = 0; b < FEATURES_GROUP; b++) {
            const float *z = spec + (size_t)b * frame_floats;
            lo[b] = _mm256_loadu_ps(z + 2 * k);
            hi[b] = _mm256_loadu_ps(z + 2 * (h - k - 3));
        }
        transpose8(lo); /* lo[2i], lo[2i+1]: re, im of bin k+i over the frames */
        transpose8(hi); /* hi[6-2i], hi[7-2i]: re, im of bin h-k-i */
        for (int i = 0; i < 4; i++) {
            __m256 zkr = lo[2 * i], zki = lo[2 * i + 1], zjr = hi[6 - 2 * i], zji = hi[7 - 2 * i];
            __m256 wr = _mm256_broadcast_ss(&twiddle[2 * (k + i)]);
            __m256 wi = _mm256_broadcast_ss(&twiddle[2 * (k + i) + 1]);
            __m256 even_re = _mm256_add_ps(zkr, zjr), even_im = _mm256_sub_ps(zki, zji);
            __m256 odd_re = _mm256_add_ps(zki, zji), odd_im = _mm256_sub_ps(zjr, zkr);
            __m256 tr = _mm256_fmsub_ps(wr, odd_re, _mm256_mul_ps(wi, odd_im));
            __m256 ti = _mm256_fmadd_ps(wr, odd_im, _mm256_mul_ps(wi, odd_re));
            __m256 ar = _mm256_add_ps(even_re, tr), ai = _mm256_add_ps(even_im, ti);
            __m256 br = _mm256_sub_ps(even_re, tr), bi = _mm256_sub_ps(even_im, ti);
            __m256 pk = _mm256_fmadd_ps(ar, ar, _mm256_mul_ps(ai, ai));
            __m256 pj = _mm256_fmadd_ps(br, br, _mm256_mul_ps(bi, bi));
            /* bin h/2 is both k and h-k: the h-k value is stored last, as in the portable code */
            _mm256_store_ps(pw + (size_t)(k + i) * FEATURES_BATCH, pk);
            _mm256_store_ps(pw + (size_t)(h - k - i) * FEATURES_BATCH, pj);
        }
    }
    for (; k <= h / 2; k++)
        for (int b = 0; b < FEATURES_GROUP; b++) {
            const float *z = spec + (size_t)b * frame_floats;
            split_bin_pair(&pw[(size_t)k * FEATURES_BATCH + b],
                           &pw[(size_t)(h - k) * FEATURES_BATCH + b], z[2 * k], z[2 * k + 1],
                           z[2 * (h - k)], z[2 * (h - k) + 1], twiddle[2 * k], twiddle[2 * k + 1]);
        }
}

/* Frame pairs: bins k .. k+3 of the 4 transforms and their mirrors N-k-3 .. N-k, as 4x4
 * transposes of complex values (64-bit lanes): then one vector holds a bin of all 4 transforms,
 * and the squared norms of its sum and difference with the mirror, added pairwise, are the bin's
 * power in the 8 frames, in frame order (features_pair_a/b). */
__attribute__((target("avx2,fma"))) static inline void transpose4_complex(const __m256d r[4],
                                                                          __m256 t[4]) {
    __m256d a0 = _mm256_unpacklo_pd(r[0], r[1]), a1 = _mm256_unpackhi_pd(r[0], r[1]);
    __m256d a2 = _mm256_unpacklo_pd(r[2], r[3]), a3 = _mm256_unpackhi_pd(r[2], r[3]);
    t[0] = _mm256_castpd_ps(_mm256_permute2f128_pd(a0, a2, 0x20));
    t[1] = _mm256_castpd_ps(_mm256_permute2f128_pd(a1, a3, 0x20));
    t[2] = _mm256_castpd_ps(_mm256_permute2f128_pd(a0, a2, 0x31));
    t[3] = _mm256_castpd_ps(_mm256_permute2f128_pd(a1, a3, 0x31));
}

__attribute__((target("avx2,fma"))) void split_pairs_group_avx2(float *pw, const float *spec,
                                                                int transform_floats, int n_fft,
                                                                prefetch_stream *ps) {
    const __m256 conj = _mm256_castsi256_ps(_mm256_set1_epi64x((int64_t)0x8000000000000000));
    int k = 0;
    for (; k + 3 < n_fft / 2; k += 4) {
        __m256d lo[4], hi[4];
        prefetch_lines(ps, 1);
        for (int q = 0; q < 4; q++) {
            const float *z = spec + (size_t)q * transform_floats;
            lo[q] = _mm256_castps_pd(_mm256_loadu_ps(z + 2 * k));
            hi[q] = _mm256_castps_pd(_mm256_loadu_ps(z + 2 * (n_fft - k - 3)));
        }
        __m256 zk[4], zm[4]; /* zk[j]: Z[k+j] of the 4 transforms; zm[3-j]: Z[N-k-j] */
        transpose4_complex(lo, zk);
        transpose4_complex(hi, zm);
        for (int j = 0; j < 4; j++) {
            __m256 c = _mm256_xor_ps(zm[3 - j], conj); /* conj Z[N-k-j]: exact */
            __m256 sum = _mm256_add_ps(zk[j], c), diff = _mm256_sub_ps(zk[j], c);
            __m256 p = _mm256_hadd_ps(_mm256_mul_ps(sum, sum), _mm256_mul_ps(diff, diff));
            _mm256_store_ps(pw + (size_t)(k + j) * FEATURES_BATCH, p);
        }
    }
    for (; k <= n_fft / 2; k++)
        for (int q = 0; q < 4; q++) {
            const float *z = spec + (size_t)q * transform_floats;
            split_pair_bin(&pw[(size_t)k * FEATURES_BATCH + features_pair_a[q]],
                           &pw[(size_t)k * FEATURES_BATCH + features_pair_b[q]], z[2 * k],
                           z[2 * k + 1], z[2 * (n_fft - k)], z[2 * (n_fft - k) + 1]);
        }
}

/* power_to_db (src/features_kernels.h) on 8 values, operation for operation */
__attribute__((target("avx2,fma"))) static inline __m256 power_to_db8(__m256 power) {
    __m256i bits = _mm256_max_epi32(_mm256_castps_si256(power), _mm256_set1_epi32(DB_FLOOR_BITS));
    __m256i mantissa = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                       _mm256_set1_epi32(0x3f800000));
    __m256i big = _mm256_cmpgt_epi32(mantissa, _mm256_set1_epi32(0x3fb504f3)); /* -1 or 0 */
    __m256 m = _mm256_castsi256_ps(
        _mm256_sub_epi32(mantissa, _mm256_and_si256(big, _mm256_set1_epi32(0x00800000))));
    __m256 t = _mm256_sub_ps(m, _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(exponent, big));
    __m256 p = _mm256_set1_ps(DB_POLY6);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DB_POLY5));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DB_POLY4));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DB_POLY3));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DB_POLY2));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DB_POLY1));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DB_POLY0));
    __m256 log2_x = _mm256_fmadd_ps(p, t, e);
    return _mm256_mul_ps(_mm256_set1_ps(DB_PER_OCTAVE), log2_x);
}

__attribute__((target("avx2,fma"))) void mel_bands_batch_avx2(float *dst, int64_t stride,
                                                              const float *pw,
                                                              const mel_sparse_fb *fb, int log_db,
                                                              prefetch_stream *ps) {
    enum { V = FEATURES_BATCH / 8 };
    for (int i = 0; i < fb->n_mels; i++) {
        const mel_filter *f = &fb->filters[i];
        const float *w = fb->weight + f->offset;
        const float *p = pw + (size_t)f->first_bin * FEATURES_BATCH;
        prefetch_lines(ps, 1);
        __m256 acc[V];
        for (int v = 0; v < V; v++)
            acc[v] = _mm256_setzero_ps();
        if (f->n_bins > 0) {
            __m256 wj = _mm256_broadcast_ss(&w[0]);
            for (int v = 0; v < V; v++)
                acc[v] = _mm256_mul_ps(wj, _mm256_load_ps(p + 8 * v));
        }
        for (int j = 1; j < f->n_bins; j++) {
            __m256 wj = _mm256_broadcast_ss(&w[j]);
            for (int v = 0; v < V; v++)
                acc[v] =
                    _mm256_fmadd_ps(wj, _mm256_load_ps(p + j * FEATURES_BATCH + 8 * v), acc[v]);
        }
        float *out = dst + f->band * stride;
        for (int v = 0; v < V; v++)
            _mm256_storeu_ps(out + 8 * v, log_db ? power_to_db8(acc[v]) : acc[v]);
    }
}
#endif
