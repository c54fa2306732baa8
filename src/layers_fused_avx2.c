/* AVX2 kernels of the fused conv block (src/layers_fused.c), runtime-dispatched from there. */
#include "layers_kernels.h"

#include "adfd/layers.h"

#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

int cpu_has_avx2_fma(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return known;
}

/* lanes j0 .. j0+7 of a row of n valid values: a full load, or a masked one past the row end */
__attribute__((target("avx2,fma"))) static inline __m256 load_row(const float *row, int j0, int n) {
    if (j0 + 8 <= n) return _mm256_loadu_ps(row + j0);
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(row + j0, _mm256_cmpgt_epi32(_mm256_set1_epi32(n - j0), lane));
}

__attribute__((target("avx2,fma"))) static inline __m256i mix32_avx2(__m256i x) {
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x7feb352dU));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bU));
    return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

/* dropout_keep_row's draws for elements e .. e+7: all-ones where the unit is kept */
__attribute__((target("avx2,fma"))) static inline __m256 keep_mask_avx2(uint64_t stream, uint32_t e,
                                                                        uint32_t threshold) {
    __m256i idx =
        _mm256_add_epi32(_mm256_set1_epi32((int)e), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i h = mix32_avx2(_mm256_add_epi32(idx, _mm256_set1_epi32((int)(uint32_t)(stream >> 32))));
    h = mix32_avx2(_mm256_xor_si256(h, _mm256_set1_epi32((int)(uint32_t)stream)));
    __m256i dropped =
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)threshold), _mm256_srli_epi32(h, 16));
    return _mm256_castsi256_ps(_mm256_xor_si256(dropped, _mm256_set1_epi32(-1)));
}

/* Stores the low byte of the 8 codes, n of them (n < 8: the row's tail, nothing written past) */
__attribute__((target("avx2,fma"))) static inline void store_codes(uint8_t *dst, __m256i code,
                                                                   int n) {
    __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
    __m128i b8 = _mm_packus_epi16(w16, w16);
    if (n >= 8) {
        _mm_storel_epi64((__m128i *)dst, b8);
        return;
    }
    uint8_t tmp[16];
    _mm_storeu_si128((__m128i *)tmp, b8);
    memcpy(dst, tmp, (size_t)n);
}

/* pool_plane (layers_kernels.h), the four window outputs of 8 pooled units in registers: the
 * 9 taps of each output in the order of conv_quad, then the pool, the ReLU and dropout as
 * compares and blends, and the Linear dot products as two more multiply-adds. */
__attribute__((target("avx2,fma"))) void pool_plane_avx2(const pool_plane *p) {
    __m256 wv[9];
    for (int k = 0; k < 9; k++)
        wv[k] = _mm256_set1_ps(p->taps[k]);
    __m256 zero = _mm256_setzero_ps();
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 l0 = zero, l1 = zero;
    if (p->logit_lanes) {
        l0 = _mm256_loadu_ps(p->logit_lanes[0]);
        l1 = _mm256_loadu_ps(p->logit_lanes[1]);
    }
    int RS = p->RS, PW = p->PW;
    for (int pi = 0; pi < p->PH; pi++) {
        const float *xe = p->xe + 2 * pi * RS, *xo = p->xo + 2 * pi * RS;
        int row = pi * PW;
        for (int j = 0; j < p->L; j += 8) {
            __m256 y0 = _mm256_set1_ps(p->tap_bias), y1 = y0, y2 = y0, y3 = y0;
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
            /* first maximum in row-major window order, as PyTorch (strict >); code as int */
            __m256 g01 = _mm256_cmp_ps(y1, y0, _CMP_GT_OQ), g23 = _mm256_cmp_ps(y3, y2, _CMP_GT_OQ);
            __m256 zb01 = _mm256_blendv_ps(y0, y1, g01), zb23 = _mm256_blendv_ps(y2, y3, g23);
            __m256 g = _mm256_cmp_ps(zb23, zb01, _CMP_GT_OQ);
            __m256 z = _mm256_blendv_ps(zb01, zb23, g);
            /* a unit passes when it is in the row, its ReLU is on and dropout keeps it */
            __m256 on = _mm256_and_ps(
                _mm256_cmp_ps(z, zero, _CMP_GT_OQ),
                _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(PW - j), lane)));
            if (p->threshold)
                on = _mm256_and_ps(on, keep_mask_avx2(p->stream, p->e0 + row + j, p->threshold));
            __m256 o = _mm256_and_ps(on, z);
            int n = PW - j < 8 ? PW - j : 8;
            if (p->logit_lanes) {
                l0 = _mm256_fmadd_ps(o, load_row(p->lw0 + row, j, PW), l0);
                l1 = _mm256_fmadd_ps(o, load_row(p->lw1 + row, j, PW), l1);
            }
            if (p->out) {
                if (n == 8)
                    _mm256_storeu_ps(p->out + row + j, o);
                else
                    _mm256_maskstore_ps(p->out + row + j,
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane), o);
            }
            if (p->arg) {
                /* code = 2 * (lower pair wins) + the winner within its pair, or INACTIVE */
                __m256i k01 = _mm256_srli_epi32(_mm256_castps_si256(g01), 31);
                __m256i k23 = _mm256_sub_epi32(_mm256_set1_epi32(2), _mm256_castps_si256(g23));
                __m256i k = _mm256_blendv_epi8(k01, k23, _mm256_castps_si256(g));
                k = _mm256_blendv_epi8(_mm256_set1_epi32(ADFD_POOL_INACTIVE), k,
                                       _mm256_castps_si256(on));
                store_codes(p->arg + row + j, k, n);
            }
        }
    }
    if (p->logit_lanes) {
        _mm256_storeu_ps(p->logit_lanes[0], l0);
        _mm256_storeu_ps(p->logit_lanes[1], l1);
    }
}

