/* AVX2 kernels of the fused conv block (src/layers_fused.c), runtime-dispatched from there. */
#include "layers_kernels.h"

#include "adfd/layers.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

int cpu_has_avx2_fma(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return known;
}

/* One pooled row of one channel with the four window outputs kept in registers: the plain
 * version (conv_quad, then the pooling loop) stores and reloads them, and its two accumulators
 * leave the FMA units waiting on latency. Each output takes its 9 taps in the same order as
 * conv_quad, so the results are identical. rows: xe, xo at input row 2*pi; keep: dropout row
 * (1/0, lanes >= PW ignored); code: the pool_arg codes as int32, lanes < L. */
__attribute__((target("avx2,fma"))) void pool_row_avx2(float *out, int32_t *code, const float *xe,
                                                       const float *xo, int RS, const float *w,
                                                       float bias, float bn_scale, float shift,
                                                       const float *keep, float drop_scale, int PW,
                                                       int L) {
    __m256 wv[9];
    for (int k = 0; k < 9; k++)
        wv[k] = _mm256_set1_ps(w[k]);
    __m256 sc = _mm256_set1_ps(bn_scale), sh = _mm256_set1_ps(shift), zero = _mm256_setzero_ps();
    __m256 ds = _mm256_set1_ps(drop_scale), inactive = _mm256_set1_ps((float)ADFD_POOL_INACTIVE);
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int j = 0; j < L; j += 8) {
        __m256 y0 = _mm256_set1_ps(bias), y1 = y0, y2 = y0, y3 = y0;
        for (int r = 0; r < 4; r++) { /* input row 2*pi + r: tap row r (dr = 0), r-1 (dr = 1) */
            const float *E = xe + r * RS + j, *O = xo + r * RS + j;
            __m256 e0 = _mm256_loadu_ps(E), o0 = _mm256_loadu_ps(O);
            __m256 e1 = _mm256_loadu_ps(E + 1), o1 = _mm256_loadu_ps(O + 1);
            if (r < 3) {
                const __m256 *t = wv + 3 * r;
                y0 = _mm256_fmadd_ps(t[2], e1,
                                     _mm256_fmadd_ps(t[1], o0, _mm256_fmadd_ps(t[0], e0, y0)));
                y1 = _mm256_fmadd_ps(t[2], o1,
                                     _mm256_fmadd_ps(t[1], e1, _mm256_fmadd_ps(t[0], o0, y1)));
            }
            if (r > 0) {
                const __m256 *t = wv + 3 * (r - 1);
                y2 = _mm256_fmadd_ps(t[2], e1,
                                     _mm256_fmadd_ps(t[1], o0, _mm256_fmadd_ps(t[0], e0, y2)));
                y3 = _mm256_fmadd_ps(t[2], o1,
                                     _mm256_fmadd_ps(t[1], e1, _mm256_fmadd_ps(t[0], o0, y3)));
            }
        }
        __m256 z0 = _mm256_fmadd_ps(y0, sc, sh), z1 = _mm256_fmadd_ps(y1, sc, sh);
        __m256 z2 = _mm256_fmadd_ps(y2, sc, sh), z3 = _mm256_fmadd_ps(y3, sc, sh);
        /* first maximum in row-major window order, as PyTorch (strict >) */
        __m256 g01 = _mm256_cmp_ps(z1, z0, _CMP_GT_OQ), g23 = _mm256_cmp_ps(z3, z2, _CMP_GT_OQ);
        __m256 zb01 = _mm256_blendv_ps(z0, z1, g01), zb23 = _mm256_blendv_ps(z2, z3, g23);
        __m256 k01 = _mm256_and_ps(g01, _mm256_set1_ps(1.0f));
        __m256 k23 = _mm256_blendv_ps(_mm256_set1_ps(2.0f), _mm256_set1_ps(3.0f), g23);
        __m256 g = _mm256_cmp_ps(zb23, zb01, _CMP_GT_OQ);
        __m256 z = _mm256_blendv_ps(zb01, zb23, g), k = _mm256_blendv_ps(k01, k23, g);
        /* a unit passes when its ReLU is on and dropout keeps it */
        __m256 on = _mm256_and_ps(_mm256_cmp_ps(z, zero, _CMP_GT_OQ),
                                  _mm256_cmp_ps(_mm256_loadu_ps(keep + j), zero, _CMP_GT_OQ));
        __m256 o = _mm256_and_ps(on, _mm256_mul_ps(z, ds));
        _mm256_storeu_si256((__m256i *)(code + j),
                            _mm256_cvttps_epi32(_mm256_blendv_ps(inactive, k, on)));
        if (j + 8 <= PW)
            _mm256_storeu_ps(out + j, o);
        else
            _mm256_maskstore_ps(out + j, _mm256_cmpgt_epi32(_mm256_set1_epi32(PW - j), lane), o);
    }
}
#endif
