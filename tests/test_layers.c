/* Every layer's backward against central finite differences of its forward (loss = sum r*out for
 * a fixed random r), the fused conv/BN/ReLU/pool/dropout block against the plain layers composed,
 * and the dropout mask's rate, scale and independence from batch position. */
#include <stdlib.h>
#include <string.h>

#include "adfd/layers.h"
#include "adfd/util.h"
#include "check.h"

enum { B = 3, C = 2, H = 10, W = 12, OH = H - 2, OW = W - 2, PH = OH / 2, PW = OW / 2 };
enum { NX = B * H * W, NY = B * C * OH * OW, NP = B * C * PH * PW };

static uint64_t lcg = 88172645463325252ULL;
static float randn(void) { /* sum of uniforms: cheap, smooth enough for tests */
    float s = 0.0f;
    for (int i = 0; i < 4; i++) {
        lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
        s += (float)(lcg >> 40) / 16777216.0f - 0.5f;
    }
    return s * 1.7f;
}
static void fill(float *v, int n, float scale, float offset) {
    for (int i = 0; i < n; i++)
        v[i] = randn() * scale + offset;
}
static double dot(const float *a, const float *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* analytic vs central difference for every element of var (n values) */
typedef double (*loss_fn)(void);
static void check_fd(const char *what, float *var, int n, const float *analytic, loss_fn loss,
                     float eps, double rtol) {
    double maxg = 0.0;
    for (int i = 0; i < n; i++)
        maxg = fmax(maxg, fabs(analytic[i]));
    int bad = 0;
    for (int i = 0; i < n; i++) {
        float keep = var[i];
        var[i] = keep + eps;
        double lp = loss();
        var[i] = keep - eps;
        double lm = loss();
        var[i] = keep;
        double fd = (lp - lm) / (2.0 * eps);
        if (fabs(fd - analytic[i]) > rtol * fabs(fd) + rtol * maxg) {
            if (bad < 5)
                fprintf(stderr, "%s[%d]: analytic %.6g, finite difference %.6g\n", what, i,
                        analytic[i], fd);
            bad++;
        }
    }
    CHECK(bad == 0, "%s: %d of %d gradients differ from finite differences", what, bad, n);
}

static float x[NX], y[NY], r_y[NY], r_p[NP], w[9 * C], bias[C], gamma_[C], beta_[C];
static float mask[NP], pooled[NP];
static int64_t ids[B] = {3, 1, 4};
static dropout_spec drop = {0.25f, 9, 1, ids};
#define DROP_SCALE (1.0f / (1.0f - 0.25f))

static double conv_loss(void) {
    conv3x3_forward(y, x, w, bias, B, C, H, W);
    return dot(y, r_y, NY);
}

static float bn_in[NY], bn_out[NY];
static double bn_loss(void) {
    double sums[2 * C];
    float mean[C], invstd[C];
    batchnorm_sums(sums, bn_in, B, C, OH * OW);
    batchnorm_stats(mean, invstd, NULL, NULL, sums, (double)B * OH * OW, C);
    batchnorm_forward(bn_out, bn_in, mean, invstd, gamma_, beta_, B, C, OH * OW);
    return dot(bn_out, r_y, NY);
}

static float relu_in[NY];
static double relu_loss(void) {
    relu_forward(bn_out, relu_in, NY);
    return dot(bn_out, r_y, NY);
}

static uint8_t arg[NP];
static double pool_loss(void) {
    maxpool2x2_forward(pooled, arg, relu_in, B * C, OH, OW);
    return dot(pooled, r_p, NP);
}

enum { LIN_IN = 7, LIN_OUT = 3 };
static float lin_x[B * LIN_IN], lin_w[LIN_OUT * LIN_IN], lin_b[LIN_OUT], lin_y[B * LIN_OUT],
    lin_r[B * LIN_OUT];
static double linear_loss(void) {
    linear_forward(lin_y, lin_x, lin_w, lin_b, B, LIN_IN, LIN_OUT);
    return dot(lin_y, lin_r, B * LIN_OUT);
}

static float logits[B * LIN_OUT];
static int labels[B] = {2, 0, 1};
static double xent_loss(void) {
    return softmax_xent_forward_backward(NULL, NULL, logits, labels, B, LIN_OUT, 1.0f);
}

/* the fused block: loss = sum r_p * block(x) with batch statistics and a dropout mask */
static double block_loss(void) {
    double sums[2 * C];
    float mean[C], invstd[C];
    conv_bn_sums(sums, x, w, bias, B, C, H, W);
    batchnorm_stats(mean, invstd, NULL, NULL, sums, (double)B * OH * OW, C);
    conv_bn_pool_forward(pooled, NULL, NULL, x, w, bias, mean, invstd, gamma_, beta_, &drop, B, C,
                         H, W);
    return dot(pooled, r_p, NP);
}

static void test_conv(void) {
    fill(x, NX, 1.0f, 0.3f);
    fill(w, 9 * C, 0.3f, 0.0f);
    fill(bias, C, 0.3f, 0.0f);
    fill(r_y, NY, 1.0f, 0.0f);
    float dw[9 * C] = {0}, db[C] = {0};
    conv3x3_backward(dw, db, r_y, x, B, C, H, W);
    check_fd("conv weight", w, 9 * C, dw, conv_loss, 1e-2f, 2e-3);
    check_fd("conv bias", bias, C, db, conv_loss, 1e-2f, 2e-3);
    /* one output by hand */
    conv_loss();
    double want = bias[1];
    for (int k = 0; k < 9; k++)
        want += w[9 + k] * x[1 * H * W + (2 + k / 3) * W + 3 + k % 3];
    CHECK_CLOSE(y[((1 * C + 1) * OH + 2) * OW + 3], want, 1e-5, 1e-6);
}

static void test_batchnorm(void) {
    fill(bn_in, NY, 2.0f, 1.5f);
    fill(gamma_, C, 0.3f, 1.0f);
    fill(beta_, C, 0.3f, 0.0f);
    fill(r_y, NY, 1.0f, 0.0f);
    double sums[2 * C], dsums[2 * C];
    float mean[C], invstd[C], din[NY] = {0}, dg[C] = {0}, dbt[C] = {0};
    batchnorm_sums(sums, bn_in, B, C, OH * OW);
    batchnorm_stats(mean, invstd, NULL, NULL, sums, (double)B * OH * OW, C);
    batchnorm_backward_sums(dsums, r_y, bn_in, mean, invstd, B, C, OH * OW);
    batchnorm_backward(din, dg, dbt, r_y, bn_in, mean, invstd, gamma_, dsums, dsums,
                       (double)B * OH * OW, B, C, OH * OW);
    check_fd("batchnorm input", bn_in, 40, din, bn_loss, 1e-2f, 5e-3);
    check_fd("batchnorm input (last)", bn_in + NY - 40, 40, din + NY - 40, bn_loss, 1e-2f, 5e-3);
    check_fd("batchnorm weight", gamma_, C, dg, bn_loss, 1e-2f, 2e-3);
    check_fd("batchnorm bias", beta_, C, dbt, bn_loss, 1e-2f, 2e-3);
    /* running statistics: PyTorch's momentum 0.1 and unbiased variance, by hand */
    float rm[C] = {0.5f, -0.5f}, rv[C] = {2.0f, 0.5f};
    batchnorm_stats(mean, invstd, rm, rv, sums, (double)B * OH * OW, C);
    double n = (double)B * OH * OW, m0 = 0.0, v0 = 0.0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < OH * OW; i++)
            m0 += bn_in[(b * C) * OH * OW + i];
    m0 /= n;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < OH * OW; i++) {
            double d = bn_in[(b * C) * OH * OW + i] - m0;
            v0 += d * d;
        }
    CHECK_CLOSE(rm[0], 0.9 * 0.5 + 0.1 * m0, 1e-5, 1e-7);
    CHECK_CLOSE(rv[0], 0.9 * 2.0 + 0.1 * v0 / (n - 1), 1e-5, 1e-7);
    CHECK_CLOSE(invstd[0], 1.0 / sqrt(v0 / n + 1e-5), 1e-5, 0.0);
}