/* sparse_plane (layers_kernels.h): one lane block at a time over all pooled rows, so the 10
 * accumulators stay in registers; the window gradients are made in registers from the codes
 * and the Linear weights, never stored. */
__attribute__((target("avx2,fma"))) void sparse_plane_avx2(const sparse_plane *s) {
    int RS = s->RS, PW = s->PW;
    __m256 g0 = _mm256_set1_ps(s->g0), g1 = _mm256_set1_ps(s->g1);
    for (int jv = 0; jv < s->L; jv += 8) {
        __m256 a[10];
        for (int k = 0; k < 10; k++)
            a[k] = _mm256_setzero_ps();
        int n = PW - jv < 8 ? PW - jv : 8;
        for (int pi = 0; pi < s->PH; pi++) {
            int row = pi * PW;
            /* lanes past the row: weights 0, so d = 0 and every window gradient is 0 */
            __m256 d = _mm256_fmadd_ps(g1, load_row(s->lw1 + row, jv, PW),
                                       _mm256_mul_ps(g0, load_row(s->lw0 + row, jv, PW)));
            uint64_t bytes = 0; /* the codes of lanes jv .. jv+n, none read past the row */
            if (n == 8)
                memcpy(&bytes, s->arg + row + jv, 8);
            else
                for (int l = 0; l < n; l++)
                    bytes |= (uint64_t)s->arg[row + jv + l] << (8 * l);
            __m256i code = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)bytes));
            __m256 gw[4];
            for (int q = 0; q < 4; q++)
                gw[q] = _mm256_and_ps(
                    d, _mm256_castsi256_ps(_mm256_cmpeq_epi32(code, _mm256_set1_epi32(q))));
            for (int dr = 0; dr < 2; dr++) {
                __m256 ge = gw[2 * dr], go = gw[2 * dr + 1];
                a[9] = _mm256_add_ps(a[9], _mm256_add_ps(ge, go));
                for (int di = 0; di < 3; di++) {
                    const float *E = s->xe + (2 * pi + dr + di) * RS + jv;
                    const float *O = s->xo + (2 * pi + dr + di) * RS + jv;
                    __m256 e0 = _mm256_loadu_ps(E), e1 = _mm256_loadu_ps(E + 1);
                    __m256 o0 = _mm256_loadu_ps(O), o1 = _mm256_loadu_ps(O + 1);
                    a[3 * di] = _mm256_fmadd_ps(go, o0, _mm256_fmadd_ps(ge, e0, a[3 * di]));
                    a[3 * di + 1] = _mm256_fmadd_ps(go, e1, _mm256_fmadd_ps(ge, o0, a[3 * di + 1]));
                    a[3 * di + 2] = _mm256_fmadd_ps(go, o1, _mm256_fmadd_ps(ge, e1, a[3 * di + 2]));
                }
            }
        }
        for (int k = 0; k < 10; k++) {
            float v[8];
            _mm256_storeu_ps(v, a[k]);
            for (int l = 0; l < 8; l++)
                s->acc[k][l] += v[l];
        }
    }
}
#endif
