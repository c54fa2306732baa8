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
/* conv_patch_moments in AVX2 for one sample: G by 3x3 blocks of tap rows (di, di2), the 9
 * products of a block in registers; S from row sums. Sums in float over MOMENT_BLOCK_ROWS rows,
 * then double. */
#define MOMENT_BLOCK_ROWS 16
__attribute__((target("avx2,fma"))) static void patch_moments_avx2(double *S, double *G,
                                                                   const float *x, int H, int W) {
    int OH = H - 2, OW = W - 2, full = OW / 8 * 8;
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(OW - full), lane);
    for (int di = 0; di < 3; di++)
        for (int di2 = di; di2 < 3; di2++)
            for (int i0 = 0; i0 < OH; i0 += MOMENT_BLOCK_ROWS) {
                __m256 acc[3][3];
                for (int p = 0; p < 3; p++)
                    for (int q = 0; q < 3; q++)
                        acc[p][q] = _mm256_setzero_ps();
                for (int i = i0; i < OH && i < i0 + MOMENT_BLOCK_ROWS; i++) {
                    const float *r1 = x + (size_t)(i + di) * W, *r2 = x + (size_t)(i + di2) * W;
                    for (int j = 0; j <= OW - 8; j += 8) {
                        __m256 a[3], b[3];
                        for (int t = 0; t < 3; t++) {
                            a[t] = _mm256_loadu_ps(r1 + j + t);
                            b[t] = _mm256_loadu_ps(r2 + j + t);
                        }
                        for (int p = 0; p < 3; p++)
                            for (int q = 0; q < 3; q++)
                                acc[p][q] = _mm256_fmadd_ps(a[p], b[q], acc[p][q]);
                    }
                    if (full < OW) {
                        __m256 a[3], b[3];
                        for (int t = 0; t < 3; t++) {
                            a[t] = _mm256_maskload_ps(r1 + full + t, tail);
                            b[t] = _mm256_maskload_ps(r2 + full + t, tail);
                        }
                        for (int p = 0; p < 3; p++)
                            for (int q = 0; q < 3; q++)
                                acc[p][q] = _mm256_fmadd_ps(a[p], b[q], acc[p][q]);
                    }
                }
                for (int p = 0; p < 3; p++)
                    for (int q = 0; q < 3; q++) {
                        float v[8];
                        _mm256_storeu_ps(v, acc[p][q]);
                        double sum = 0.0;
                        for (int l = 0; l < 8; l++)
                            sum += v[l];
                        G[9 * (3 * di + p) + 3 * di2 + q] += sum;
                        if (di2 != di) G[9 * (3 * di2 + q) + 3 * di + p] += sum;
                    }
            }
    /* S[(di, dj)] = sum of x over rows di .. di+OH-1, columns dj .. dj+OW-1 */
    for (int r = 0; r < H; r++) {
        const float *row = x + (size_t)r * W;
        double cols[3] = {0.0, 0.0, 0.0};
        for (int dj = 0; dj < 3; dj++)
            for (int j = 0; j < OW; j++)
                cols[dj] += row[j + dj];
        for (int di = 0; di < 3; di++)
            if (r >= di && r < di + OH)
                for (int dj = 0; dj < 3; dj++)
                    S[3 * di + dj] += cols[dj];
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
    if (cpu_has_avx2_fma()) {
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

HOT void conv_bn_pool_forward(float *out, float *pool_xhat, uint8_t *pool_arg, const float *inp,
                              const float *weight, const float *bias, const float *mean,
                              const float *invstd, const float *gamma, const float *beta,
                              const dropout_spec *drop, int B, int C, int H, int W) {
    pool_geometry g = pool_geometry_of(H, W);
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS], y[4][MAX_L];
    float zbest[MAX_L], ybest[MAX_L], kbest[MAX_L]; /* kbest: window index 0..3 */
    float keep[MAX_L];
    int32_t code[MAX_L];
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
#ifdef HAVE_AVX2_KERNELS
                if (!pool_xhat && cpu_has_avx2_fma()) {
                    pool_row_avx2(out + o, code, xe + 2 * pi * g.RS, xo + 2 * pi * g.RS, g.RS,
                                  weight + 9 * c, bias[c], bn_scale, shift, keep, scale, g.PW, g.L);
                    if (pool_arg)
                        for (int j = 0; j < g.PW; j++)
                            pool_arg[o + j] = (uint8_t)code[j];
                    continue;
                }
#endif
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
                if (pool_xhat)
                    for (int j = 0; j < g.PW; j++)
                        pool_xhat[o + j] = (ybest[j] - mean[c]) * invstd[c];
            }
        }
    }
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

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
/* The inner block of conv_bn_pool_backward_sparse in AVX2 intrinsics: the 10 accumulators of one
 * lane block stay in registers over all pooled rows (GCC's vectorisation of the plain loop below
 * keeps them in memory). Same arithmetic as the plain loop. */