static void test_relu_pool(void) {
    /* values away from the kinks (|x| > 0.1, max-pool gaps > 2 eps) */
    for (int i = 0; i < NY; i++) {
        float v = randn();
        relu_in[i] = (v >= 0 ? 0.1f : -0.1f) + v + 0.01f * (float)(i % 17);
    }
    fill(r_y, NY, 1.0f, 0.0f);
    fill(r_p, NP, 1.0f, 0.0f);
    float din[NY] = {0};
    relu_loss();
    relu_backward(din, r_y, bn_out, NY);
    check_fd("relu", relu_in, 60, din, relu_loss, 1e-3f, 1e-3);
    memset(din, 0, sizeof din);
    pool_loss();
    maxpool2x2_backward(din, r_p, arg, B * C, OH, OW);
    check_fd("maxpool", relu_in, 80, din, pool_loss, 1e-3f, 1e-3);
    /* PyTorch picks the first maximum in row-major order on ties */
    float t[4] = {1.0f, 2.0f, 2.0f, 0.5f}, o;
    uint8_t a;
    maxpool2x2_forward(&o, &a, t, 1, 2, 2);
    CHECK(o == 2.0f && a == 1, "tie: value %g index %d", o, a);
}

static void test_linear_xent(void) {
    fill(lin_x, B * LIN_IN, 1.0f, 0.0f);
    fill(lin_w, LIN_OUT * LIN_IN, 0.5f, 0.0f);
    fill(lin_b, LIN_OUT, 0.5f, 0.0f);
    fill(lin_r, B * LIN_OUT, 1.0f, 0.0f);
    float dx[B * LIN_IN] = {0}, dw[LIN_OUT * LIN_IN] = {0}, db[LIN_OUT] = {0};
    linear_backward(dx, dw, db, lin_r, lin_x, lin_w, B, LIN_IN, LIN_OUT);
    check_fd("linear input", lin_x, B * LIN_IN, dx, linear_loss, 1e-2f, 1e-3);
    check_fd("linear weight", lin_w, LIN_OUT * LIN_IN, dw, linear_loss, 1e-2f, 1e-3);
    check_fd("linear bias", lin_b, LIN_OUT, db, linear_loss, 1e-2f, 1e-3);
    fill(logits, B * LIN_OUT, 2.0f, 0.0f);
    float dl[B * LIN_OUT];
    softmax_xent_forward_backward(dl, NULL, logits, labels, B, LIN_OUT, 1.0f);
    check_fd("cross-entropy", logits, B * LIN_OUT, dl, xent_loss, 1e-2f, 1e-3);
    /* by hand: logits (0, ln 3) label 1 -> p = 3/4, loss = ln(4/3) */
    float z[2] = {0.0f, logf(3.0f)}, p[2];
    int l = 1;
    double loss = softmax_xent_forward_backward(NULL, p, z, &l, 1, 2, 1.0f);
    CHECK_CLOSE(loss, log(4.0 / 3.0), 1e-6, 0.0);
    CHECK_CLOSE(p[1], 0.75, 1e-6, 0.0);
}

