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

/* AVX2 kernels (src/layers_fused_avx2.c), to be called only when cpu_has_avx2_fma() */
#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_AVX2_KERNELS 1
int cpu_has_avx2_fma(void);
void pool_row_avx2(float *out, int32_t *code, const float *xe, const float *xo, int RS,
                   const float *w, float bias, float bn_scale, float shift, const float *keep,
                   float drop_scale, int PW, int L);
#endif

#endif
