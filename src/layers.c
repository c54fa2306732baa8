/* Kernels of the seed CNN (see include/adfd/layers.h). Hot loops are written so that GCC
 * vectorises them without -ffast-math: reductions keep LANES independent partial sums. The hot
 * functions are compiled twice (AVX2+FMA and baseline) and picked at load time. */
#include "adfd/layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

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

/* out[j] = bias + sum_k w[k] * x[(k/3)*W + j + k%3], j < OW: one conv output row */
static inline void conv_row(float *out, const float *x, const float *w, float bias, int W, int OW) {
    const float *x0 = x, *x1 = x + W, *x2 = x + 2 * W;
    for (int j = 0; j < OW; j++)
        out[j] = bias + w[0] * x0[j] + w[1] * x0[j + 1] + w[2] * x0[j + 2] + w[3] * x1[j] +
                 w[4] * x1[j + 1] + w[5] * x1[j + 2] + w[6] * x2[j] + w[7] * x2[j + 1] +
                 w[8] * x2[j + 2];
}

/* acc[k][l] += d[j] * x[(k/3)*W + j + k%3] over j < OW, LANES partial sums per tap */
static inline void conv_row_wgrad(float acc[9][LANES], const float *d, const float *x, int W,
                                  int OW) {
    int j = 0;
    for (; j + LANES <= OW; j += LANES)
        for (int k = 0; k < 9; k++) {
            const float *xk = x + (k / 3) * W + k % 3 + j;
            for (int l = 0; l < LANES; l++)
                acc[k][l] += d[j + l] * xk[l];
        }
    for (; j < OW; j++)
        for (int k = 0; k < 9; k++)
            acc[k][0] += d[j] * x[(k / 3) * W + k % 3 + j];
}

static inline float lanes_sum(const float *a) {
    float s = 0.0f;
    for (int l = 0; l < LANES; l++)
        s += a[l];
    return s;
}

/* ---------------- plain layers ---------------- */

HOT void conv3x3_forward(float *out, const float *inp, const float *weight, const float *bias,
                         int B, int C, int H, int W) {
    int OH = H - 2, OW = W - 2;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *o = out + ((size_t)b * C + c) * OH * OW;
            for (int i = 0; i < OH; i++)
                conv_row(o + (size_t)i * OW, inp + (size_t)b * H * W + (size_t)i * W,
                         weight + 9 * c, bias[c], W, OW);
        }
}

HOT void conv3x3_backward(float *dweight, float *dbias, const float *dout, const float *inp, int B,
                          int C, int H, int W) {
    int OH = H - 2, OW = W - 2;
    for (int c = 0; c < C; c++) {
        float acc[9][LANES] = {{0}};
        double db = 0.0;
        for (int b = 0; b < B; b++) {
            const float *d = dout + ((size_t)b * C + c) * OH * OW;
            for (int i = 0; i < OH; i++) {
                const float *drow = d + (size_t)i * OW;
                conv_row_wgrad(acc, drow, inp + (size_t)b * H * W + (size_t)i * W, W, OW);
                for (int j = 0; j < OW; j++)
                    db += drow[j];
            }
        }
        for (int k = 0; k < 9; k++)
            dweight[9 * c + k] += lanes_sum(acc[k]);
        dbias[c] += (float)db;
    }
}

void batchnorm_sums(double *sums, const float *inp, int B, int C, int HW) {
    for (int c = 0; c < C; c++) {
        double s = 0.0, ss = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                s += x[i];
                ss += (double)x[i] * x[i];
            }
        }
        sums[c] = s;
        sums[C + c] = ss;
    }
}

void batchnorm_stats(float *mean, float *invstd, float *running_mean, float *running_var,
                     const double *sums, double count, int C) {
    for (int c = 0; c < C; c++) {
        double m = sums[c] / count;
        double var = sums[C + c] / count - m * m; /* biased: used to normalise */
        if (var < 0.0) var = 0.0;
        mean[c] = (float)m;
        invstd[c] = (float)(1.0 / sqrt(var + ADFD_BN_EPS));
        if (running_mean) {
            /* PyTorch: running stats take the UNBIASED batch variance */
            running_mean[c] = (1.0f - ADFD_BN_MOMENTUM) * running_mean[c] + ADFD_BN_MOMENTUM * m;
            running_var[c] = (1.0f - ADFD_BN_MOMENTUM) * running_var[c] +
                             ADFD_BN_MOMENTUM * var * count / (count - 1.0);
        }
    }
}

