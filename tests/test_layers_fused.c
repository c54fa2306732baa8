/* The fused block's plane kernels: the AVX2 and the portable C paths agree, the block + Linear
 * kernel (conv_bn_pool_linear_forward) agrees with the block followed by linear_forward, the
 * sparse backward that makes the Linear input gradient itself agrees with the one given that
 * gradient, the patch moments of both paths agree, and no kernel writes past its output rows
 * (sentinels after every buffer). Run at the network's geometry (pooled rows of 39: a partial
 * vector) and at a small one. */
#include <stdlib.h>
#include <string.h>

#include "adfd/layers.h"
#include "adfd/util.h"
#include "check.h"

#define GUARD 64
#define SENTINEL 0x5a

static uint64_t lcg = 0x2545f4914f6cdd1dULL;
static float randu(void) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(lcg >> 40) / 16777216.0f - 0.5f;
}

/* n bytes followed by GUARD sentinel bytes */
static void *guarded(size_t n) {
    unsigned char *p = malloc(n + GUARD);
    memset(p, SENTINEL, n + GUARD);
    return p;
}
static int guard_intact(const void *p, size_t n) {
    const unsigned char *q = (const unsigned char *)p + n;
    for (int i = 0; i < GUARD; i++)
        if (q[i] != SENTINEL) return 0;
    return 1;
}

typedef struct {
    float *out, *logits;
    uint8_t *arg;
    double *A;
} fused_result;