__attribute__((target("avx2,fma"))) static void sparse_block_avx2(float out[10][LANES],
                                                                  float g4[][4][MAX_L],
                                                                  const float *xe, const float *xo,
                                                                  int RS, int PH, int jv) {
    __m256 a[10];
    for (int k = 0; k < 10; k++)
        a[k] = _mm256_setzero_ps();
    for (int pi = 0; pi < PH; pi++)
        for (int dr = 0; dr < 2; dr++) {
            __m256 ge = _mm256_loadu_ps(g4[pi][2 * dr] + jv);
            __m256 go = _mm256_loadu_ps(g4[pi][2 * dr + 1] + jv);
            a[9] = _mm256_add_ps(a[9], _mm256_add_ps(ge, go));
            for (int di = 0; di < 3; di++) {
                const float *E = xe + (2 * pi + dr + di) * RS + jv;
                const float *O = xo + (2 * pi + dr + di) * RS + jv;
                __m256 e0 = _mm256_loadu_ps(E), e1 = _mm256_loadu_ps(E + 1);
                __m256 o0 = _mm256_loadu_ps(O), o1 = _mm256_loadu_ps(O + 1);
                a[3 * di] = _mm256_fmadd_ps(go, o0, _mm256_fmadd_ps(ge, e0, a[3 * di]));
                a[3 * di + 1] = _mm256_fmadd_ps(go, e1, _mm256_fmadd_ps(ge, o0, a[3 * di + 1]));
                a[3 * di + 2] = _mm256_fmadd_ps(go, o1, _mm256_fmadd_ps(ge, e1, a[3 * di + 2]));
            }
        }
    for (int k = 0; k < 10; k++)
        _mm256_storeu_ps(out[k], a[k]);
}

/* window_gradients (below) in AVX2: GCC turns the plain loop into masked-store branches */
__attribute__((target("avx2,fma"))) static void
window_gradients_avx2(float *g0, float *g1, float *g2, float *g3, const float *dout,
                      const uint8_t *arg, float factor, int n) {
    __m256 f = _mm256_set1_ps(factor);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 d = _mm256_mul_ps(f, _mm256_loadu_ps(dout + j));
        __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(arg + j)));
        float *g[4] = {g0, g1, g2, g3};
        for (int s = 0; s < 4; s++) {
            __m256 on = _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_set1_epi32(s)));
            _mm256_storeu_ps(g[s] + j, _mm256_and_ps(on, d));
        }
    }
    for (; j < n; j++) {
        float d = factor * dout[j];
        g0[j] = arg[j] == 0 ? d : 0.0f;
        g1[j] = arg[j] == 1 ? d : 0.0f;
        g2[j] = arg[j] == 2 ? d : 0.0f;
        g3[j] = arg[j] == 3 ? d : 0.0f;
    }
}

#endif