void batchnorm_eval_stats(float *mean, float *invstd, const float *running_mean,
                          const float *running_var, int C) {
    for (int c = 0; c < C; c++) {
        mean[c] = running_mean[c];
        invstd[c] = 1.0f / sqrtf(running_var[c] + ADFD_BN_EPS);
    }
}

void batchnorm_forward(float *out, const float *inp, const float *mean, const float *invstd,
                       const float *gamma, const float *beta, int B, int C, int HW) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            float *o = out + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++)
                o[i] = (x[i] - mean[c]) * invstd[c] * gamma[c] + beta[c];
        }
}

void batchnorm_backward_sums(double *dsums, const float *dout, const float *inp, const float *mean,
                             const float *invstd, int B, int C, int HW) {
    for (int c = 0; c < C; c++) {
        double s = 0.0, sx = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            const float *d = dout + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                s += d[i];
                sx += (double)d[i] * ((x[i] - mean[c]) * invstd[c]);
            }
        }
        dsums[c] = s;
        dsums[C + c] = sx;
    }
}

void batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                        const float *inp, const float *mean, const float *invstd,
                        const float *gamma, const double *local_dsums, const double *global_dsums,
                        double count, int B, int C, int HW) {
    for (int c = 0; c < C; c++) {
        float gi = gamma[c] * invstd[c];
        float m1 = (float)(global_dsums[c] / count), m2 = (float)(global_dsums[C + c] / count);
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            const float *d = dout + ((size_t)b * C + c) * HW;
            float *dx = dinp + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++)
                dx[i] += gi * (d[i] - m1 - (x[i] - mean[c]) * invstd[c] * m2);
        }
        dgamma[c] += (float)local_dsums[C + c];
        dbeta[c] += (float)local_dsums[c];
    }
}

void relu_forward(float *out, const float *inp, int N) {
    for (int i = 0; i < N; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, const float *dout, const float *out, int N) {
    for (int i = 0; i < N; i++)
        dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void maxpool2x2_forward(float *out, uint8_t *arg, const float *inp, int BC, int H, int W) {
    int PH = H / 2, PW = W / 2;
    for (int n = 0; n < BC; n++)
        for (int i = 0; i < PH; i++)
            for (int j = 0; j < PW; j++) {
                const float *x = inp + (size_t)n * H * W + (size_t)(2 * i) * W + 2 * j;
                float v[4] = {x[0], x[1], x[W], x[W + 1]};
                int best = 0;
                for (int k = 1; k < 4; k++)
                    if (v[k] > v[best]) best = k;
                size_t o = (size_t)n * PH * PW + (size_t)i * PW + j;
                out[o] = v[best];
                arg[o] = (uint8_t)best;
            }
}

void maxpool2x2_backward(float *dinp, const float *dout, const uint8_t *arg, int BC, int H, int W) {
    int PH = H / 2, PW = W / 2;
    for (int n = 0; n < BC; n++)
        for (int i = 0; i < PH; i++)
            for (int j = 0; j < PW; j++) {
                size_t o = (size_t)n * PH * PW + (size_t)i * PW + j;
                int a = arg[o];
                dinp[(size_t)n * H * W + (size_t)(2 * i + a / 2) * W + 2 * j + a % 2] += dout[o];
            }
}

static inline uint64_t splitmix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void dropout_mask(float *mask, const int64_t *sample_ids, int B, int n, float p, uint64_t seed,
                  uint64_t epoch) {
    /* an element is dropped when its 16-bit uniform u16 < threshold = round(p * 65536) */
    uint32_t threshold = (uint32_t)lrintf(p * 65536.0f);
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    for (int b = 0; b < B; b++) {
        uint64_t stream = rng_hash64(seed, epoch, (uint64_t)sample_ids[b]);
        float *m = mask + (size_t)b * n;
        for (int g = 0; g * 4 < n; g++) {
            uint64_t h = splitmix64(stream + (uint64_t)(g + 1) * 0x9e3779b97f4a7c15ULL);
            for (int t = 0; t < 4 && 4 * g + t < n; t++) {
                uint32_t u16 = (uint32_t)(h >> (16 * t)) & 0xffffu;
                m[4 * g + t] = u16 < threshold ? 0.0f : scale;
            }
        }
    }
}

void dropout_forward(float *out, const float *inp, const float *mask, int N) {
    for (int i = 0; i < N; i++)
        out[i] = inp[i] * mask[i];
}

void dropout_backward(float *dinp, const float *dout, const float *mask, int N) {
    for (int i = 0; i < N; i++)
        dinp[i] += dout[i] * mask[i];
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                    int IC, int OC) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++)
            out[b * OC + o] = bias[o];
    /* out (B,OC) += inp (B,IC) . weight^T (IC,OC) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OC, IC, 1.0f, inp, IC, weight, IC, 1.0f,
                out, OC);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int B, int IC, int OC) {
    /* dweight (OC,IC) += dout^T (OC,B) . inp (B,IC) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, B, 1.0f, dout, OC, inp, IC, 1.0f,
                dweight, IC);
    /* dinp (B,IC) += dout (B,OC) . weight (OC,IC) */
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IC, OC, 1.0f, dout, OC, weight,
                    IC, 1.0f, dinp, IC);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++)
            dbias[o] += dout[b * OC + o];
}

