/* Kernels of the seed CNN (see include/adfd/layers.h). Hot loops are written so that GCC
 * vectorises them without -ffast-math: reductions keep LANES independent partial sums. The hot
 * functions are compiled twice (AVX2+FMA and baseline) and picked at load time. */
#include "adfd/layers.h"

#include <math.h>
#include <string.h>

#include "adfd/util.h"
#include "layers_kernels.h"

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

HOT void dropout_mask(float *mask, const int64_t *sample_ids, int B, int n, float p, uint64_t seed,
                      uint64_t epoch) {
    uint32_t threshold = dropout_threshold(p);
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    for (int b = 0; b < B; b++) {
        float *m = mask + (size_t)b * n;
        dropout_keep_row(m, dropout_stream(seed, epoch, sample_ids[b]), 0, n, threshold);
        for (int i = 0; i < n; i++)
            m[i] *= scale;
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

/* The classifier has 2 outputs: SGEMM would spend its time packing the (B,IC) input, so these
 * are plain dot products and AXPYs over IC, vectorised by the compiler. */
HOT void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                        int IC, int OC) {
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * IC;
        int o = 0;
        for (; o + 2 <= OC; o += 2) { /* two outputs per pass: x is read once (memory-bound) */
            const float *w0 = weight + (size_t)o * IC, *w1 = w0 + IC;
            float a0[LANES] = {0}, a1[LANES] = {0};
            int i = 0;
            for (; i + LANES <= IC; i += LANES)
                for (int l = 0; l < LANES; l++) {
                    a0[l] += x[i + l] * w0[i + l];
                    a1[l] += x[i + l] * w1[i + l];
                }
            for (; i < IC; i++) {
                a0[0] += x[i] * w0[i];
                a1[0] += x[i] * w1[i];
            }
            out[b * OC + o] = bias[o] + lanes_sum(a0);
            out[b * OC + o + 1] = bias[o + 1] + lanes_sum(a1);
        }
        for (; o < OC; o++) {
            const float *w = weight + (size_t)o * IC;
            float acc[LANES] = {0};
            int i = 0;
            for (; i + LANES <= IC; i += LANES)
                for (int l = 0; l < LANES; l++)
                    acc[l] += x[i + l] * w[i + l];
            for (; i < IC; i++)
                acc[0] += x[i] * w[i];
            out[b * OC + o] = bias[o] + lanes_sum(acc);
        }
    }
}

HOT void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int B, int IC, int OC) {
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * IC;
        float *dx = dinp ? dinp + (size_t)b * IC : NULL;
        for (int o = 0; o < OC; o++) {
            float g = dout[b * OC + o];
            float *dw = dweight + (size_t)o * IC;
            const float *w = weight + (size_t)o * IC;
            for (int i = 0; i < IC; i++)
                dw[i] += g * x[i];
            if (dx)
                for (int i = 0; i < IC; i++)
                    dx[i] += g * w[i];
            dbias[o] += g;
        }
    }
}

HOT void linear_backward_weight_double(double *dweight, double *dbias, const float *dout,
                                       const float *inp, int B, int IC, int OC) {
    /* two samples per pass over dweight, which is larger than L2 at large C (the pass is
     * memory-bound); an odd last sample pairs with itself at gradient 0 (adds +0) */
    for (int b = 0; b < B; b += 2) {
        int pair = b + 1 < B;
        const float *x0 = inp + (size_t)b * IC, *x1 = pair ? x0 + IC : x0;
        const float *g0 = dout + (size_t)b * OC, *g1 = g0 + OC;
        int o = 0;
        for (; o + 2 <= OC; o += 2) { /* and two outputs: x0, x1 are read once */
            double a0 = g0[o], c0 = pair ? g1[o] : 0.0;
            double a1 = g0[o + 1], c1 = pair ? g1[o + 1] : 0.0;
            double *dw0 = dweight + (size_t)o * IC, *dw1 = dw0 + IC;
            for (int i = 0; i < IC; i++) {
                dw0[i] += a0 * x0[i] + c0 * x1[i];
                dw1[i] += a1 * x0[i] + c1 * x1[i];
            }
        }
        for (; o < OC; o++) {
            double a = g0[o], c = pair ? g1[o] : 0.0, *dw = dweight + (size_t)o * IC;
            for (int i = 0; i < IC; i++)
                dw[i] += a * x0[i] + c * x1[i];
        }
        for (o = 0; o < OC; o++)
            dbias[o] += g0[o] + (pair ? g1[o] : 0.0);
    }
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
