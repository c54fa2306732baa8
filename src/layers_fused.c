/* The fused conv -> BatchNorm -> ReLU -> MaxPool -> Dropout block of the seed CNN (see
 * include/adfd/layers.h): forward, BatchNorm statistics from patch moments, and backward. */
#include "adfd/layers.h"

#include <math.h>
#include <string.h>

#include "adfd/util.h"
#include "layers_kernels.h"

/* The fused kernels work in the pooled grid: a sample's input is split into its even and odd
 * columns (zero padded to RS), so the four convolution outputs of pooling window (pi, j) are
 * unit-stride vectors over j, and pooling, BatchNorm, ReLU, dropout and the weight gradient are
 * element-wise over j: everything vectorises, nothing of size C*(H-2)*(W-2) is stored. */
#define MAX_H 256
#define MAX_L 64           /* pooled row padded to a multiple of 8 */
#define MAX_RS (MAX_L + 8) /* de-interleaved input row (one extra vector for the j+1 tap) */

/* The kernels switch to their portable versions when AVX2+FMA is missing or when a test
 * asks for them (layers_use_portable_kernels). */
static int portable_only;

void layers_use_portable_kernels(int on) {
    portable_only = on;
}

static int use_avx2(void) {
#ifdef HAVE_AVX2_KERNELS
    return !portable_only && cpu_has_avx2_fma();
#else
    return 0;
#endif
}

typedef struct {
    int PH, PW, L, RS;
} pool_geometry;

static pool_geometry pool_geometry_of(int H, int W) {
    pool_geometry g;
    ADFD_CHECK(H >= 4 && W >= 4 && H % 2 == 0 && W % 2 == 0 && H <= MAX_H,
               "fused conv block needs even H, W in [4,%d] (got %dx%d)", MAX_H, H, W);
    g.PH = (H - 2) / 2;
    g.PW = (W - 2) / 2;
    g.L = (g.PW + 7) / 8 * 8;
    g.RS = g.L + 8;
    ADFD_CHECK(g.L <= MAX_L, "fused conv block: width %d too large", W);
    return g;
}

/* xe, xo [H][RS]: the even and the odd columns of one sample x [H][W], zero padded */
static void deinterleave(float *xe, float *xo, const float *x, int H, int W, int RS) {
#ifdef HAVE_AVX2_KERNELS
    if (use_avx2()) {
        deinterleave_avx2(xe, xo, x, H, W, RS);
        return;
    }
#endif
    int half = W / 2; /* W is even */
    for (int r = 0; r < H; r++) {
        const float *row = x + (size_t)r * W;
        float *e = xe + r * RS, *o = xo + r * RS;
        for (int q = 0; q < half; q++) {
            e[q] = row[2 * q];
            o[q] = row[2 * q + 1];
        }
        for (int q = half; q < RS; q++)
            e[q] = o[q] = 0.0f;
    }
}

/* y[s][j], s = 2*dr + dc: the conv output at (2*pi + dr, 2*j + dc), lanes j < L. One window
 * row at a time and one multiply-add per statement, so that the accumulators, the 9 weights and
 * the loads fit in the 16 vector registers and every step is an FMA. */
static inline void conv_quad(float y[4][MAX_L], const float *xe, const float *xo, int RS, int pi,
                             const float *w, float bias, int L) {
    for (int dr = 0; dr < 2; dr++) {
        const float *E0 = xe + (2 * pi + dr) * RS, *O0 = xo + (2 * pi + dr) * RS;
        const float *E1 = E0 + RS, *O1 = O0 + RS, *E2 = E1 + RS, *O2 = O1 + RS;
        float *ye = y[2 * dr], *yo = y[2 * dr + 1];
        for (int j = 0; j < L; j++) {
            float a = bias, b = bias;
            a += w[0] * E0[j];
            b += w[0] * O0[j];
            a += w[1] * O0[j];
            b += w[1] * E0[j + 1];
            a += w[2] * E0[j + 1];
            b += w[2] * O0[j + 1];
            a += w[3] * E1[j];
            b += w[3] * O1[j];
            a += w[4] * O1[j];
            b += w[4] * E1[j + 1];
            a += w[5] * E1[j + 1];
            b += w[5] * O1[j + 1];
            a += w[6] * E2[j];
            b += w[6] * O2[j];
            a += w[7] * O2[j];
            b += w[7] * E2[j + 1];
            a += w[8] * E2[j + 1];
            b += w[8] * O2[j + 1];
            ye[j] = a;
            yo[j] = b;
        }
    }
}

/* Patch moments: with them the BatchNorm statistics of the convolution output and the dense
 * part of its backward are a few 9x9 products per channel instead of a pass over C*126*78
 * values (y = b + w.p, so sum y = N b + w.S and sum y^2 = N b^2 + 2 b w.S + w'Gw). */