double softmax_xent_forward_backward(float *dlogits, float *probs, const float *logits,
                                     const int *labels, int B, int K, float dscale) {
    double loss = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        double zmax = z[0];
        for (int k = 1; k < K; k++)
            if (z[k] > zmax) zmax = z[k];
        double sum = 0.0;
        for (int k = 0; k < K; k++)
            sum += exp(z[k] - zmax);
        loss += log(sum) + zmax - z[labels[b]];
        for (int k = 0; k < K; k++) {
            double p = exp(z[k] - zmax) / sum;
            if (probs) probs[(size_t)b * K + k] = (float)p;
            if (dlogits) dlogits[(size_t)b * K + k] = (float)((p - (k == labels[b])) * dscale);
        }
    }
    return loss;
}

/* ---------------- fused conv -> BN -> ReLU -> MaxPool -> Dropout ---------------- */

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
    for (int r = 0; r < H; r++)
        for (int q = 0; q < RS; q++) {
            xe[r * RS + q] = 2 * q < W ? x[r * W + 2 * q] : 0.0f;
            xo[r * RS + q] = 2 * q + 1 < W ? x[r * W + 2 * q + 1] : 0.0f;
        }
}

/* y[s][j], s = 2*dr + dc: the conv output at (2*pi + dr, 2*j + dc), lanes j < L */
static inline void conv_quad(float y[4][MAX_L], const float *xe, const float *xo, int RS, int pi,
                             const float *w, float bias, int L) {
    for (int j = 0; j < L; j++) {
        float a00 = bias, a01 = bias, a10 = bias, a11 = bias;
        for (int di = 0; di < 3; di++) {
            const float *E = xe + (2 * pi + di) * RS, *O = xo + (2 * pi + di) * RS;
            const float *E1 = E + RS, *O1 = O + RS;
            float w0 = w[3 * di], w1 = w[3 * di + 1], w2 = w[3 * di + 2];
            a00 += w0 * E[j] + w1 * O[j] + w2 * E[j + 1];
            a01 += w0 * O[j] + w1 * E[j + 1] + w2 * O[j + 1];
            a10 += w0 * E1[j] + w1 * O1[j] + w2 * E1[j + 1];
            a11 += w0 * O1[j] + w1 * E1[j + 1] + w2 * O1[j + 1];
        }
        y[0][j] = a00;
        y[1][j] = a01;
        y[2][j] = a10;
        y[3][j] = a11;
    }
}

/* Patch moments: with them the BatchNorm statistics of the convolution output and the dense
 * part of its backward are a few 9x9 products per channel instead of a pass over C*126*78
 * values (y = b + w.p, so sum y = N b + w.S and sum y^2 = N b^2 + 2 b w.S + w'Gw). */