/* dout given, or (dout NULL) each plane of it made from dlogits and the Linear weight */
static void backward_sparse(double *A, const float *dout, const float *dlogits,
                            const float *linear_w, int K, const uint8_t *pool_arg, float out_scale,
                            const float *inp, int B, int C, int H, int W) {
    pool_geometry g = pool_geometry_of(H, W);
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS], dplane[MAX_H / 2 * MAX_L];
    size_t P = (size_t)g.PH * g.PW;
    /* the window gradients of one plane, [PH][4][L]: then the loop over rows runs inside the
     * loop over lane blocks and the 10 accumulators stay in registers */
    float g4[MAX_H / 2][4][MAX_L], flat[4][MAX_H / 2 * MAX_L];
    memset(g4, 0, sizeof g4);
    for (int i = 0; i < 10 * C; i++)
        A[i] = 0.0;
    for (int b = 0; b < B; b++) {
        deinterleave(xe, xo, inp + (size_t)b * H * W, H, W, g.RS);
        for (int c = 0; c < C; c++) {
            size_t plane = ((size_t)b * C + c) * P;
            const float *d = dout ? dout + plane : dplane;
            if (!dout) /* the Linear input gradient, in the order linear_backward sums it */
                for (int k = 0; k < K; k++) {
                    const float *wk = linear_w + ((size_t)k * C + c) * P;
                    float gk = dlogits[K * b + k];
                    for (size_t p = 0; p < P; p++)
                        dplane[p] = (k ? dplane[p] : 0.0f) + gk * wk[p];
                }
                /* over the whole plane at once (one vector loop), then into the padded rows */
#ifdef HAVE_AVX2_KERNELS
            if (cpu_has_avx2_fma())
                window_gradients_avx2(flat[0], flat[1], flat[2], flat[3], d, pool_arg + plane,
                                      out_scale, (int)P);
            else
#endif
                window_gradients(flat[0], flat[1], flat[2], flat[3], d, pool_arg + plane, out_scale,
                                 (int)P);
            for (int pi = 0; pi < g.PH; pi++)
                for (int s = 0; s < 4; s++)
                    memcpy(g4[pi][s], flat[s] + pi * g.PW, (size_t)g.PW * sizeof(float));
            for (int jv = 0; jv < g.L; jv += LANES) {
                float acc[10][LANES] = {{0}};
#ifdef HAVE_AVX2_KERNELS
                if (LANES == 8 && cpu_has_avx2_fma()) {
                    sparse_block_avx2(acc, g4, xe, xo, g.RS, g.PH, jv);
                    for (int k = 0; k < 10; k++)
                        A[10 * c + k] += lanes_sum(acc[k]);
                    continue;
                }
#endif
                for (int pi = 0; pi < g.PH; pi++) {
                    /* tap (di, dc) sees input row 2pi+dr+di at column 2j+dc (window column 0)
                     * and 2j+1+dc (window column 1), window rows dr = 0, 1 */
                    for (int dr = 0; dr < 2; dr++) {
                        const float *ge = g4[pi][2 * dr] + jv, *go = g4[pi][2 * dr + 1] + jv;
                        for (int di = 0; di < 3; di++) {
                            const float *E = xe + (2 * pi + dr + di) * g.RS + jv;
                            const float *O = xo + (2 * pi + dr + di) * g.RS + jv;
                            for (int l = 0; l < LANES; l++) {
                                acc[3 * di][l] += ge[l] * E[l];
                                acc[3 * di][l] += go[l] * O[l];
                                acc[3 * di + 1][l] += ge[l] * O[l];
                                acc[3 * di + 1][l] += go[l] * E[l + 1];
                                acc[3 * di + 2][l] += ge[l] * E[l + 1];
                                acc[3 * di + 2][l] += go[l] * O[l + 1];
                            }
                        }
                        for (int l = 0; l < LANES; l++)
                            acc[9][l] += ge[l] + go[l];
                    }
                }
                for (int k = 0; k < 10; k++)
                    A[10 * c + k] += lanes_sum(acc[k]);
            }
        }
    }
}

HOT void conv_bn_pool_backward_sparse(double *A, const float *dout, const uint8_t *pool_arg,
                                      float out_scale, const float *inp, int B, int C, int H,
                                      int W) {
    backward_sparse(A, dout, NULL, NULL, 0, pool_arg, out_scale, inp, B, C, H, W);
}

HOT void conv_bn_pool_linear_backward_sparse(double *A, const float *dlogits, const float *linear_w,
                                             int K, const uint8_t *pool_arg, float out_scale,
                                             const float *inp, int B, int C, int H, int W) {
    backward_sparse(A, NULL, dlogits, linear_w, K, pool_arg, out_scale, inp, B, C, H, W);
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

void conv_bn_moments_backward(float *dweight, float *dbias, float *dgamma, float *dbeta,
                              const double *A, const double *S, const double *G, double npos,
                              const double *local_dsums, const double *global_dsums, double count,
                              const float *weight, const float *bias, const float *mean,
                              const float *invstd, const float *gamma, int C) {
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
            dweight[9 * c + k] += (float)(gi * A[10 * c + k] + alpha * S[k] + k1 * gw);
            ws += w[k] * S[k];
        }
        dbias[c] += (float)(gi * A[10 * c + 9] + alpha * npos + k1 * ws);
        dgamma[c] += (float)local_dsums[C + c];
        dbeta[c] += (float)local_dsums[c];
    }
}
