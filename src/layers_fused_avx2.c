/* AVX2 kernels of the fused conv block (src/layers_fused.c), runtime-dispatched from there. */
#include "layers_kernels.h"

#include "adfd/layers.h"

#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/* deinterleave (src/layers_fused.c): 16 input values at a time, split by two shuffles */
#define DEINTERLEAVE_AHEAD 24
__attribute__((target("avx2,fma"))) void deinterleave_avx2(float *xe, float *xo, const float *x,
                                                           int H, int W, int RS) {
    int half = W / 2, full = W / 16 * 16;
    for (int r = 0; r < H; r++) {
        const float *row = x + (size_t)r * W;
        float *e = xe + r * RS, *o = xo + r * RS;
        /* the sample is usually not in L1/L2 (a batch is MBs): fetch a few rows ahead */
        if (r + DEINTERLEAVE_AHEAD < H)
            for (int c = 0; c < W; c += 16)
                _mm_prefetch((const char *)(row + DEINTERLEAVE_AHEAD * W + c), _MM_HINT_T0);
        int q = 0;
        for (; 2 * q < full; q += 8) {
            __m256 a = _mm256_loadu_ps(row + 2 * q), b = _mm256_loadu_ps(row + 2 * q + 8);
            /* per 128-bit half: a0 a2 b0 b2 | a4 a6 b4 b6, then the 64-bit pairs in order */
            __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
            __m256 od = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
            _mm256_storeu_ps(e + q, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                        _mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0))));
            _mm256_storeu_ps(o + q, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                        _mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0))));
        }
        for (; q < half; q++) {
            e[q] = row[2 * q];
            o[q] = row[2 * q + 1];
        }
        for (; q < RS; q++)
            e[q] = o[q] = 0.0f;
    }
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

#define AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

/* The plane kernel's loop-invariant state, in locals: stores through out/arg could alias the
 * pool_plane struct, which would make GCC reload its fields after every store. */
typedef struct {
    __m256 wv[9], bias;
    const float *xe, *xo, *lw0, *lw1;
    float *out;
    uint8_t *arg;
    int RS, PW, drop, logits;
    uint64_t stream;
    uint32_t e0, threshold;
} plane_state;

/* Pooled units j .. j+7 of row pi (n of them valid, n < 8 only for the row's tail; last: the
 * plane's last row, where nothing may be written past the row). */
