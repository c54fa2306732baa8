/* Kernels of the seed CNN (see include/adfd/layers.h). Hot loops are written so that GCC
 * vectorises them without -ffast-math: reductions keep LANES independent partial sums. The hot
 * functions are compiled twice (AVX2+FMA and baseline) and picked at load time. */
#include "adfd/layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "adfd/util.h"

#define LANES 8
#define MAX_ROW 1024 /* widest conv output row the fused kernels accept */

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

HOT void conv_bn_sums(double *sums, const float *inp, const float *weight, const float *bias, int B,
                      int C, int H, int W) {
    int OH = H - 2, OW = W - 2;
    ADFD_CHECK(OW <= MAX_ROW, "conv row of %d values is wider than %d", OW, MAX_ROW);
    float row[MAX_ROW];
    for (int c = 0; c < C; c++) {
        double s = 0.0, ss = 0.0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < OH; i++) {
                conv_row(row, inp + (size_t)b * H * W + (size_t)i * W, weight + 9 * c, bias[c], W,
                         OW);
                float rs[LANES] = {0}, rss[LANES] = {0};
                int j = 0;
                for (; j + LANES <= OW; j += LANES)
                    for (int l = 0; l < LANES; l++) {
                        rs[l] += row[j + l];
                        rss[l] += row[j + l] * row[j + l];
                    }
                for (; j < OW; j++) {
                    rs[0] += row[j];
                    rss[0] += row[j] * row[j];
                }
                s += lanes_sum(rs);
                ss += lanes_sum(rss);
            }
        sums[c] = s;
        sums[C + c] = ss;
    }
}

HOT void conv_bn_pool_forward(float *out, float *pool_xhat, uint8_t *pool_arg, const float *inp,
                              const float *weight, const float *bias, const float *mean,
                              const float *invstd, const float *gamma, const float *beta,
                              const float *mask, int B, int C, int H, int W) {
    int OW = W - 2, PH = (H - 2) / 2, PW = (W - 2) / 2;
    ADFD_CHECK(OW <= MAX_ROW, "conv row of %d values is wider than %d", OW, MAX_ROW);
    float y0[MAX_ROW], y1[MAX_ROW], z0[MAX_ROW], z1[MAX_ROW];
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            /* bn(y) = y * scale + shift: the normalisation folded into one multiply-add */
            float scale = gamma[c] * invstd[c], shift = beta[c] - mean[c] * scale;
            size_t plane = ((size_t)b * C + c) * PH * PW;
            const float *m = mask ? mask + plane : NULL;
            for (int pi = 0; pi < PH; pi++) {
                const float *x = inp + (size_t)b * H * W + (size_t)(2 * pi) * W;
                conv_row(y0, x, weight + 9 * c, bias[c], W, OW);
                conv_row(y1, x + W, weight + 9 * c, bias[c], W, OW);
                for (int j = 0; j < OW; j++) {
                    z0[j] = y0[j] * scale + shift;
                    z1[j] = y1[j] * scale + shift;
                }
                size_t o = plane + (size_t)pi * PW;
                for (int pj = 0; pj < PW; pj++) {
                    float v[4] = {z0[2 * pj], z0[2 * pj + 1], z1[2 * pj], z1[2 * pj + 1]};
                    int best = 0;
                    for (int k = 1; k < 4; k++)
                        if (v[k] > v[best]) best = k;
                    int active = v[best] > 0.0f;
                    float pooled = active ? v[best] : 0.0f;
                    out[o + pj] = m ? pooled * m[(size_t)pi * PW + pj] : pooled;
                    if (pool_arg) pool_arg[o + pj] = active ? (uint8_t)best : ADFD_POOL_INACTIVE;
                    if (pool_xhat) {
                        float y = (best < 2 ? y0 : y1)[2 * pj + best % 2];
                        pool_xhat[o + pj] = (y - mean[c]) * invstd[c];
                    }
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
                               int B, int C, int H, int W) {
    int OH = H - 2, OW = W - 2, PH = OH / 2, PW = OW / 2;
    ADFD_CHECK(OW <= MAX_ROW, "conv row of %d values is wider than %d", OW, MAX_ROW);
    float row[MAX_ROW], dy[MAX_ROW];
    for (int c = 0; c < C; c++) {
        /* dL/dy = gamma*invstd * (dL/dbn - mean(dL/dbn) - xhat * mean(dL/dbn * xhat)), with the
         * means over the global batch; written as dy = gi * dL/dbn + k1 * (y - mean) + k2 */
        float gi = gamma[c] * invstd[c];
        float m1 = (float)(global_dsums[c] / count), m2 = (float)(global_dsums[C + c] / count);
        float k1 = -gi * m2 * invstd[c], k2 = -gi * m1;
        float acc[9][LANES] = {{0}};
        double db = 0.0;
        for (int b = 0; b < B; b++) {
            size_t plane = ((size_t)b * C + c) * PH * PW;
            for (int i = 0; i < OH; i++) {
                const float *x = inp + (size_t)b * H * W + (size_t)i * W;
                conv_row(row, x, weight + 9 * c, bias[c], W, OW);
                for (int j = 0; j < OW; j++)
                    dy[j] = k1 * (row[j] - mean[c]) + k2;
                /* the one position per pooling window that received the gradient */
                int pi = i / 2, di = i % 2;
                if (pi < PH)
                    for (int pj = 0; pj < PW; pj++) {
                        size_t p = plane + (size_t)pi * PW + pj;
                        int a = pool_arg[p];
                        if (a == ADFD_POOL_INACTIVE || a / 2 != di) continue;
                        float d = mask ? dout[p] * mask[p] : dout[p];
                        dy[2 * pj + a % 2] += gi * d;
                    }
                conv_row_wgrad(acc, dy, x, W, OW);
                float rs[LANES] = {0};
                int j = 0;
                for (; j + LANES <= OW; j += LANES)
                    for (int l = 0; l < LANES; l++)
                        rs[l] += dy[j + l];
                for (; j < OW; j++)
                    rs[0] += dy[j];
                db += lanes_sum(rs);
            }
        }
        for (int k = 0; k < 9; k++)
            dweight[9 * c + k] += lanes_sum(acc[k]);
        dbias[c] += (float)db;
        dgamma[c] += (float)local_dsums[C + c];
        dbeta[c] += (float)local_dsums[c];
    }
}