#define MOMENT_ROWS 4
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
/* conv_patch_moments in AVX2 for one sample. A block (di, di2) of G sums, over the rows r in
 * [di, di+OH), the row products x[r][j+p] * x[r+d][j+q] (d = di2 - di, j < OW): the blocks with
 * the same d share all but their edge rows, so each row product is computed once per d (3
 * passes over the sample instead of 6), over the rows common to those blocks and then over
 * each edge row alone. S comes from the row sums of the d = 0 pass the same way. Float lanes
 * over at most MOMENT_BLOCK_ROWS rows, then double. */
#define MOMENT_BLOCK_ROWS 16

/* out[3p+q] = sum over rows [r0, r1) of x[r][j+p] x[r+d][j+q]; sums[p] (d = 0) sum x[r][j+p] */
__attribute__((target("avx2,fma"))) static void row_products_avx2(double out[9], double sums[3],
                                                                  const float *x, int W, int OW,
                                                                  int d, int r0, int r1) {
    int full = OW / 8 * 8;
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(OW - full), lane);
    for (int k = 0; k < 9; k++)
        out[k] = 0.0;
    for (int p = 0; p < 3; p++)
        sums[p] = 0.0;
    for (int i0 = r0; i0 < r1; i0 += MOMENT_BLOCK_ROWS) {
        __m256 acc[9], sacc[3];
        for (int k = 0; k < 9; k++)
            acc[k] = _mm256_setzero_ps();
        for (int p = 0; p < 3; p++)
            sacc[p] = _mm256_setzero_ps();
        for (int r = i0; r < r1 && r < i0 + MOMENT_BLOCK_ROWS; r++) {
            const float *r1p = x + (size_t)r * W, *r2p = x + (size_t)(r + d) * W;
            for (int j = 0; j < OW; j += 8) {
                __m256 a[3], b[3];
                for (int t = 0; t < 3; t++) {
                    a[t] = j < full ? _mm256_loadu_ps(r1p + j + t)
                                    : _mm256_maskload_ps(r1p + j + t, tail);
                    b[t] = d == 0     ? a[t]
                           : j < full ? _mm256_loadu_ps(r2p + j + t)
                                      : _mm256_maskload_ps(r2p + j + t, tail);
                }
                for (int p = 0; p < 3; p++)
                    for (int q = 0; q < 3; q++)
                        acc[3 * p + q] = _mm256_fmadd_ps(a[p], b[q], acc[3 * p + q]);
                if (d == 0)
                    for (int p = 0; p < 3; p++)
                        sacc[p] = _mm256_add_ps(sacc[p], a[p]);
            }
        }
        for (int k = 0; k < 12; k++) {
            float v[8];
            _mm256_storeu_ps(v, k < 9 ? acc[k] : sacc[k - 9]);
            double sum = 0.0;
            for (int l = 0; l < 8; l++)
                sum += v[l];
            if (k < 9)
                out[k] += sum;
            else
                sums[k - 9] += sum;
        }
    }
}

__attribute__((target("avx2,fma"))) static void patch_moments_avx2(double *S, double *G,
                                                                   const float *x, int H, int W) {
    int OH = H - 2, OW = W - 2;
    for (int d = 0; d < 3; d++) {
        /* rows in every block (di, di+d), di = 0 .. 2-d: [2-d, OH); the others alone */
        double core[9], core_sums[3], block[3][9], block_sums[3][3];
        row_products_avx2(core, core_sums, x, W, OW, d, 2 - d, OH);
        for (int di = 0; di <= 2 - d; di++) {
            memcpy(block[di], core, sizeof core);
            memcpy(block_sums[di], core_sums, sizeof core_sums);
        }
        for (int r = 0; r < OH + 2 - d; r++) {
            if (r >= 2 - d && r < OH) continue;
            double edge[9], edge_sums[3];
            row_products_avx2(edge, edge_sums, x, W, OW, d, r, r + 1);
            for (int di = 0; di <= 2 - d; di++)
                if (r >= di && r < di + OH) {
                    for (int k = 0; k < 9; k++)
                        block[di][k] += edge[k];
                    for (int p = 0; p < 3; p++)
                        block_sums[di][p] += edge_sums[p];
                }
        }
        for (int di = 0; di <= 2 - d; di++) {
            int di2 = di + d;
            for (int p = 0; p < 3; p++)
                for (int q = 0; q < 3; q++) {
                    G[9 * (3 * di + p) + 3 * di2 + q] += block[di][3 * p + q];
                    if (d) G[9 * (3 * di2 + q) + 3 * di + p] += block[di][3 * p + q];
                }
            if (d == 0)
                for (int p = 0; p < 3; p++)
                    S[3 * di + p] += block_sums[di][p];
        }
    }
}