AVX2_INLINE void pool_vector(const plane_state *st, __m256 *l0, __m256 *l1, int pi, int j, int n,
                             int last) {
    int RS = st->RS, row = pi * st->PW;
    const float *xe = st->xe + 2 * pi * RS + j, *xo = st->xo + 2 * pi * RS + j;
    __m256 y0 = st->bias, y1 = y0, y2 = y0, y3 = y0;
    for (int r = 0; r < 4; r++) { /* input row 2*pi + r: tap row r (dr = 0), r-1 (dr = 1) */
        const float *E = xe + r * RS, *O = xo + r * RS;
        __m256 e0 = _mm256_loadu_ps(E), o0 = _mm256_loadu_ps(O);
        __m256 e1 = _mm256_loadu_ps(E + 1), o1 = _mm256_loadu_ps(O + 1);
        if (r < 3) {
            const __m256 *t = st->wv + 3 * r;
            y0 =
                _mm256_fmadd_ps(t[2], e1, _mm256_fmadd_ps(t[1], o0, _mm256_fmadd_ps(t[0], e0, y0)));
            y1 =
                _mm256_fmadd_ps(t[2], o1, _mm256_fmadd_ps(t[1], e1, _mm256_fmadd_ps(t[0], o0, y1)));
        }
        if (r > 0) {
            const __m256 *t = st->wv + 3 * (r - 1);
            y2 =
                _mm256_fmadd_ps(t[2], e1, _mm256_fmadd_ps(t[1], o0, _mm256_fmadd_ps(t[0], e0, y2)));
            y3 =
                _mm256_fmadd_ps(t[2], o1, _mm256_fmadd_ps(t[1], e1, _mm256_fmadd_ps(t[0], o0, y3)));
        }
    }
    /* first maximum in row-major window order, as PyTorch (strict >) */
    __m256 g01 = _mm256_cmp_ps(y1, y0, _CMP_GT_OQ), g23 = _mm256_cmp_ps(y3, y2, _CMP_GT_OQ);
    __m256 zb01 = _mm256_blendv_ps(y0, y1, g01), zb23 = _mm256_blendv_ps(y2, y3, g23);
    __m256 g = _mm256_cmp_ps(zb23, zb01, _CMP_GT_OQ);
    __m256 z = _mm256_blendv_ps(zb01, zb23, g);
    /* a unit passes when it is in the row, its ReLU is on and dropout keeps it */
    __m256 on = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ);
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i in_row = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    if (n < 8) on = _mm256_and_ps(on, _mm256_castsi256_ps(in_row));
    if (st->drop)
        on = _mm256_and_ps(on, keep_mask_avx2(st->stream, st->e0 + row + j, st->threshold));
    __m256 o = _mm256_and_ps(on, z);
    if (st->logits) {
        *l0 = _mm256_fmadd_ps(o, load_row(st->lw0 + row, j, st->PW), *l0);
        *l1 = _mm256_fmadd_ps(o, load_row(st->lw1 + row, j, st->PW), *l1);
    }
    if (st->out) {
        if (n == 8)
            _mm256_storeu_ps(st->out + row + j, o);
        else
            _mm256_maskstore_ps(st->out + row + j, in_row, o);
    }
    if (st->arg) {
        /* code = 2 * (lower pair wins) + the winner within its pair, or INACTIVE */
        __m256i k01 = _mm256_srli_epi32(_mm256_castps_si256(g01), 31);
        __m256i k23 = _mm256_sub_epi32(_mm256_set1_epi32(2), _mm256_castps_si256(g23));
        __m256i k = _mm256_blendv_epi8(k01, k23, _mm256_castps_si256(g));
        k = _mm256_blendv_epi8(_mm256_set1_epi32(ADFD_POOL_INACTIVE), k, _mm256_castps_si256(on));
        /* a full 8-byte store in the tail writes the next row's first code, which that row
         * overwrites later: only the plane's last row needs the exact store */
        store_codes(st->arg + row + j, k, last ? n : 8);
    }
}

/* pool_plane (layers_kernels.h), the four window outputs of 8 pooled units in registers: the
 * 9 taps of each output in the order of conv_quad, then the pool, the ReLU and dropout as
 * compares and blends, and the Linear dot products as two more multiply-adds. */
__attribute__((target("avx2,fma"))) void pool_plane_avx2(const pool_plane *p) {
    plane_state st;
    for (int k = 0; k < 9; k++)
        st.wv[k] = _mm256_set1_ps(p->taps[k]);
    st.bias = _mm256_set1_ps(p->tap_bias);
    st.xe = p->xe;
    st.xo = p->xo;
    st.lw0 = p->lw0;
    st.lw1 = p->lw1;
    st.out = p->out;
    st.arg = p->arg;
    st.RS = p->RS;
    st.PW = p->PW;
    st.drop = p->threshold != 0;
    st.logits = p->logit_lanes != NULL;
    st.stream = p->stream;
    st.e0 = p->e0;
    st.threshold = p->threshold;
    __m256 l0 = _mm256_setzero_ps(), l1 = l0;
    if (st.logits) {
        l0 = _mm256_loadu_ps(p->logit_lanes[0]);
        l1 = _mm256_loadu_ps(p->logit_lanes[1]);
    }
    int PH = p->PH, PW = p->PW, full = PW / 8 * 8;
    for (int pi = 0; pi < PH; pi++) {
        for (int j = 0; j < full; j += 8)
            pool_vector(&st, &l0, &l1, pi, j, 8, 0);
        if (full < PW) pool_vector(&st, &l0, &l1, pi, full, PW - full, pi == PH - 1);
    }
    if (st.logits) {
        _mm256_storeu_ps(p->logit_lanes[0], l0);
        _mm256_storeu_ps(p->logit_lanes[1], l1);
    }
}

/* The 10 accumulators of sparse_plane for lanes jv .. jv+7 (n valid) over all pooled rows. A
 * unit's gradient d goes to the one window position (dr, dc) its pool chose, so per tap row di
 * the input row 2pi+dr+di is picked by a blend on dr, and the column by masking d on dc (ge:
 * dc = 0, go: dc = 1): 12 blends and 18 multiply-adds instead of 36 on four masked gradients.
 * Every other product is an exact +0, so the sums are those of the plain loop. */
