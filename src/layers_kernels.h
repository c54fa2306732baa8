/* Private to the layer kernels (src/layers.c, src/layers_fused.c): the vectorisation width,
 * the AVX2/baseline clone attribute, and the dropout hash both the plain and fused dropout use.
 * Included only by .c files of this module. */
#ifndef ADFD_LAYERS_KERNELS_H
#define ADFD_LAYERS_KERNELS_H

#include <math.h>
#include <stdint.h>

#include "adfd/util.h"

#define LANES 8

#if defined(__GNUC__) && !defined(__clang__)
/* -std=c11 turns off multiply-add contraction; the kernels want FMA instructions */
#pragma GCC optimize("fp-contract=fast")
#endif
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

static inline float lanes_sum(const float *a) {
    float s = 0.0f;
    for (int l = 0; l < LANES; l++)
        s += a[l];
    return s;
}

/* Dropout draws: a 32-bit hash of (sample stream, element) per element, computed in vector
 * lanes; element e is dropped when its upper 16 bits are below round(p * 65536). */
static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static inline uint64_t dropout_stream(uint64_t seed, uint64_t epoch, int64_t sample_id) {
    return rng_hash64(seed, epoch, (uint64_t)sample_id);
}

static inline uint32_t dropout_threshold(float p) {
    return (uint32_t)lrintf(p * 65536.0f);
}

/* keep[j] = 1 or 0 for elements e0 .. e0+n of the sample with this stream */
static inline void dropout_keep_row(float *keep, uint64_t stream, uint32_t e0, int n,
                                    uint32_t threshold) {
    uint32_t lo = (uint32_t)stream, hi = (uint32_t)(stream >> 32);
    for (int j = 0; j < n; j++) {
        uint32_t u16 = mix32(lo ^ mix32(e0 + (uint32_t)j + hi)) >> 16;
        keep[j] = u16 < threshold ? 0.0f : 1.0f;
    }
}

/* One channel plane of one sample through the fused block (conv -> BatchNorm -> ReLU -> pool ->
 * dropout) and, optionally, into the two dot products of the Linear layer. The BatchNorm affine
 * map and the dropout scale are folded into the taps: z = tap_bias + taps . patch is the value
 * the pool compares and the block outputs (scale > 0 keeps the order and the sign). */
typedef struct {
    float *out;                  /* [PH][PW] block output, or NULL */
    uint8_t *arg;                /* [PH][PW] pool_arg codes, or NULL */
    float (*logit_lanes)[LANES]; /* [2][LANES] Linear partial sums, lane j % LANES; or NULL */
    const float *lw0, *lw1;      /* [PH][PW] Linear weights of outputs 0 and 1 on this plane */
    const float *xe, *xo;        /* [2*PH+2][RS] the sample's even / odd input columns */
    int RS, PH, PW, L;           /* L: PW rounded up to LANES */
    float taps[9], tap_bias;     /* folded conv weight and bias */
    uint64_t stream;             /* dropout_stream of the sample */
    uint32_t e0, threshold; /* element index of the plane's first unit; threshold 0: no dropout */
} pool_plane;

/* The Linear input gradient of one plane (d = scale * (g0 lw0 + g1 lw1)) sent to the window
 * position each pooled unit chose, times the input under each tap: acc[k] (k < 9) += sum d *
 * patch_k, acc[9] += sum d, over the plane (float lanes, lane j % LANES). */
typedef struct {
    float (*acc)[LANES];    /* [10][LANES] */
    const uint8_t *arg;     /* [PH][PW] */
    const float *lw0, *lw1; /* [PH][PW] */
    float g0, g1;           /* dlogits of the sample, times the dropout scale */
    const float *xe, *xo;   /* [2*PH+2][RS] */
    int RS, PH, PW, L;
} sparse_plane;

/* AVX2 kernels (src/layers_fused_avx2.c), to be called only when cpu_has_avx2_fma() */
#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_AVX2_KERNELS 1
void deinterleave_avx2(float *xe, float *xo, const float *x, int H, int W, int RS);
void pool_plane_avx2(const pool_plane *p);
void sparse_plane_avx2(const sparse_plane *s);
#endif

#endif