static void run_case(int B, int C, int H, int W) {
    int PH = (H - 2) / 2, PW = (W - 2) / 2;
    size_t P = (size_t)PH * PW, NP = (size_t)B * C * P, PS = (size_t)C * P;
    float *x = malloc((size_t)B * H * W * sizeof(float));
    float w[9 * 64], bias[64], gamma[64], beta[64], mean[64], invstd[64];
    float *lw = malloc(2 * PS * sizeof(float)), lb[2] = {0.1f, -0.2f};
    for (size_t i = 0; i < (size_t)B * H * W; i++)
        x[i] = 2.0f * randu() + 0.2f;
    for (int c = 0; c < C; c++) {
        for (int k = 0; k < 9; k++)
            w[9 * c + k] = randu();
        bias[c] = 0.2f * randu();
        gamma[c] = c % 3 == 1 ? -0.8f : 1.0f + 0.3f * randu(); /* a negative scale too */
        beta[c] = 0.3f * randu();
        mean[c] = bias[c] + 0.2f * randu();
        invstd[c] = 1.0f + randu();
    }
    for (size_t i = 0; i < 2 * PS; i++)
        lw[i] = randu();
    int64_t ids[4] = {7, 2, 9, 4};
    dropout_spec drop = {0.2f, 11, 3, ids};
    float scale = 1.0f / (1.0f - drop.p);
    float dlogits[8];
    for (int i = 0; i < 2 * B; i++)
        dlogits[i] = randu();

    /* reference: the small-C path (no folding) and linear_forward; dout = the Linear input
     * gradient, made whole */
    float *ref_out = malloc(NP * sizeof(float)), *xhat = malloc(NP * sizeof(float));
    float *dout = malloc(NP * sizeof(float)), ref_logits[8];
    uint8_t *ref_arg = malloc(NP);
    conv_bn_pool_forward(ref_out, xhat, ref_arg, x, w, bias, mean, invstd, gamma, beta, &drop, B, C,
                         H, W);
    linear_forward(ref_logits, ref_out, lw, lb, B, (int)PS, 2);
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < PS; i++)
            dout[b * PS + i] = dlogits[2 * b] * lw[i] + dlogits[2 * b + 1] * lw[PS + i];
    double *ref_A = malloc(10 * (size_t)C * sizeof(double));

    fused_result r[2];
    for (int portable = 0; portable < 2; portable++) {
        layers_use_portable_kernels(portable);
        fused_result *f = &r[portable];
        f->out = guarded(NP * sizeof(float));
        f->arg = guarded(NP);
        f->logits = guarded(2 * (size_t)B * sizeof(float));
        f->A = malloc(10 * (size_t)C * sizeof(double));
        conv_bn_pool_linear_forward(f->logits, f->out, f->arg, x, w, bias, mean, invstd, gamma,
                                    beta, &drop, lw, lb, B, C, H, W);
        CHECK(guard_intact(f->out, NP * sizeof(float)) && guard_intact(f->arg, NP) &&
                  guard_intact(f->logits, 2 * (size_t)B * sizeof(float)),
              "portable=%d: a kernel wrote past its output", portable);
        int bad_out = 0, bad_arg = 0;
        for (size_t i = 0; i < NP; i++) {
            bad_out += fabsf(f->out[i] - ref_out[i]) > 1e-5f + 1e-5f * fabsf(ref_out[i]);
            bad_arg += f->arg[i] != ref_arg[i];
        }
        CHECK(bad_out == 0, "portable=%d: %d of %zu outputs differ", portable, bad_out, NP);
        CHECK(bad_arg == 0, "portable=%d: %d of %zu pool codes differ", portable, bad_arg, NP);
        for (int i = 0; i < 2 * B; i++)
            CHECK_CLOSE(f->logits[i], ref_logits[i], 1e-4, 1e-4);
        /* inference: no block output, the same logits */
        float logits2[8];
        conv_bn_pool_linear_forward(logits2, NULL, NULL, x, w, bias, mean, invstd, gamma, beta,
                                    &drop, lw, lb, B, C, H, W);
        for (int i = 0; i < 2 * B; i++)
            CHECK(logits2[i] == f->logits[i], "portable=%d: logits without out differ", portable);

        conv_bn_pool_linear_backward_sparse(f->A, dlogits, lw, 2, f->arg, scale, x, B, C, H, W);
        conv_bn_pool_backward_sparse(ref_A, dout, f->arg, scale, x, B, C, H, W);
        for (int i = 0; i < 10 * C; i++)
            CHECK_CLOSE(f->A[i], ref_A[i], 1e-4, 1e-4);
    }
    /* the patch moments (BatchNorm statistics and backward at large C) */
    double S[2][9], G[2][81];
    for (int portable = 0; portable < 2; portable++) {
        layers_use_portable_kernels(portable);
        conv_patch_moments(S[portable], G[portable], x, B, H, W);
    }
    for (int k = 0; k < 9; k++)
        CHECK_CLOSE(S[0][k], S[1][k], 1e-6, 1e-6);
    for (int k = 0; k < 81; k++)
        CHECK_CLOSE(G[0][k], G[1][k], 1e-6, 1e-6);
    layers_use_portable_kernels(0);
    for (size_t i = 0; i < NP; i++)
        if (r[0].arg[i] != r[1].arg[i] || fabsf(r[0].out[i] - r[1].out[i]) > 1e-5f) {
            CHECK(0, "AVX2 and portable block outputs differ at %zu", i);
            break;
        }
    for (int i = 0; i < 2 * B; i++)
        CHECK_CLOSE(r[0].logits[i], r[1].logits[i], 1e-5, 1e-5);
    for (int i = 0; i < 10 * C; i++)
        CHECK_CLOSE(r[0].A[i], r[1].A[i], 1e-5, 1e-5);

    for (int k = 0; k < 2; k++) {
        free(r[k].out);
        free(r[k].arg);
        free(r[k].logits);
        free(r[k].A);
    }
    free(x);
    free(lw);
    free(ref_out);
    free(xhat);
    free(dout);
    free(ref_arg);
    free(ref_A);
}

int main(void) {
    run_case(3, 5, 128, 80); /* the network's geometry: pooled rows of 39 */
    run_case(2, 3, 10, 12);  /* pooled rows of 5: one partial vector */
    run_case(4, 2, 20, 36);  /* pooled rows of 17 */
    return check_exit_status("test_layers_fused");
}