#endif

HOT void conv_patch_moments(double *S, double *G, const float *inp, int B, int H, int W) {
    int OH = H - 2, OW = W - 2;
    for (int k = 0; k < 9; k++)
        S[k] = 0.0;
    for (int k = 0; k < 81; k++)
        G[k] = 0.0;
#if defined(__GNUC__) && defined(__x86_64__)
    if (use_avx2()) {
        for (int b = 0; b < B; b++)
            patch_moments_avx2(S, G, inp + (size_t)b * H * W, H, W);
        return;
    }
#endif
    for (int b = 0; b < B; b++)
        for (int i0 = 0; i0 < OH; i0 += MOMENT_ROWS) {
            /* float lanes over a few rows, then double (the moments feed differences of large
             * terms, so they are kept a few digits better than a plain float sum) */
            float acc[45][LANES] = {{0}}, sacc[9][LANES] = {{0}};
            for (int i = i0; i < OH && i < i0 + MOMENT_ROWS; i++) {
                const float *x = inp + (size_t)b * H * W + (size_t)i * W;
                int j = 0;
                for (; j + LANES <= OW; j += LANES) {
                    float p[9][LANES];
                    for (int k = 0; k < 9; k++)
                        for (int l = 0; l < LANES; l++)
                            p[k][l] = x[(k / 3) * W + k % 3 + j + l];
                    int t = 0;
                    for (int k = 0; k < 9; k++) {
                        for (int l = 0; l < LANES; l++)
                            sacc[k][l] += p[k][l];
                        for (int k2 = k; k2 < 9; k2++, t++)
                            for (int l = 0; l < LANES; l++)
                                acc[t][l] += p[k][l] * p[k2][l];
                    }
                }
                for (; j < OW; j++) {
                    float p[9];
                    for (int k = 0; k < 9; k++)
                        p[k] = x[(k / 3) * W + k % 3 + j];
                    int t = 0;
                    for (int k = 0; k < 9; k++) {
                        sacc[k][0] += p[k];
                        for (int k2 = k; k2 < 9; k2++, t++)
                            acc[t][0] += p[k] * p[k2];
                    }
                }
            }
            int t = 0;
            for (int k = 0; k < 9; k++) {
                S[k] += lanes_sum(sacc[k]);
                for (int k2 = k; k2 < 9; k2++, t++)
                    G[9 * k + k2] += lanes_sum(acc[t]);
            }
        }
    for (int k = 0; k < 9; k++)
        for (int k2 = 0; k2 < k; k2++)
            G[9 * k + k2] = G[9 * k2 + k];
}

void conv_bn_sums_from_moments(double *sums, const double *S, const double *G, double npos,
                               const float *weight, const float *bias, int C) {
    for (int c = 0; c < C; c++) {
        const float *w = weight + 9 * c;
        double ws = 0.0, wgw = 0.0, b = bias[c];
        for (int k = 0; k < 9; k++) {
            ws += w[k] * S[k];
            for (int k2 = 0; k2 < 9; k2++)
                wgw += w[k] * G[9 * k + k2] * w[k2];
        }
        sums[c] = npos * b + ws;
        sums[C + c] = npos * b * b + 2.0 * b * ws + wgw;
    }
}

HOT void conv_bn_sums(double *sums, const float *inp, const float *weight, const float *bias, int B,
                      int C, int H, int W) {
    pool_geometry g = pool_geometry_of(H, W);
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS], y[4][MAX_L], valid[MAX_L];
    for (int j = 0; j < g.L; j++)
        valid[j] = j < g.PW ? 1.0f : 0.0f;
    for (int c = 0; c < 2 * C; c++)
        sums[c] = 0.0;
    for (int b = 0; b < B; b++) {
        deinterleave(xe, xo, inp + (size_t)b * H * W, H, W, g.RS);
        for (int c = 0; c < C; c++) {
            /* float lanes over one plane (63 rows), then double across planes */
            float s[MAX_L] = {0}, ss[MAX_L] = {0};
            for (int pi = 0; pi < g.PH; pi++) {
                conv_quad(y, xe, xo, g.RS, pi, weight + 9 * c, bias[c], g.L);
                for (int j = 0; j < g.L; j++) {
                    float v = valid[j];
                    s[j] += (y[0][j] + y[1][j] + y[2][j] + y[3][j]) * v;
                    ss[j] += (y[0][j] * y[0][j] + y[1][j] * y[1][j] + y[2][j] * y[2][j] +
                              y[3][j] * y[3][j]) *
                             v;
                }
            }
            double ps = 0.0, pss = 0.0;
            for (int j = 0; j < g.L; j++) {
                ps += s[j];
                pss += ss[j];
            }
            sums[c] += ps;
            sums[C + c] += pss;
        }
    }
}

