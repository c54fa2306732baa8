/* layers: the kernels of the seed CNN as forward/backward pairs on float * (llm.c style): outputs
 * first, then inputs, then sizes; shapes in the comments; backward ACCUMULATES (+=) into gradient
 * buffers, which the caller zeroes once per step.
 *
 * Two families:
 *  - plain layers (conv3x3, batchnorm, relu, maxpool2x2, dropout, linear, softmax cross-entropy),
 *    one tensor in, one tensor out: the reference, tested against finite differences;
 *  - the fused block conv3x3 -> BatchNorm -> ReLU -> MaxPool2x2 -> Dropout used by training and
 *    inference. It never stores the [B,C,H-2,W-2] activations: the convolution (9 multiply-adds
 *    per output for one input channel) is recomputed where it is needed, so the memory-bound
 *    BatchNorm/ReLU/pool/dropout traffic of PyTorch disappears.
 *
 * Data-parallel BatchNorm: the statistics are per-channel sums (double); the caller allreduces
 * them across ranks between the *_sums call and the call that uses them ("the hook"). */
#ifndef ADFD_LAYERS_H
#define ADFD_LAYERS_H

#include <stdint.h>

#define ADFD_BN_EPS 1e-5f
#define ADFD_BN_MOMENTUM 0.1f
/* pool_arg value of a pooled output whose ReLU is inactive (no gradient flows) */
#define ADFD_POOL_INACTIVE 4

/* ---- plain layers ---- */

/* out (B,C,H-2,W-2), inp (B,1,H,W), weight (C,3,3), bias (C): valid 3x3, stride 1, one input
 * channel (the first layer: no input gradient). */
void conv3x3_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                     int C, int H, int W);
void conv3x3_backward(float *dweight, float *dbias, const float *dout, const float *inp, int B,
                      int C, int H, int W);

/* BatchNorm2d over inp (B,C,HW). sums (2,C): sums[c] = sum x, sums[C+c] = sum x^2 (overwritten;
 * allreduce them, then batchnorm_stats with count = global B*HW). */
void batchnorm_sums(double *sums, const float *inp, int B, int C, int HW);
/* mean, invstd (C) from global sums; unbiased variance folded into the running statistics with
 * PyTorch's momentum when running_mean/running_var are not NULL. */
void batchnorm_stats(float *mean, float *invstd, float *running_mean, float *running_var,
                     const double *sums, double count, int C);
/* Eval mode: mean, invstd from the running statistics. */
void batchnorm_eval_stats(float *mean, float *invstd, const float *running_mean,
                          const float *running_var, int C);
/* out (B,C,HW) = gamma * (inp - mean) * invstd + beta */
void batchnorm_forward(float *out, const float *inp, const float *mean, const float *invstd,
                       const float *gamma, const float *beta, int B, int C, int HW);
/* dsums (2,C): dsums[c] = sum dout, dsums[C+c] = sum dout * xhat (local; allreduce for dinp). */
void batchnorm_backward_sums(double *dsums, const float *dout, const float *inp, const float *mean,
                             const float *invstd, int B, int C, int HW);
/* dinp += BatchNorm input gradient (uses the GLOBAL dsums and count);
 * dgamma, dbeta += the LOCAL dsums (the gradient allreduce sums them over ranks). */
void batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                        const float *inp, const float *mean, const float *invstd,
                        const float *gamma, const double *local_dsums, const double *global_dsums,
                        double count, int B, int C, int HW);

/* out, inp (N) */
void relu_forward(float *out, const float *inp, int N);
void relu_backward(float *dinp, const float *dout, const float *out, int N);

/* out (BC,H/2,W/2) floor, arg (BC,H/2,W/2) index 0..3 of the first maximum in the 2x2 window
 * (row-major, as PyTorch), inp (BC,H,W). */
void maxpool2x2_forward(float *out, uint8_t *arg, const float *inp, int BC, int H, int W);
void maxpool2x2_backward(float *dinp, const float *dout, const uint8_t *arg, int BC, int H, int W);