#define MOMENT_ROWS 4
HOT void conv_patch_moments(double *S, double *G, const float *inp, int B, int H, int W) {
    int OH = H - 2, OW = W - 2;
    for (int k = 0; k < 9; k++)
        S[k] = 0.0;
    for (int k = 0; k < 81; k++)
        G[k] = 0.0;
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
                              const float *mask, int B, int C, int H, int W) {
    pool_geometry g = pool_geometry_of(H, W);
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS], y[4][MAX_L];
    float zbest[MAX_L], ybest[MAX_L], kbest[MAX_L]; /* kbest: window index 0..3 */
    for (int b = 0; b < B; b++) {
        deinterleave(xe, xo, inp + (size_t)b * H * W, H, W, g.RS);
        for (int c = 0; c < C; c++) {
            /* bn(y) = y * scale + shift: the normalisation folded into one multiply-add */
            float scale = gamma[c] * invstd[c], shift = beta[c] - mean[c] * scale;
            size_t plane = ((size_t)b * C + c) * g.PH * g.PW;
            for (int pi = 0; pi < g.PH; pi++) {
                conv_quad(y, xe, xo, g.RS, pi, weight + 9 * c, bias[c], g.L);
                for (int j = 0; j < g.L; j++) {
                    /* first maximum in row-major window order, as PyTorch (strict >) */
                    float z0 = y[0][j] * scale + shift, z1 = y[1][j] * scale + shift;
                    float z2 = y[2][j] * scale + shift, z3 = y[3][j] * scale + shift;
                    float k01 = z1 > z0 ? 1.0f : 0.0f, k23 = z3 > z2 ? 3.0f : 2.0f;
                    float zb01 = z1 > z0 ? z1 : z0, zb23 = z3 > z2 ? z3 : z2;
                    float yb01 = z1 > z0 ? y[1][j] : y[0][j], yb23 = z3 > z2 ? y[3][j] : y[2][j];
                    zbest[j] = zb23 > zb01 ? zb23 : zb01;
                    ybest[j] = zb23 > zb01 ? yb23 : yb01;
                    kbest[j] = zb23 > zb01 ? k23 : k01;
                }
                size_t o = plane + (size_t)pi * g.PW;
                const float *m = mask ? mask + o : NULL;
                for (int j = 0; j < g.PW; j++) {
                    int active = zbest[j] > 0.0f;
                    float pooled = active ? zbest[j] : 0.0f;
                    out[o + j] = m ? pooled * m[j] : pooled;
                }
                if (pool_arg)
                    for (int j = 0; j < g.PW; j++)
                        pool_arg[o + j] =
                            zbest[j] > 0.0f ? (uint8_t)kbest[j] : (uint8_t)ADFD_POOL_INACTIVE;
                if (pool_xhat)
                    for (int j = 0; j < g.PW; j++)
                        pool_xhat[o + j] = (ybest[j] - mean[c]) * invstd[c];
            }
        }
    }
}

void conv_bn_pool_backward_sums(double *dsums, const float *dout, const float *pool_xhat,
                                const uint8_t *pool_arg, const float *mask, int B, int C, int H,
                                int W) {
    size_t P = (size_t)((H - 2) / 2) * ((W - 2) / 2);
    for (int c = 0; c < C; c++) {
        double s = 0.0, sx = 0.0;
        for (int b = 0; b < B; b++) {
            size_t plane = ((size_t)b * C + c) * P;
            for (size_t p = 0; p < P; p++) {
                if (pool_arg[plane + p] == ADFD_POOL_INACTIVE) continue;
                float dy = mask ? dout[plane + p] * mask[plane + p] : dout[plane + p];
                s += dy;
                sx += (double)dy * pool_xhat[plane + p];
            }
        }
        dsums[c] = s;
        dsums[C + c] = sx;
    }
}