/* pool_plane_avx2 in plain C, the same operations in the same order */
static void pool_plane_portable(const pool_plane *p) {
    float y[4][MAX_L], keep[MAX_L];
    for (int j = 0; j < MAX_L; j++)
        keep[j] = 1.0f;
    for (int pi = 0; pi < p->PH; pi++) {
        int row = pi * p->PW;
        conv_quad(y, p->xe, p->xo, p->RS, pi, p->taps, p->tap_bias, p->L);
        if (p->threshold)
            dropout_keep_row(keep, p->stream, p->e0 + (uint32_t)row, p->PW, p->threshold);
        for (int j = 0; j < p->PW; j++) {
            /* first maximum in row-major window order, as PyTorch (strict >) */
            int g01 = y[1][j] > y[0][j], g23 = y[3][j] > y[2][j];
            float zb01 = g01 ? y[1][j] : y[0][j], zb23 = g23 ? y[3][j] : y[2][j];
            int g = zb23 > zb01;
            float z = g ? zb23 : zb01;
            /* a unit passes when its ReLU is on and dropout keeps it */
            int on = z > 0.0f && keep[j] > 0.0f;
            float o = on ? z : 0.0f;
            if (p->logit_lanes) {
                p->logit_lanes[0][j % LANES] += o * p->lw0[row + j];
                p->logit_lanes[1][j % LANES] += o * p->lw1[row + j];
            }
            if (p->out) p->out[row + j] = o;
            if (p->arg) p->arg[row + j] = (uint8_t)(on ? (g ? 2 + g23 : g01) : ADFD_POOL_INACTIVE);
        }
    }
}

static void pool_plane_run(const pool_plane *p) {
#ifdef HAVE_AVX2_KERNELS
    if (use_avx2()) {
        pool_plane_avx2(p);
        return;
    }
#endif
    pool_plane_portable(p);
}

/* The plane kernel's parameters for channel c of one sample (xe, xo already split): the
 * BatchNorm map bn(y) = beta + (y - mean) * gamma * invstd and the dropout scale folded into
 * the conv taps and bias. */
static pool_plane pool_plane_of(const pool_geometry *g, const float *xe, const float *xo,
                                const float *weight, const float *bias, const float *mean,
                                const float *invstd, const float *gamma, const float *beta,
                                const dropout_spec *drop, int b, int c) {
    pool_plane p;
    memset(&p, 0, sizeof p);
    p.xe = xe;
    p.xo = xo;
    p.RS = g->RS;
    p.PH = g->PH;
    p.PW = g->PW;
    p.L = g->L;
    int dropping = drop && drop->p > 0.0f;
    float scale = dropping ? 1.0f / (1.0f - drop->p) : 1.0f;
    float bn_scale = gamma[c] * invstd[c];
    for (int k = 0; k < 9; k++)
        p.taps[k] = weight[9 * c + k] * bn_scale * scale;
    p.tap_bias = (beta[c] + (bias[c] - mean[c]) * bn_scale) * scale;
    if (dropping) {
        p.threshold = dropout_threshold(drop->p);
        p.stream = dropout_stream(drop->seed, drop->epoch, drop->sample_ids[b]);
        p.e0 = (uint32_t)((size_t)c * g->PH * g->PW);
    }
    return p;
}

/* The small-C path: also the normalised value at the chosen position (pool_xhat), for
 * conv_bn_pool_backward_sums. */