/* mask (B,n) = 0 with probability p, else 1/(1-p) (PyTorch scaling). The draw depends only on
 * (seed, epoch, sample_ids[b], element), never on which rank holds the sample. 16-bit uniforms. */
void dropout_mask(float *mask, const int64_t *sample_ids, int B, int n, float p, uint64_t seed,
                  uint64_t epoch);
/* out = inp * mask (N); backward dinp += dout * mask */
void dropout_forward(float *out, const float *inp, const float *mask, int N);
void dropout_backward(float *dinp, const float *dout, const float *mask, int N);

/* out (B,OC) = inp (B,IC) weight^T + bias, weight (OC,IC) */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                    int IC, int OC);
/* dinp (may be NULL), dweight, dbias += */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int B, int IC, int OC);

/* Softmax cross-entropy of logits (B,K) with labels (B). probs (B,K) written (may be NULL);
 * dlogits (B,K) = (softmax - onehot) * dscale written (may be NULL; dscale = 1 / global batch so
 * that the allreduced gradient is the mean). Returns the SUM of the B losses. */
double softmax_xent_forward_backward(float *dlogits, float *probs, const float *logits,
                                     const int *labels, int B, int K, float dscale);

/* ---- fused conv3x3 -> BatchNorm -> ReLU -> MaxPool2x2 -> Dropout (one input channel) ---- */

/* Per-channel local sums (2,C) of the convolution output: sum y, sum y^2 (training statistics;
 * allreduce, then batchnorm_stats). inp (B,1,H,W). */
void conv_bn_sums(double *sums, const float *inp, const float *weight, const float *bias, int B,
                  int C, int H, int W);
/* Patch moments of the local batch inp (B,1,H,W) over every conv output position:
 * S (9) = sum p_k, G (9,9) = sum p_k p_k' (p = the 3x3 patch). Independent of C. */
void conv_patch_moments(double *S, double *G, const float *inp, int B, int H, int W);
/* The local BatchNorm sums (2,C) of conv_bn_sums, from the moments of npos positions. */
void conv_bn_sums_from_moments(double *sums, const double *S, const double *G, double npos,
                               const float *weight, const float *bias, int C);
/* out (B,C,PH,PW) with PH = (H-2)/2, PW = (W-2)/2: dropout(maxpool(relu(bn(conv(inp))))).
 * pool_xhat, pool_arg (B,C,PH,PW): the normalised value at the chosen position and its index
 * (ADFD_POOL_INACTIVE when the ReLU is off); both may be NULL (inference). mask (B,C*PH*PW) or
 * NULL (no dropout). mean/invstd: batch statistics (training) or running ones (eval). */
void conv_bn_pool_forward(float *out, float *pool_xhat, uint8_t *pool_arg, const float *inp,
                          const float *weight, const float *bias, const float *mean,
                          const float *invstd, const float *gamma, const float *beta,
                          const float *mask, int B, int C, int H, int W);
/* Local BatchNorm backward sums (2,C) [sum dy, sum dy*xhat] of the block from dout (B,C,PH,PW):
 * only the pooled positions carry a gradient, so this is cheap. */
void conv_bn_pool_backward_sums(double *dsums, const float *dout, const float *pool_xhat,
                                const uint8_t *pool_arg, const float *mask, int B, int C, int H,
                                int W);
/* dweight (C,9), dbias (C), dgamma, dbeta (C) += the gradients of the block. global_dsums and
 * count are the allreduced sums and the global number of positions (global batch * (H-2)*(W-2)).
 * patch_S, patch_G: this batch's conv_patch_moments (the dense BatchNorm term then costs O(81)
 * per channel instead of recomputing the convolution), or NULL. */
void conv_bn_pool_backward(float *dweight, float *dbias, float *dgamma, float *dbeta,
                           const float *dout, const uint8_t *pool_arg, const float *mask,
                           const float *inp, const float *weight, const float *bias,
                           const float *mean, const float *invstd, const float *gamma,
                           const double *local_dsums, const double *global_dsums, double count,
                           const double *patch_S, const double *patch_G, int B, int C, int H,
                           int W);

#endif