static void test_dropout(void) {
    enum { N = 1 << 16 };
    static float m1[2 * N], m2[N];
    int64_t ids[2] = {7, 11}, ids_swapped[1] = {11};
    dropout_mask(m1, ids, 2, N, 0.2f, 42, 3);
    dropout_mask(m2, ids_swapped, 1, N, 0.2f, 42, 3);
    CHECK(!memcmp(m1 + N, m2, sizeof m2), "mask of sample 11 depends on its batch position");
    int dropped = 0, bad_scale = 0;
    for (int i = 0; i < 2 * N; i++) {
        dropped += m1[i] == 0.0f;
        bad_scale += m1[i] != 0.0f && m1[i] != 1.25f;
    }
    CHECK_CLOSE(dropped / (2.0 * N), 0.2, 0.0, 0.005);
    CHECK(bad_scale == 0, "%d kept elements not scaled by 1/(1-p)", bad_scale);
    dropout_mask(m2, ids, 1, N, 0.2f, 42, 4);
    CHECK(memcmp(m1, m2, sizeof m2) != 0, "the same mask in another epoch");
    float in[4] = {1, 2, 3, 4}, mk[4] = {0, 1.25f, 1.25f, 0}, out[4], din[4] = {0};
    dropout_forward(out, in, mk, 4);
    dropout_backward(din, in, mk, 4);
    CHECK(out[0] == 0.0f && out[1] == 2.5f && din[2] == 3.75f && din[3] == 0.0f, "dropout apply");
}