HOT static void pool_forward_with_xhat(float *out, float *pool_xhat, uint8_t *pool_arg,
                                       const float *inp, const float *weight, const float *bias,
                                       const float *mean, const float *invstd, const float *gamma,
                                       const float *beta, const dropout_spec *drop, int B, int C,
                                       int H, int W) {
    pool_geometry g = pool_geometry_of(H, W);
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS], y[4][MAX_L];
    float zbest[MAX_L], ybest[MAX_L], kbest[MAX_L]; /* kbest: window index 0..3 */
    float keep[MAX_L];
    int dropping = drop && drop->p > 0.0f;
    uint32_t threshold = dropping ? dropout_threshold(drop->p) : 0;
    float scale = dropping ? 1.0f / (1.0f - drop->p) : 1.0f;
    for (int j = 0; j < MAX_L; j++)
        keep[j] = 1.0f;
    for (int b = 0; b < B; b++) {
        deinterleave(xe, xo, inp + (size_t)b * H * W, H, W, g.RS);
        uint64_t stream =
            dropping ? dropout_stream(drop->seed, drop->epoch, drop->sample_ids[b]) : 0;
        for (int c = 0; c < C; c++) {
            /* bn(y) = y * bn_scale + shift: the normalisation folded into one multiply-add */
            float bn_scale = gamma[c] * invstd[c], shift = beta[c] - mean[c] * bn_scale;
            size_t plane = ((size_t)b * C + c) * g.PH * g.PW;
            for (int pi = 0; pi < g.PH; pi++) {
                size_t o = plane + (size_t)pi * g.PW;
                if (dropping)
                    dropout_keep_row(keep, stream, (uint32_t)(o - (size_t)b * C * g.PH * g.PW),
                                     g.PW, threshold);
                conv_quad(y, xe, xo, g.RS, pi, weight + 9 * c, bias[c], g.L);
                for (int j = 0; j < g.L; j++) {
                    /* first maximum in row-major window order, as PyTorch (strict >) */
                    float z0 = y[0][j] * bn_scale + shift, z1 = y[1][j] * bn_scale + shift;
                    float z2 = y[2][j] * bn_scale + shift, z3 = y[3][j] * bn_scale + shift;
                    float k01 = z1 > z0 ? 1.0f : 0.0f, k23 = z3 > z2 ? 3.0f : 2.0f;
                    float zb01 = z1 > z0 ? z1 : z0, zb23 = z3 > z2 ? z3 : z2;
                    float yb01 = z1 > z0 ? y[1][j] : y[0][j], yb23 = z3 > z2 ? y[3][j] : y[2][j];
                    zbest[j] = zb23 > zb01 ? zb23 : zb01;
                    ybest[j] = zb23 > zb01 ? yb23 : yb01;
                    kbest[j] = zb23 > zb01 ? k23 : k01;
                }
                /* a unit passes when its ReLU is on and dropout keeps it */
                for (int j = 0; j < g.PW; j++) {
                    float z = zbest[j], k = kbest[j], kept = keep[j];
                    float on = z > 0.0f ? kept : 0.0f;
                    float code = z > 0.0f && kept > 0.0f ? k : (float)ADFD_POOL_INACTIVE;
                    out[o + j] = on * z * scale;
                    kbest[j] = code;
                }
                if (pool_arg)
                    for (int j = 0; j < g.PW; j++)
                        pool_arg[o + j] = (uint8_t)kbest[j];
                for (int j = 0; j < g.PW; j++)
                    pool_xhat[o + j] = (ybest[j] - mean[c]) * invstd[c];
            }
        }
    }
}

/* The block, plane by plane, into out and/or (linear_w not NULL) the two logits per sample. */
static void pool_forward_planes(float *logits, float *out, uint8_t *pool_arg, const float *inp,
                                const float *weight, const float *bias, const float *mean,
                                const float *invstd, const float *gamma, const float *beta,
                                const dropout_spec *drop, const float *linear_w,
                                const float *linear_b, int B, int C, int H, int W) {
    pool_geometry g = pool_geometry_of(H, W);
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS];
    size_t P = (size_t)g.PH * g.PW, PS = (size_t)C * P;
    for (int b = 0; b < B; b++) {
        deinterleave(xe, xo, inp + (size_t)b * H * W, H, W, g.RS);
        float lanes[2][LANES] = {{0}};
        for (int c = 0; c < C; c++) {
            pool_plane p =
                pool_plane_of(&g, xe, xo, weight, bias, mean, invstd, gamma, beta, drop, b, c);
            size_t plane = (size_t)b * PS + (size_t)c * P;
            p.out = out ? out + plane : NULL;
            p.arg = pool_arg ? pool_arg + plane : NULL;
            if (linear_w) {
                p.logit_lanes = lanes;
                p.lw0 = linear_w + (size_t)c * P;
                p.lw1 = linear_w + PS + (size_t)c * P;
            }
            pool_plane_run(&p);
        }
        if (linear_w)
            for (int k = 0; k < 2; k++)
                logits[2 * b + k] = linear_b[k] + lanes_sum(lanes[k]);
    }
}

HOT void conv_bn_pool_forward(float *out, float *pool_xhat, uint8_t *pool_arg, const float *inp,
                              const float *weight, const float *bias, const float *mean,
                              const float *invstd, const float *gamma, const float *beta,
                              const dropout_spec *drop, int B, int C, int H, int W) {
    if (pool_xhat)
        pool_forward_with_xhat(out, pool_xhat, pool_arg, inp, weight, bias, mean, invstd, gamma,
                               beta, drop, B, C, H, W);
    else
        pool_forward_planes(NULL, out, pool_arg, inp, weight, bias, mean, invstd, gamma, beta, drop,
                            NULL, NULL, B, C, H, W);
}