AVX2_INLINE void sparse_block(__m256 a[10], const sparse_plane *s, int jv, int n) {
    int RS = s->RS, PW = s->PW, PH = s->PH;
    const uint8_t *arg = s->arg;
    const float *lw0 = s->lw0, *lw1 = s->lw1, *xe = s->xe + jv, *xo = s->xo + jv;
    __m256 g0 = _mm256_set1_ps(s->g0), g1 = _mm256_set1_ps(s->g1);
    __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
    for (int pi = 0; pi < PH; pi++) {
        int row = pi * PW;
        /* lanes past the row: weights 0, so d = 0 and every window gradient is 0 */
        __m256 d = _mm256_fmadd_ps(g1, load_row(lw1 + row, jv, PW),
                                   _mm256_mul_ps(g0, load_row(lw0 + row, jv, PW)));
        uint64_t bytes = 0; /* the codes of lanes jv .. jv+n, none read past the row */
        if (n == 8)
            memcpy(&bytes, arg + row + jv, 8);
        else
            for (int l = 0; l < n; l++)
                bytes |= (uint64_t)arg[row + jv + l] << (8 * l);
        __m256i code = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)bytes));
        /* code = 2 dr + dc, or ADFD_POOL_INACTIVE (4): no gradient */
        d = _mm256_and_ps(d, _mm256_castsi256_ps(
                                 _mm256_cmpgt_epi32(_mm256_set1_epi32(ADFD_POOL_INACTIVE), code)));
        __m256 dc = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(code, one), one));
        __m256 dr = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(code, two), two));
        __m256 ge = _mm256_andnot_ps(dc, d), go = _mm256_and_ps(dc, d);
        a[9] = _mm256_add_ps(a[9], d);
        const float *E = xe + 2 * pi * RS, *O = xo + 2 * pi * RS;
        for (int di = 0; di < 3; di++) {
            const float *E0 = E + di * RS, *O0 = O + di * RS, *E1 = E0 + RS, *O1 = O0 + RS;
            /* columns 2j, 2j+1, 2j+2, 2j+3 of input row 2pi+dr+di */
            __m256 v0 = _mm256_blendv_ps(_mm256_loadu_ps(E0), _mm256_loadu_ps(E1), dr);
            __m256 v1 = _mm256_blendv_ps(_mm256_loadu_ps(O0), _mm256_loadu_ps(O1), dr);
            __m256 v2 = _mm256_blendv_ps(_mm256_loadu_ps(E0 + 1), _mm256_loadu_ps(E1 + 1), dr);
            __m256 v3 = _mm256_blendv_ps(_mm256_loadu_ps(O0 + 1), _mm256_loadu_ps(O1 + 1), dr);
            a[3 * di] = _mm256_fmadd_ps(go, v1, _mm256_fmadd_ps(ge, v0, a[3 * di]));
            a[3 * di + 1] = _mm256_fmadd_ps(go, v2, _mm256_fmadd_ps(ge, v1, a[3 * di + 1]));
            a[3 * di + 2] = _mm256_fmadd_ps(go, v3, _mm256_fmadd_ps(ge, v2, a[3 * di + 2]));
        }
    }
}

/* sparse_plane (layers_kernels.h): one lane block at a time over all pooled rows, so the 10
 * accumulators stay in registers; the window gradients are made in registers from the codes
 * and the Linear weights, never stored. */
__attribute__((target("avx2,fma"))) void sparse_plane_avx2(const sparse_plane *s) {
    int PW = s->PW;
    for (int jv = 0; jv < PW; jv += 8) {
        __m256 a[10];
        for (int k = 0; k < 10; k++)
            a[k] = _mm256_setzero_ps();
        if (jv + 8 <= PW)
            sparse_block(a, s, jv, 8);
        else
            sparse_block(a, s, jv, PW - jv);
        for (int k = 0; k < 10; k++) {
            float v[8];
            _mm256_storeu_ps(v, a[k]);
            for (int l = 0; l < 8; l++)
                s->acc[k][l] += v[l];
        }
    }
}
#endif
