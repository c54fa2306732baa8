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
 * (seed, epoch, sample_ids[b], element), never on which rank holds the sample: a 32-bit hash
 * per element, dropped when its upper 16 bits are below round(p * 65536). */
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

/* dweight (OC,IC), dbias (OC) += dout^T inp in double, for inp (B,IC), dout (B,OC): the
 * products of floats are exact in double, so a sum over samples split across ranks and
 * allreduced in double rounds to the same float as the sum on one rank. */
void linear_backward_weight_double(double *dweight, double *dbias, const float *dout,
                                   const float *inp, int B, int IC, int OC);

/* Softmax cross-entropy of logits (B,K) with labels (B). probs (B,K) written (may be NULL);
 * dlogits (B,K) = (softmax - onehot) * dscale written (may be NULL; dscale = 1 / global batch so
 * that the allreduced gradient is the mean). Returns the SUM of the B losses. */
double softmax_xent_forward_backward(float *dlogits, float *probs, const float *logits,
                                     const int *labels, int B, int K, float dscale);

/* ---- fused conv3x3 -> BatchNorm -> ReLU -> MaxPool2x2 -> Dropout (one input channel) ----
 * Geometry: H, W even, PH = (H-2)/2, PW = (W-2)/2; pooled tensors are (B,C,PH,PW). */

/* Dropout inside the fused block, with the draws of dropout_mask: element e of sample
 * sample_ids[b] is kept with probability 1-p and scaled by 1/(1-p). p = 0 or NULL: none. */
typedef struct {
    float p;
    uint64_t seed, epoch;
    const int64_t *sample_ids; /* [B] */
} dropout_spec;

/* Per-channel local sums (2,C) of the convolution output: sum y, sum y^2 (training statistics;
 * allreduce, then batchnorm_stats). inp (B,1,H,W). */
void conv_bn_sums(double *sums, const float *inp, const float *weight, const float *bias, int B,
                  int C, int H, int W);
/* Patch moments of the local batch over every conv output position: S (9) = sum p_k,
 * G (9,9) = sum p_k p_k' (p = the 3x3 input patch). Independent of C. */
void conv_patch_moments(double *S, double *G, const float *inp, int B, int H, int W);
/* The local sums of conv_bn_sums from the moments of npos positions (9x9 algebra per channel). */
void conv_bn_sums_from_moments(double *sums, const double *S, const double *G, double npos,
                               const float *weight, const float *bias, int C);

/* out = dropout(maxpool(relu(bn(conv(inp))))) (B,C,PH,PW). pool_arg (may be NULL): index 0..3
 * of the chosen position in each 2x2 window, ADFD_POOL_INACTIVE when the ReLU is off or dropout
 * dropped the unit (no gradient flows). pool_xhat (may be NULL): the normalised value there.
 * mean/invstd: batch statistics (training) or running ones (eval). */
void conv_bn_pool_forward(float *out, float *pool_xhat, uint8_t *pool_arg, const float *inp,
                          const float *weight, const float *bias, const float *mean,
                          const float *invstd, const float *gamma, const float *beta,
                          const dropout_spec *drop, int B, int C, int H, int W);

/* The block followed by Linear(C*PH*PW -> 2) with weight linear_w (2, C*PH*PW), bias linear_b:
 * logits (B,2). The two dot products are taken as each pooled row is made, so out may be NULL
 * (inference: the block output is never stored); pool_arg may be NULL. */
void conv_bn_pool_linear_forward(float *logits, float *out, uint8_t *pool_arg, const float *inp,
                                 const float *weight, const float *bias, const float *mean,
                                 const float *invstd, const float *gamma, const float *beta,
                                 const dropout_spec *drop, const float *linear_w,
                                 const float *linear_b, int B, int C, int H, int W);

/* Tests: 1 makes the fused kernels take their portable C path even where AVX2 is available. */
void layers_use_portable_kernels(int on);

/* Backward, recomputing the convolution (small C). out_scale: the dropout scale 1/(1-p).
 * dsums (2,C) local [sum dy, sum dy*xhat] of the pooled positions (cheap); allreduce, then: */
void conv_bn_pool_backward_sums(double *dsums, const float *dout, const float *pool_xhat,
                                const uint8_t *pool_arg, float out_scale, int B, int C, int H,
                                int W);
/* dweight (C,9), dbias, dgamma, dbeta (C) += the block's gradients; global_dsums and count (the
 * global number of conv positions) from the allreduce, local_dsums for dgamma/dbeta. */
void conv_bn_pool_backward(float *dweight, float *dbias, float *dgamma, float *dbeta,
                           const float *dout, const uint8_t *pool_arg, float out_scale,
                           const float *inp, const float *weight, const float *bias,
                           const float *mean, const float *invstd, const float *gamma,
                           const double *local_dsums, const double *global_dsums, double count,
                           int B, int C, int H, int W);

/* Backward through the patch moments (large C): no convolution is recomputed.
 * A (C,10): A[c][k] = sum dy * p_k over the chosen positions, A[c][9] = sum dy (local). */
void conv_bn_pool_backward_sparse(double *A, const float *dout, const uint8_t *pool_arg,
                                  float out_scale, const float *inp, int B, int C, int H, int W);
/* The same with dout = the input gradient of Linear(C*PH*PW -> K) with weight linear_w,
 * made in registers from dlogits (B,K) and never stored (K = 2). */
void conv_bn_pool_linear_backward_sparse(double *A, const float *dlogits, const float *linear_w,
                                         int K, const uint8_t *pool_arg, float out_scale,
                                         const float *inp, int B, int C, int H, int W);
/* The local BatchNorm backward sums (2,C) from A (allreduce them), then the gradients: */
void conv_bn_sparse_dsums(double *dsums, const double *A, const float *weight, const float *bias,
                          const float *mean, const float *invstd, int C);
/* S, G: conv_patch_moments of this rank's npos positions. */
void conv_bn_moments_backward(float *dweight, float *dbias, float *dgamma, float *dbeta,
                              const double *A, const double *S, const double *G, double npos,
                              const double *local_dsums, const double *global_dsums, double count,
                              const float *weight, const float *bias, const float *mean,
                              const float *invstd, const float *gamma, int C);
/* The same gradients in double, written (=): a data-parallel step sums them over ranks in double
 * so that the float result does not depend on the number of ranks. */
void conv_bn_moments_backward_double(double *dweight, double *dbias, double *dgamma, double *dbeta,
                                     const double *A, const double *S, const double *G, double npos,
                                     const double *local_dsums, const double *global_dsums,
                                     double count, const float *weight, const float *bias,
                                     const float *mean, const float *invstd, const float *gamma,
                                     int C);

#endif