HOT void conv_bn_pool_linear_forward(float *logits, float *out, uint8_t *pool_arg, const float *inp,
                                     const float *weight, const float *bias, const float *mean,
                                     const float *invstd, const float *gamma, const float *beta,
                                     const dropout_spec *drop, const float *linear_w,
                                     const float *linear_b, int B, int C, int H, int W) {
    pool_forward_planes(logits, out, pool_arg, inp, weight, bias, mean, invstd, gamma, beta, drop,
                        linear_w, linear_b, B, C, H, W);
}

HOT void conv_bn_pool_backward_sums(double *dsums, const float *dout, const float *pool_xhat,
                                    const uint8_t *pool_arg, float out_scale, int B, int C, int H,
                                    int W) {
    size_t P = (size_t)((H - 2) / 2) * ((W - 2) / 2);
    for (int c = 0; c < C; c++) {
        double s = 0.0, sx = 0.0;
        for (int b = 0; b < B; b++) {
            size_t plane = ((size_t)b * C + c) * P;
            const float *d = dout + plane, *xh = pool_xhat + plane;
            const uint8_t *arg = pool_arg + plane;
            /* float lanes over one plane, then double */
            float ls[LANES] = {0}, lsx[LANES] = {0};
            size_t p = 0;
            for (; p + LANES <= P; p += LANES)
                for (int l = 0; l < LANES; l++) {
                    int a = arg[p + l];
                    float dy = (float)(a != ADFD_POOL_INACTIVE) * d[p + l] * out_scale;
                    ls[l] += dy;
                    lsx[l] += dy * xh[p + l];
                }
            for (; p < P; p++) {
                float dy = arg[p] != ADFD_POOL_INACTIVE ? d[p] * out_scale : 0.0f;
                ls[0] += dy;
                lsx[0] += dy * xh[p];
            }
            s += lanes_sum(ls);
            sx += lanes_sum(lsx);
        }
        dsums[c] = s;
        dsums[C + c] = sx;
    }
}

/* g4[s][j] = dout * out_scale * factor at the window position s the forward pass chose,
 * 0 elsewhere and in the lanes j >= PW */
static inline void window_gradients(float *g0, float *g1, float *g2, float *g3, const float *dout,
                                    const uint8_t *arg, float factor, int n) {
    for (int j = 0; j < n; j++) {
        float d = factor * dout[j];
        int a = arg[j]; /* (a == s) * d, not a conditional: GCC vectorises this form */
        g0[j] = (float)(a == 0) * d;
        g1[j] = (float)(a == 1) * d;
        g2[j] = (float)(a == 2) * d;
        g3[j] = (float)(a == 3) * d;
    }
}

/* acc[k][j] += sum over the window of g4 * (input under tap k), for pooled row pi: tap (di, dc)
 * sees input row 2pi+dr+di at column 2j+dc (window column 0) and 2j+1+dc (column 1) */
static inline void window_weight_gradients(float acc[9][MAX_L], float g4[4][MAX_L], const float *xe,
                                           const float *xo, int RS, int pi, int L) {
    for (int di = 0; di < 3; di++)
        for (int dr = 0; dr < 2; dr++) {
            const float *E = xe + (2 * pi + dr + di) * RS, *O = xo + (2 * pi + dr + di) * RS;
            const float *ge = g4[2 * dr], *go = g4[2 * dr + 1];
            float *a0 = acc[3 * di], *a1 = acc[3 * di + 1], *a2 = acc[3 * di + 2];
            for (int j = 0; j < L; j++) {
                a0[j] += ge[j] * E[j];
                a0[j] += go[j] * O[j];
                a1[j] += ge[j] * O[j];
                a1[j] += go[j] * E[j + 1];
                a2[j] += ge[j] * E[j + 1];
                a2[j] += go[j] * O[j + 1];
            }
        }
}

static double lanes_sum_double(const float *a, int L) {
    double s = 0.0;
    for (int j = 0; j < L; j++)
        s += a[j];
    return s;
}