static void test_fused_block(void) {
    fill(x, NX, 1.0f, 0.3f);
    fill(w, 9 * C, 0.3f, 0.0f);
    fill(bias, C, 0.3f, 0.0f);
    fill(gamma_, C, 0.3f, 1.0f);
    gamma_[1] = -0.7f; /* a negative scale flips which position the pool picks */
    fill(beta_, C, 0.3f, 0.0f);
    fill(r_p, NP, 1.0f, 0.0f);
    dropout_mask(mask, ids, B, C * PH * PW, drop.p, drop.seed, drop.epoch);

    /* forward: the plain layers composed */
    double sums[2 * C];
    float mean[C], invstd[C];
    conv3x3_forward(y, x, w, bias, B, C, H, W);
    batchnorm_sums(sums, y, B, C, OH * OW);
    batchnorm_stats(mean, invstd, NULL, NULL, sums, (double)B * OH * OW, C);
    batchnorm_forward(bn_out, y, mean, invstd, gamma_, beta_, B, C, OH * OW);
    relu_forward(relu_in, bn_out, NY);
    float plain_pool[NP], plain_out[NP];
    maxpool2x2_forward(plain_pool, arg, relu_in, B * C, OH, OW);
    dropout_forward(plain_out, plain_pool, mask, NP);

    double fsums[2 * C];
    float fmean[C], finvstd[C], xhat[NP];
    uint8_t parg[NP];
    conv_bn_sums(fsums, x, w, bias, B, C, H, W);
    for (int i = 0; i < 2 * C; i++)
        CHECK_CLOSE(fsums[i], sums[i], 1e-5, 1e-5);
    batchnorm_stats(fmean, finvstd, NULL, NULL, fsums, (double)B * OH * OW, C);
    conv_bn_pool_forward(pooled, xhat, parg, x, w, bias, fmean, finvstd, gamma_, beta_, &drop, B, C,
                         H, W);
    int bad = 0;
    for (int i = 0; i < NP; i++)
        bad += fabsf(pooled[i] - plain_out[i]) > 1e-5f;
    CHECK(bad == 0, "fused forward differs from the plain layers at %d of %d outputs", bad, NP);

    /* backward: the plain layers composed */
    float d_pool[NP] = {0}, d_relu[NY] = {0}, d_bn[NY] = {0};
    float pw[9 * C] = {0}, pb[C] = {0}, pg[C] = {0}, pbt[C] = {0};
    dropout_backward(d_pool, r_p, mask, NP);
    maxpool2x2_backward(d_relu, d_pool, arg, B * C, OH, OW);
    memset(d_bn, 0, sizeof d_bn);
    relu_backward(d_bn, d_relu, relu_in, NY);
    double dsums[2 * C];
    batchnorm_backward_sums(dsums, d_bn, y, mean, invstd, B, C, OH * OW);
    static float d_conv[NY];
    memset(d_conv, 0, sizeof d_conv);
    batchnorm_backward(d_conv, pg, pbt, d_bn, y, mean, invstd, gamma_, dsums, dsums,
                       (double)B * OH * OW, B, C, OH * OW);
    conv3x3_backward(pw, pb, d_conv, x, B, C, H, W);

    double fdsums[2 * C];
    float fw[9 * C] = {0}, fb[C] = {0}, fg[C] = {0}, fbt[C] = {0};
    conv_bn_pool_backward_sums(fdsums, r_p, xhat, parg, DROP_SCALE, B, C, H, W);
    for (int i = 0; i < 2 * C; i++)
        CHECK_CLOSE(fdsums[i], dsums[i], 1e-4, 1e-5);
    conv_bn_pool_backward(fw, fb, fg, fbt, r_p, parg, DROP_SCALE, x, w, bias, fmean, finvstd,
                          gamma_, fdsums, fdsums, (double)B * OH * OW, B, C, H, W);
    /* the same through the patch moments */
    double S[9], G[81], msums[2 * C];
    conv_patch_moments(S, G, x, B, H, W);
    conv_bn_sums_from_moments(msums, S, G, (double)B * OH * OW, w, bias, C);
    for (int i = 0; i < 2 * C; i++)
        CHECK_CLOSE(msums[i], sums[i], 1e-5, 1e-5);
    float mw[9 * C] = {0}, mb[C] = {0}, mg[C] = {0}, mbt[C] = {0};
    double A[10 * C], adsums[2 * C];
    conv_bn_pool_backward_sparse(A, r_p, parg, DROP_SCALE, x, B, C, H, W);
    conv_bn_sparse_dsums(adsums, A, w, bias, fmean, finvstd, C);
    for (int i = 0; i < 2 * C; i++)
        CHECK_CLOSE(adsums[i], dsums[i], 1e-4, 1e-5);
    conv_bn_moments_backward(mw, mb, mg, mbt, A, S, G, (double)B * OH * OW, adsums, adsums,
                             (double)B * OH * OW, w, bias, fmean, finvstd, gamma_, C);
    for (int c = 0; c < C; c++) {
        CHECK_CLOSE(mg[c], pg[c], 1e-4, 1e-5);
        CHECK_CLOSE(mbt[c], pbt[c], 1e-4, 1e-5);
    }
    for (int i = 0; i < 9 * C; i++)
        CHECK_CLOSE(mw[i], pw[i], 1e-4, 1e-4);
    for (int c = 0; c < C; c++)
        CHECK_CLOSE(mb[c], 0.0, 0.0, 1e-3);
    for (int i = 0; i < 9 * C; i++)
        CHECK_CLOSE(fw[i], pw[i], 1e-4, 1e-5);
    for (int c = 0; c < C; c++) {
        CHECK_CLOSE(fg[c], pg[c], 1e-4, 1e-5);
        CHECK_CLOSE(fbt[c], pbt[c], 1e-4, 1e-5);
        CHECK_CLOSE(fb[c], 0.0, 0.0, 1e-4); /* BatchNorm cancels the conv bias */
    }
    /* and against finite differences of the fused forward */
    check_fd("block conv weight", w, 9 * C, fw, block_loss, 1e-3f, 1e-2);
    check_fd("block bn weight", gamma_, C, fg, block_loss, 1e-3f, 1e-2);
    check_fd("block bn bias", beta_, C, fbt, block_loss, 1e-3f, 1e-2);
}

int main(void) {
    test_conv();
    test_batchnorm();
    test_relu_pool();
    test_linear_xent();
    test_dropout();
    test_fused_block();
    return check_exit_status("test_layers");
}