HOT void conv_bn_pool_backward(float *dweight, float *dbias, float *dgamma, float *dbeta,
                               const float *dout, const uint8_t *pool_arg, const float *mask,
                               const float *inp, const float *weight, const float *bias,
                               const float *mean, const float *invstd, const float *gamma,
                               const double *local_dsums, const double *global_dsums, double count,
                               const double *patch_S, const double *patch_G, int B, int C, int H,
                               int W) {
    pool_geometry g = pool_geometry_of(H, W);
    /* with the patch moments the dense BatchNorm term is added per channel below, and the
     * row loop only carries the pooled gradients (no convolution to recompute) */
    float dense = patch_S ? 0.0f : 1.0f;
    float xe[MAX_H * MAX_RS], xo[MAX_H * MAX_RS], y[4][MAX_L], valid[MAX_L];
    float g4[4][MAX_L] = {{0}}, ones[MAX_L];
    for (int j = 0; j < g.L; j++) {
        valid[j] = j < g.PW ? 1.0f : 0.0f;
        ones[j] = 1.0f;
    }
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
                /* the gradient reaching the chosen position of each window (lanes >= PW
                 * stay 0) */
                const float *mrow = mask ? mask + o : ones;
                for (int j = 0; j < g.PW; j++) {
                    float d = gi * dout[o + j] * mrow[j];
                    float a = (float)pool_arg[o + j];
                    g4[0][j] = a == 0.0f ? d : 0.0f;
                    g4[1][j] = a == 1.0f ? d : 0.0f;
                    g4[2][j] = a == 2.0f ? d : 0.0f;
                    g4[3][j] = a == 3.0f ? d : 0.0f;
                }
                if (patch_S)
                    memset(y, 0, sizeof y);
                else
                    conv_quad(y, xe, xo, g.RS, pi, weight + 9 * c, bias[c], g.L);
                for (int j = 0; j < g.L; j++) {
                    float v = valid[j] * dense, dy[4];
                    for (int s = 0; s < 4; s++)
                        dy[s] = (k1 * (y[s][j] - mu) + k2) * v + g4[s][j];
                    dbacc[j] += dy[0] + dy[1] + dy[2] + dy[3];
                    for (int di = 0; di < 3; di++) {
                        const float *E = xe + (2 * pi + di) * g.RS, *O = xo + (2 * pi + di) * g.RS;
                        const float *E1 = E + g.RS, *O1 = O + g.RS;
                        acc[3 * di][j] +=
                            dy[0] * E[j] + dy[1] * O[j] + dy[2] * E1[j] + dy[3] * O1[j];
                        acc[3 * di + 1][j] +=
                            dy[0] * O[j] + dy[1] * E[j + 1] + dy[2] * O1[j] + dy[3] * E1[j + 1];
                        acc[3 * di + 2][j] += dy[0] * E[j + 1] + dy[1] * O[j + 1] +
                                              dy[2] * E1[j + 1] + dy[3] * O1[j + 1];
                    }
                }
            }
            for (int k = 0; k < 9; k++) {
                double s = 0.0;
                for (int j = 0; j < g.L; j++)
                    s += acc[k][j];
                dweight[9 * c + k] += (float)s;
            }
            double s = 0.0;
            for (int j = 0; j < g.L; j++)
                s += dbacc[j];
            dbias[c] += (float)s;
        }
    }
    for (int c = 0; c < C; c++) {
        dgamma[c] += (float)local_dsums[C + c];
        dbeta[c] += (float)local_dsums[c];
        if (!patch_S) continue;
        /* dense term sum_pos (k1 (y - mean) + k2) p_k = alpha S_k + k1 (G w)_k, y = b + w.p */
        float gi = gamma[c] * invstd[c];
        double m1 = global_dsums[c] / count, m2 = global_dsums[C + c] / count;
        double k1 = -gi * m2 * invstd[c], k2 = -gi * m1, alpha = k1 * (bias[c] - mean[c]) + k2;
        const float *w = weight + 9 * c;
        double npos = (double)B * (H - 2) * (W - 2), ws = 0.0;
        for (int k = 0; k < 9; k++) {
            double gw = 0.0;
            for (int k2i = 0; k2i < 9; k2i++)
                gw += patch_G[9 * k + k2i] * w[k2i];
            dweight[9 * c + k] += (float)(alpha * patch_S[k] + k1 * gw);
            ws += w[k] * patch_S[k];
        }
        dbias[c] += (float)(alpha * npos + k1 * ws);
    }
}