HOT void conv_bn_pool_backward(float *dweight, float *dbias, float *dgamma, float *dbeta,
                               const float *dout, const uint8_t *pool_arg, float out_scale,
                               const float *inp, const float *weight, const float *bias,
                               const float *mean, const float *invstd, const float *gamma,
                               const double *local_dsums, const double *global_dsums, double count,
                               int B, int C, int H, int W) {
    pool_geometry g = pool_geometry_of(H, W);
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS], y[4][MAX_L], valid[MAX_L];
    float g4[4][MAX_L] = {{0}};
    for (int j = 0; j < g.L; j++)
        valid[j] = j < g.PW ? 1.0f : 0.0f;
    for (int b = 0; b < B; b++) {
        deinterleave(xe, xo, inp + (size_t)b * H * W, H, W, g.RS);
        for (int c = 0; c < C; c++) {
            /* dL/dy = gamma*invstd * (dL/dbn - mean(dL/dbn) - xhat * mean(dL/dbn * xhat)), the
             * means over the global batch: dy = gi * dL/dbn + k1 * (y - mean) + k2 */
            float gi = gamma[c] * invstd[c];
            float m1 = (float)(global_dsums[c] / count), m2 = (float)(global_dsums[C + c] / count);
            float k1 = -gi * m2 * invstd[c], k2 = -gi * m1, mu = mean[c];
            float acc[9][MAX_L] = {{0}}, dbacc[MAX_L] = {0};
            size_t plane = ((size_t)b * C + c) * g.PH * g.PW;
            for (int pi = 0; pi < g.PH; pi++) {
                size_t o = plane + (size_t)pi * g.PW;
                window_gradients(g4[0], g4[1], g4[2], g4[3], dout + o, pool_arg + o, gi * out_scale,
                                 g.PW);
                /* the dense BatchNorm term reaches every position */
                conv_quad(y, xe, xo, g.RS, pi, weight + 9 * c, bias[c], g.L);
                for (int s = 0; s < 4; s++)
                    for (int j = 0; j < g.L; j++)
                        g4[s][j] += (k1 * (y[s][j] - mu) + k2) * valid[j];
                for (int j = 0; j < g.L; j++)
                    dbacc[j] += g4[0][j] + g4[1][j] + g4[2][j] + g4[3][j];
                window_weight_gradients(acc, g4, xe, xo, g.RS, pi, g.L);
            }
            for (int k = 0; k < 9; k++)
                dweight[9 * c + k] += (float)lanes_sum_double(acc[k], g.L);
            dbias[c] += (float)lanes_sum_double(dbacc, g.L);
        }
    }
    for (int c = 0; c < C; c++) {
        dgamma[c] += (float)local_dsums[C + c];
        dbeta[c] += (float)local_dsums[c];
    }
}

/* sparse_plane_avx2 in plain C, the same operations in the same order */
static void sparse_plane_portable(const sparse_plane *s) {
    int RS = s->RS, PW = s->PW;
    for (int jv = 0; jv < s->L; jv += LANES) {
        float a[10][LANES] = {{0}};
        for (int pi = 0; pi < s->PH; pi++) {
            int row = pi * PW;
            float gw[4][LANES]; /* the window gradient at positions 0..3 of lane jv + l */
            for (int l = 0; l < LANES; l++) {
                int j = jv + l, code = j < PW ? s->arg[row + j] : ADFD_POOL_INACTIVE;
                float d = j < PW ? s->g1 * s->lw1[row + j] + s->g0 * s->lw0[row + j] : 0.0f;
                for (int q = 0; q < 4; q++)
                    gw[q][l] = code == q ? d : 0.0f;
            }
            /* tap (di, dc) sees input row 2pi+dr+di at column 2j+dc (window column 0) and
             * 2j+1+dc (window column 1), window rows dr = 0, 1 */
            for (int dr = 0; dr < 2; dr++) {
                const float *ge = gw[2 * dr], *go = gw[2 * dr + 1];
                for (int l = 0; l < LANES; l++)
                    a[9][l] += ge[l] + go[l];
                for (int di = 0; di < 3; di++) {
                    const float *E = s->xe + (2 * pi + dr + di) * RS + jv;
                    const float *O = s->xo + (2 * pi + dr + di) * RS + jv;
                    for (int l = 0; l < LANES; l++) {
                        a[3 * di][l] += ge[l] * E[l];
                        a[3 * di][l] += go[l] * O[l];
                        a[3 * di + 1][l] += ge[l] * O[l];
                        a[3 * di + 1][l] += go[l] * E[l + 1];
                        a[3 * di + 2][l] += ge[l] * E[l + 1];
                        a[3 * di + 2][l] += go[l] * O[l + 1];
                    }
                }
            }
        }
        for (int k = 0; k < 10; k++)
            for (int l = 0; l < LANES; l++)
                s->acc[k][l] += a[k][l];
    }
}

/* dout given (g0 = out_scale, g1 = 0: d = out_scale * dout exactly), or (dout NULL) each
 * plane's gradient made in the kernel from dlogits and the Linear weight */
static void backward_sparse(double *A, const float *dout, const float *dlogits,
                            const float *linear_w, const uint8_t *pool_arg, float out_scale,
                            const float *inp, int B, int C, int H, int W) {
    pool_geometry g = pool_geometry_of(H, W);
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS];
    size_t P = (size_t)g.PH * g.PW, PS = (size_t)C * P;
    for (int i = 0; i < 10 * C; i++)
        A[i] = 0.0;
    for (int b = 0; b < B; b++) {
        deinterleave(xe, xo, inp + (size_t)b * H * W, H, W, g.RS);
        for (int c = 0; c < C; c++) {
            size_t plane = ((size_t)b * C + c) * P;
            float acc[10][LANES] = {{0}};
            sparse_plane s = {
                acc, pool_arg + plane, NULL, NULL, 0.0f, 0.0f, xe, xo, g.RS, g.PH, g.PW, g.L};
            if (dout) {
                s.lw0 = s.lw1 = dout + plane;
                s.g0 = out_scale;
            } else {
                s.lw0 = linear_w + (size_t)c * P;
                s.lw1 = linear_w + PS + (size_t)c * P;
                s.g0 = dlogits[2 * b] * out_scale;
                s.g1 = dlogits[2 * b + 1] * out_scale;
            }
#ifdef HAVE_AVX2_KERNELS
            if (use_avx2())
                sparse_plane_avx2(&s);
            else
#endif
                sparse_plane_portable(&s);
            for (int k = 0; k < 10; k++)
                A[10 * c + k] += lanes_sum(acc[k]);
        }
    }
}

HOT void conv_bn_pool_backward_sparse(double *A, const float *dout, const uint8_t *pool_arg,
                                      float out_scale, const float *inp, int B, int C, int H,
                                      int W) {
    backward_sparse(A, dout, NULL, NULL, pool_arg, out_scale, inp, B, C, H, W);
}

HOT void conv_bn_pool_linear_backward_sparse(double *A, const float *dlogits, const float *linear_w,
                                             int K, const uint8_t *pool_arg, float out_scale,
                                             const float *inp, int B, int C, int H, int W) {
    ADFD_CHECK(K == 2, "the fused Linear backward has 2 outputs (got %d)", K);
    backward_sparse(A, NULL, dlogits, linear_w, pool_arg, out_scale, inp, B, C, H, W);
}

void conv_bn_sparse_dsums(double *dsums, const double *A, const float *weight, const float *bias,
                          const float *mean, const float *invstd, int C) {
    for (int c = 0; c < C; c++) {
        /* sum dy*xhat = invstd * sum dy (b + w.p - mean) over the chosen positions */
        double wa = 0.0;
        for (int k = 0; k < 9; k++)
            wa += weight[9 * c + k] * A[10 * c + k];
        dsums[c] = A[10 * c + 9];
        dsums[C + c] = invstd[c] * ((bias[c] - (double)mean[c]) * A[10 * c + 9] + wa);
    }
}

void conv_bn_moments_backward_double(double *dweight, double *dbias, double *dgamma, double *dbeta,
                                     const double *A, const double *S, const double *G, double npos,
                                     const double *local_dsums, const double *global_dsums,
                                     double count, const float *weight, const float *bias,
                                     const float *mean, const float *invstd, const float *gamma,
                                     int C) {
    for (int c = 0; c < C; c++) {
        /* dL/dy = gi * dy_pooled + k1 (y - mean) + k2 at every position (see above); the
         * dense part sum_pos (k1 (y - mean) + k2) p_k = alpha S_k + k1 (G w)_k, y = b + w.p */
        double gi = (double)gamma[c] * invstd[c];
        double m1 = global_dsums[c] / count, m2 = global_dsums[C + c] / count;
        double k1 = -gi * m2 * invstd[c], k2 = -gi * m1, alpha = k1 * (bias[c] - mean[c]) + k2;
        const float *w = weight + 9 * c;
        double ws = 0.0;
        for (int k = 0; k < 9; k++) {
            double gw = 0.0;
            for (int k2i = 0; k2i < 9; k2i++)
                gw += G[9 * k + k2i] * w[k2i];
            dweight[9 * c + k] = gi * A[10 * c + k] + alpha * S[k] + k1 * gw;
            ws += w[k] * S[k];
        }
        dbias[c] = gi * A[10 * c + 9] + alpha * npos + k1 * ws;
        dgamma[c] = local_dsums[C + c];
        dbeta[c] = local_dsums[c];
    }
}

void conv_bn_moments_backward(float *dweight, float *dbias, float *dgamma, float *dbeta,
                              const double *A, const double *S, const double *G, double npos,
                              const double *local_dsums, const double *global_dsums, double count,
                              const float *weight, const float *bias, const float *mean,
                              const float *invstd, const float *gamma, int C) {
    double dw[9 * C], db[C], dg[C], dbt[C];
    conv_bn_moments_backward_double(dw, db, dg, dbt, A, S, G, npos, local_dsums, global_dsums,
                                    count, weight, bias, mean, invstd, gamma, C);
    for (int i = 0; i < 9 * C; i++)
        dweight[i] += (float)dw[i];
    for (int c = 0; c < C; c++) {
        dbias[c] += (float)db[c];
        dgamma[c] += (float)dg[c];
        dbeta[c] += (float)dbt[c];
    }
}
