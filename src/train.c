/* Data-parallel training of the seed CNN (DESIGN.md section 6). Every rank of the communicator
 * holds the same parameters and Adam state; a step of global batch B gives each rank a contiguous
 * slice of the step's samples. Per step: one allreduce of the BatchNorm sums (forward), one of
 * the BatchNorm gradient sums (backward), one of the gradient buffer (in double), one preemption
 * poll. */
#include "adfd/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/adam.h"
#include "adfd/layers.h"
#include "adfd/metrics.h"
#include "adfd/preempt.h"
#include "adfd/util.h"

#define SAMPLE_SIZE ((size_t)ADFD_N_MELS * ADFD_CHUNK_FRAMES)
#define CONV_POSITIONS ((double)ADFD_CONV_H * ADFD_CONV_W)
#define MOMENTS_MIN_CHANNELS 4
#define CKPT_NAME "train.ckpt"
#define CKPT_VERSION 1
static const char ckpt_magic[8] = {'A', 'D', 'F', 'D', 'C', 'K', 'P', 'T'};
static const char ckpt_end[8] = {'A', 'D', 'F', 'D', 'E', 'N', 'D', '!'};

/* One rank's activations for up to cap samples and the gradient buffer, allocated once. */
struct train_workspace {
    int cap;
    float *x;                        /* [cap][128][80] band-normalised input */
    float *pooled;                   /* [2][C*63*39] block output of a pair of samples */
    float *pool_xhat;                /* [cap][C*63*39] */
    uint8_t *pool_arg;               /* [cap][C*63*39] */
    float *dpooled;                  /* [cap][C*63*39] */
    float *logits, *dlogits, *probs; /* [cap][2] */
    int64_t *rows;
    int *labels;
    float *mean, *invstd; /* [C] */
    float *grads;         /* [n_params]: the step's gradient, for Adam */
    /* [n_params + 1]: the gradient summed in double, allreduced; the last slot carries the loss
     * sum in the same allreduce */
    double *grad_sums;
};
typedef struct train_workspace activations;

/* Everything a checkpoint holds; identical on every rank. */
typedef struct {
    cnn_model model, best;
    adam_state adam;
    int epoch_done, step_in_epoch, finished, best_epoch;
    double epoch_loss_sum, epoch_seconds, best_loss;
    epoch_result *history; /* [max_epochs] */
    int n_history;
} trainer;

static void activations_create(activations *a, int cap, int C) {
    size_t P = (size_t)C * ADFD_POOL_H * ADFD_POOL_W, n = cap > 0 ? (size_t)cap : 1;
    a->cap = cap;
    a->x = mallocCheck(n * SAMPLE_SIZE * sizeof(float));
    a->pooled = mallocCheck((n < 2 ? n : 2) * P * sizeof(float));
    /* only the small-C path keeps the normalised values of the pooled units */
    a->pool_xhat = C < MOMENTS_MIN_CHANNELS ? mallocCheck(n * P * sizeof(float)) : NULL;
    a->pool_arg = mallocCheck(n * P);
    a->dpooled = mallocCheck(n * P * sizeof(float));
    a->logits = mallocCheck(3 * n * ADFD_N_CLASSES * sizeof(float));
    a->dlogits = a->logits + n * ADFD_N_CLASSES;
    a->probs = a->dlogits + n * ADFD_N_CLASSES;
    a->rows = mallocCheck(n * sizeof(int64_t));
    a->labels = mallocCheck(n * sizeof(int));
    a->mean = mallocCheck(2 * (size_t)C * sizeof(float));
    a->invstd = a->mean + C;
    a->grads = mallocCheck((model_param_count(C) + 1) * sizeof(float));
    a->grad_sums = mallocCheck((model_param_count(C) + 1) * sizeof(double));
}

static void activations_free(activations *a) {
    free(a->x);
    free(a->pooled);
    free(a->pool_xhat);
    free(a->pool_arg);
    free(a->dpooled);
    free(a->logits);
    free(a->rows);
    free(a->labels);
    free(a->mean);
    free(a->grads);
    free(a->grad_sums);
}

train_workspace *train_workspace_create(int cap, int channels) {
    train_workspace *w = mallocCheck(sizeof *w);
    activations_create(w, cap, channels);
    return w;
}

void train_workspace_free(train_workspace *w) {
    if (!w) return;
    activations_free(w);
    free(w);
}

const float *train_workspace_grads(const train_workspace *w) {
    return w->grads;
}

const float *train_workspace_logits(const train_workspace *w) {
    return w->logits;
}

/* Reads rows into a->x and applies the per-band normalisation of the feature store. */
static void load_batch(activations *a, const train_data *d, int n) {
    if (n == 0) return;
    ADFD_CHECK(d->read_rows(d->ctx, a->rows, n, a->x) == 0, "reading training samples: %s",
               adfd_error());
    for (int b = 0; b < n; b++)
        for (int band = 0; band < ADFD_N_MELS; band++) {
            float *x = a->x + (size_t)b * SAMPLE_SIZE + (size_t)band * ADFD_CHUNK_FRAMES;
            float mu = d->band_mean[band], inv = 1.0f / d->band_std[band];
            for (int t = 0; t < ADFD_CHUNK_FRAMES; t++)
                x[t] = (x[t] - mu) * inv;
        }
}

double train_step_batch(cnn_model *m, adam_state *adam, train_workspace *a, const float *x,
                        const int *labels, const int64_t *sample_ids, int nb, int Bs, int epoch,
                        uint64_t dropout_seed, MPI_Comm comm) {
    int C = m->channels, H = ADFD_N_MELS, W = ADFD_CHUNK_FRAMES;
    int PS = C * ADFD_POOL_H * ADFD_POOL_W;
    ADFD_CHECK(nb <= a->cap, "batch slice of %d samples in a workspace for %d", nb, a->cap);
    double count = (double)Bs * CONV_POSITIONS, local_count = (double)nb * CONV_POSITIONS;
    /* from C = MOMENTS_MIN_CHANNELS on, the 45 patch products per position cost less than
     * computing C convolutions for the statistics and again in the backward pass */
    int use_moments = C >= MOMENTS_MIN_CHANNELS;
    double patch_S[9], patch_G[81];

    double sums[2 * C]; /* BatchNorm statistics of the global batch */
    if (use_moments) {
        conv_patch_moments(patch_S, patch_G, x, nb, H, W);
        conv_bn_sums_from_moments(sums, patch_S, patch_G, local_count, m->conv_w, m->conv_b, C);
    } else
        conv_bn_sums(sums, x, m->conv_w, m->conv_b, nb, C, H, W);
    ADFD_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 2 * C, MPI_DOUBLE, MPI_SUM, comm));
    batchnorm_stats(a->mean, a->invstd, m->bn_running_mean, m->bn_running_var, sums, count, C);
    m->bn_num_batches_tracked++;

    dropout_spec drop = {m->dropout, dropout_seed, (uint64_t)epoch, sample_ids};
    float out_scale = 1.0f / (1.0f - m->dropout);
    float *g = a->grads;
    memset(g, 0, (m->n_params + 1) * sizeof(float));
    cnn_tensors grad = model_tensors(g, C);
    /* The Linear gradients are summed over samples in double (gs_lin: weight, then bias) and
     * allreduced in double: the float result then does not depend on how the samples are split
     * across ranks. The conv/BatchNorm gradients join them after the backward pass (in double
     * too on the patch-moment path). */
    double *gs = a->grad_sums;
    size_t n_small = (size_t)(grad.linear_w - g);
    double *gs_lin = gs + n_small;
    memset(gs_lin, 0, (m->n_params - n_small) * sizeof(double));
    double loss = 0.0;
    /* One sample at a time (the Linear weight gradient by pairs), so that the Linear layer
     * reads the block output from cache: a sample's (C*63*39 floats) fits in L2, the whole
     * batch does not. */
    size_t SS = (size_t)H * W, PSz = (size_t)PS;
    for (int b = 0; b < nb; b++) {
        drop.sample_ids = sample_ids + b;
        float *logits = a->logits + ADFD_N_CLASSES * b, *dlogits = a->dlogits + ADFD_N_CLASSES * b;
        float *pooled = a->pooled + (b % 2) * PSz;
        if (use_moments) /* the logits are summed as the pooled rows are made */
            conv_bn_pool_linear_forward(logits, pooled, a->pool_arg + b * PSz, x + b * SS,
                                        m->conv_w, m->conv_b, a->mean, a->invstd, m->bn_w, m->bn_b,
                                        &drop, m->linear_w, m->linear_b, 1, C, H, W);
        else {
            conv_bn_pool_forward(pooled, a->pool_xhat + b * PSz, a->pool_arg + b * PSz, x + b * SS,
                                 m->conv_w, m->conv_b, a->mean, a->invstd, m->bn_w, m->bn_b, &drop,
                                 1, C, H, W);
            linear_forward(logits, pooled, m->linear_w, m->linear_b, 1, PS, ADFD_N_CLASSES);
        }
        /* dividing by the GLOBAL batch makes the allreduced sum the mean gradient */
        loss += softmax_xent_forward_backward(dlogits, NULL, logits, labels + b, 1, ADFD_N_CLASSES,
                                              1.0f / (float)Bs);
        /* the weight gradient of a pair of samples in one pass (pooled[0], pooled[1]) */
        if (b % 2 == 1 || b == nb - 1) {
            int first = b - b % 2;
            linear_backward_weight_double(gs_lin, gs_lin + (size_t)ADFD_N_CLASSES * PS,
                                          a->dlogits + ADFD_N_CLASSES * first, a->pooled,
                                          b - first + 1, PS, ADFD_N_CLASSES);
        }
        /* the large-C backward makes the input gradient itself, plane by plane in cache; here
         * the float weight gradient linear_backward adds is not used */
        if (!use_moments) {
            float *dpooled = a->dpooled + b * PSz;
            memset(dpooled, 0, PSz * sizeof(float));
            linear_backward(dpooled, grad.linear_w, grad.linear_b, dlogits, pooled, m->linear_w, 1,
                            PS, ADFD_N_CLASSES);
        }
    }
    double local_dsums[2 * C], dsums[2 * C];
    if (use_moments) {
        double A[10 * C];
        conv_bn_pool_linear_backward_sparse(A, a->dlogits, m->linear_w, ADFD_N_CLASSES, a->pool_arg,
                                            out_scale, x, nb, C, H, W);
        conv_bn_sparse_dsums(local_dsums, A, m->conv_w, m->conv_b, a->mean, a->invstd, C);
        memcpy(dsums, local_dsums, sizeof dsums);
        ADFD_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, dsums, 2 * C, MPI_DOUBLE, MPI_SUM, comm));
        /* straight into the double sums (parameter order conv_w, conv_b, bn_w, bn_b) */
        conv_bn_moments_backward_double(gs, gs + 9 * C, gs + 10 * C, gs + 11 * C, A, patch_S,
                                        patch_G, local_count, local_dsums, dsums, count, m->conv_w,
                                        m->conv_b, a->mean, a->invstd, m->bn_w, C);
    } else {
        conv_bn_pool_backward_sums(local_dsums, a->dpooled, a->pool_xhat, a->pool_arg, out_scale,
                                   nb, C, H, W);
        memcpy(dsums, local_dsums, sizeof dsums);
        ADFD_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, dsums, 2 * C, MPI_DOUBLE, MPI_SUM, comm));
        conv_bn_pool_backward(grad.conv_w, grad.conv_b, grad.bn_w, grad.bn_b, a->dpooled,
                              a->pool_arg, out_scale, x, m->conv_w, m->conv_b, a->mean, a->invstd,
                              m->bn_w, local_dsums, dsums, count, nb, C, H, W);
    }
    if (!use_moments)
        for (size_t i = 0; i < n_small; i++)
            gs[i] = g[i];
    /* With batch statistics the loss does not depend on the conv bias at all: its gradient is
     * exactly 0 and what a float computation returns is rounding noise, which Adam would turn
     * into +-lr steps that differ with the number of ranks. Use the exact value. */
    for (int c = 0; c < C; c++)
        gs[9 * C + c] = 0.0;
    gs[m->n_params] = loss;
    ADFD_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, gs, (int)m->n_params + 1, MPI_DOUBLE, MPI_SUM, comm));
    for (size_t i = 0; i < m->n_params; i++)
        g[i] = (float)gs[i];
    if (adam) adam_update(adam, m->params, g);
    return gs[m->n_params];
}

/* One optimisation step on samples order[start .. start+Bs) of the epoch, this rank's slice
 * read from the data source; returns the summed loss of the global batch. */
static double train_step(trainer *t, activations *a, const train_data *d, const int *order,
                         int start, int Bs, int epoch, uint64_t dropout_seed, int rank, int P,
                         MPI_Comm comm) {
    int lo = start + (int)((int64_t)Bs * rank / P);
    int hi = start + (int)((int64_t)Bs * (rank + 1) / P);
    int nb = hi - lo; /* this rank's slice; may be empty, the rank still joins every collective */
    for (int i = 0; i < nb; i++) {
        a->rows[i] = d->train_rows[order[lo + i]];
        a->labels[i] = d->train_labels[order[lo + i]];
    }
    load_batch(a, d, nb);
    return train_step_batch(&t->model, &t->adam, a, a->x, a->labels, a->rows, nb, Bs, epoch,
                            dropout_seed, comm);
}

/* Test-split loss and chunk-level AUC in eval mode; every rank returns rank 0's values. */
static void evaluate(double *test_loss, double *test_auc, trainer *t, activations *a,
                     const train_data *d, float *scores, int rank, int P, MPI_Comm comm) {
    cnn_model *m = &t->model;
    int C = m->channels;
    int lo = (int)((int64_t)d->n_test * rank / P), hi = (int)((int64_t)d->n_test * (rank + 1) / P);
    batchnorm_eval_stats(a->mean, a->invstd, m->bn_running_mean, m->bn_running_var, C);
    double loss = 0.0;
    float *my_scores = scores + lo; /* scores is [n_test] on every rank; each fills its slice */
    for (int s = lo; s < hi; s += a->cap) {
        int nb = hi - s < a->cap ? hi - s : a->cap;
        for (int i = 0; i < nb; i++) {
            a->rows[i] = d->test_rows[s + i];
            a->labels[i] = d->test_labels[s + i];
        }
        load_batch(a, d, nb);
        /* the same kernel as model_predict, so that the scores are the same */
        conv_bn_pool_linear_forward(a->logits, NULL, NULL, a->x, m->conv_w, m->conv_b, a->mean,
                                    a->invstd, m->bn_w, m->bn_b, NULL, m->linear_w, m->linear_b, nb,
                                    C, ADFD_N_MELS, ADFD_CHUNK_FRAMES);
        loss += softmax_xent_forward_backward(NULL, a->probs, a->logits, a->labels, nb,
                                              ADFD_N_CLASSES, 1.0f);
        for (int i = 0; i < nb; i++)
            my_scores[s - lo + i] = a->probs[2 * i + 1];
    }
    int counts[P], displs[P];
    for (int r = 0; r < P; r++) {
        displs[r] = (int)((int64_t)d->n_test * r / P);
        counts[r] = (int)((int64_t)d->n_test * (r + 1) / P) - displs[r];
    }
    ADFD_MPI_CHECK(MPI_Gatherv(rank == 0 ? MPI_IN_PLACE : my_scores, hi - lo, MPI_FLOAT, scores,
                               counts, displs, MPI_FLOAT, 0, comm));
    double total = 0.0;
    ADFD_MPI_CHECK(MPI_Reduce(&loss, &total, 1, MPI_DOUBLE, MPI_SUM, 0, comm));
    double result[2] = {total / d->n_test, 0.0};
    if (rank == 0) result[1] = train_auc(scores, d->test_labels, d->n_test);
    /* rank 0 decides: early stopping must see the same numbers everywhere */
    ADFD_MPI_CHECK(MPI_Bcast(result, 2, MPI_DOUBLE, 0, comm));
    *test_loss = result[0];
    *test_auc = result[1];
}

int train_should_stop(const double *test_losses, int n, int patience) {
    if (patience <= 0 || n < patience + 1) return 0;
    double best = test_losses[0];
    for (int i = 1; i < n; i++)
        if (test_losses[i] < best) best = test_losses[i];
    for (int i = n - patience; i < n; i++)
        if (!(test_losses[i] > best)) return 0;
    return 1;
}

/* ---------------- AUC ---------------- */

/* The exact (Mann-Whitney, ties counted one half) AUC of the metrics module; 0.5 when the test
 * split lacks a class, so that an epoch line always has a number. */
double train_auc(const float *score, const int *label, int n) {
    double auc;
    return metrics_auc(score, label, n, &auc) == 0 ? auc : 0.5;
}

/* ---------------- checkpoints ---------------- */

typedef struct { /* what must match for a checkpoint to continue this run */
    int32_t channels, batch, n_train, n_test;
    double lr, dropout;
    uint64_t seed;
} ckpt_fingerprint;

static ckpt_fingerprint fingerprint(const train_config *cfg, const train_data *d) {
    ckpt_fingerprint f;
    memset(&f, 0, sizeof f);
    f.channels = cfg->channels;
    f.batch = cfg->batch;
    f.n_train = d->n_train;
    f.n_test = d->n_test;
    f.lr = cfg->lr;
    f.dropout = cfg->dropout;
    f.seed = cfg->seed;
    return f;
}

static int ckpt_save(const trainer *t, const ckpt_fingerprint *f, const char *dir) {
    char path[4096];
    path_join(path, sizeof path, dir, CKPT_NAME);
    atomic_file af;
    if (atomic_file_open(&af, path) != 0) return -1;
    uint32_t version = CKPT_VERSION;
    size_t n_all = t->model.n_params + 2 * (size_t)t->model.channels;
    int32_t ints[6] = {t->epoch_done, t->step_in_epoch, t->finished,
                       t->best_epoch, t->n_history,     0};
    double doubles[3] = {t->epoch_loss_sum, t->epoch_seconds, t->best_loss};
    int64_t counters[3] = {t->adam.step, t->model.bn_num_batches_tracked,
                           t->best.bn_num_batches_tracked};
    int ok = fwrite(ckpt_magic, 8, 1, af.fp) == 1 && fwrite(&version, 4, 1, af.fp) == 1 &&
             fwrite(f, sizeof *f, 1, af.fp) == 1 && fwrite(ints, sizeof ints, 1, af.fp) == 1 &&
             fwrite(doubles, sizeof doubles, 1, af.fp) == 1 &&
             fwrite(counters, sizeof counters, 1, af.fp) == 1 &&
             fwrite(t->model.params, sizeof(float), n_all, af.fp) == n_all &&
             fwrite(t->best.params, sizeof(float), n_all, af.fp) == n_all &&
             fwrite(t->adam.m, sizeof(float), 2 * t->adam.n, af.fp) == 2 * t->adam.n &&
             fwrite(t->history, sizeof(epoch_result), (size_t)t->n_history, af.fp) ==
                 (size_t)t->n_history &&
             fwrite(ckpt_end, 8, 1, af.fp) == 1;
    if (!ok) {
        atomic_file_discard(&af);
        return adfd_fail("%s: cannot write the checkpoint", path);
    }
    return atomic_file_commit(&af);
}

/* 1 loaded, 0 no checkpoint, -1 + message on a damaged or foreign one. */
static int ckpt_load(trainer *t, const ckpt_fingerprint *f, const char *dir, int max_epochs) {
    char path[4096];
    path_join(path, sizeof path, dir, CKPT_NAME);
    if (!path_exists(path)) return 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return adfd_fail("%s: cannot open the checkpoint", path);
    char magic[8], end[8];
    uint32_t version = 0;
    ckpt_fingerprint got;
    int32_t ints[6];
    double doubles[3];
    int64_t counters[3];
    size_t n_all = t->model.n_params + 2 * (size_t)t->model.channels;
    int ok = fread(magic, 8, 1, fp) == 1 && !memcmp(magic, ckpt_magic, 8) &&
             fread(&version, 4, 1, fp) == 1;
    if (ok && version != CKPT_VERSION) {
        fclose(fp);
        return adfd_fail("%s: checkpoint version %u, expected %d", path, version, CKPT_VERSION);
    }
    ok = ok && fread(&got, sizeof got, 1, fp) == 1;
    if (ok && memcmp(&got, f, sizeof got) != 0) {
        fclose(fp);
        return adfd_fail("%s: the checkpoint belongs to another configuration or data set "
                         "(channels, batch, lr, dropout, seed or split sizes differ)",
                         path);
    }
    ok = ok && fread(ints, sizeof ints, 1, fp) == 1 && ints[4] >= 0 && ints[4] <= max_epochs &&
         fread(doubles, sizeof doubles, 1, fp) == 1 &&
         fread(counters, sizeof counters, 1, fp) == 1 &&
         fread(t->model.params, sizeof(float), n_all, fp) == n_all &&
         fread(t->best.params, sizeof(float), n_all, fp) == n_all &&
         fread(t->adam.m, sizeof(float), 2 * t->adam.n, fp) == 2 * t->adam.n &&
         fread(t->history, sizeof(epoch_result), (size_t)ints[4], fp) == (size_t)ints[4] &&
         fread(end, 8, 1, fp) == 1 && !memcmp(end, ckpt_end, 8);
    fclose(fp);
    if (!ok) return adfd_fail("%s: damaged or truncated checkpoint", path);
    t->epoch_done = ints[0];
    t->step_in_epoch = ints[1];
    t->finished = ints[2];
    t->best_epoch = ints[3];
    t->n_history = ints[4];
    t->epoch_loss_sum = doubles[0];
    t->epoch_seconds = doubles[1];
    t->best_loss = doubles[2];
    t->adam.step = counters[0];
    t->model.bn_num_batches_tracked = counters[1];
    t->best.bn_num_batches_tracked = counters[2];
    return 1;
}

/* Rank 0 writes; everyone waits so that the file exists when any rank returns. */
static void ckpt_save_collective(const trainer *t, const ckpt_fingerprint *f, const char *dir,
                                 int rank, MPI_Comm comm) {
    if (!dir) return;
    if (rank == 0) ADFD_CHECK(ckpt_save(t, f, dir) == 0, "%s", adfd_error());
    ADFD_MPI_CHECK(MPI_Barrier(comm));
}

/* ---------------- the training loop ---------------- */

static int validate(const train_config *cfg, const train_data *d) {
    if (cfg->channels <= 0) return adfd_fail("channels must be positive (got %d)", cfg->channels);
    if (!(cfg->lr > 0.0)) return adfd_fail("learning rate must be positive (got %g)", cfg->lr);
    if (cfg->batch <= 0) return adfd_fail("batch must be positive (got %d)", cfg->batch);
    if (cfg->max_epochs <= 0) return adfd_fail("epochs must be positive (got %d)", cfg->max_epochs);
    if (!(cfg->dropout >= 0.0 && cfg->dropout < 1.0))
        return adfd_fail("dropout must be in [0, 1) (got %g)", cfg->dropout);
    if (cfg->patience < 0) return adfd_fail("patience must be >= 0 (got %d)", cfg->patience);
    if (cfg->keep_last && cfg->patience > 0)
        return adfd_fail("early stopping (patience %d) cannot be used when the last epoch is kept",
                         cfg->patience);
    if (d->n_train <= 0) return adfd_fail("the features have no train-split samples");
    if (d->n_test <= 0 && !cfg->keep_last)
        return adfd_fail("the features have no test-split samples");
    if (cfg->batch > d->n_train)
        return adfd_fail("batch %d is larger than the train split (%d samples)", cfg->batch,
                         d->n_train);
    return 0;
}

static void model_take_data(cnn_model *m, const train_data *d) {
    m->features = d->features;
    memcpy(m->band_mean, d->band_mean, sizeof m->band_mean);
    memcpy(m->band_std, d->band_std, sizeof m->band_std);
}

int train_run_data(const train_config *cfg, const train_data *d, MPI_Comm comm,
                   const char *checkpoint_dir, int resume, epoch_callback cb, void *user,
                   cnn_model *best) {
    if (validate(cfg, d) != 0) return -1;
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    if (checkpoint_dir && rank == 0 && make_dirs(checkpoint_dir) != 0)
        adfd_die(__FILE__, __LINE__, "%s", adfd_error());

    trainer t;
    memset(&t, 0, sizeof t);
    if (model_create(&t.model, cfg->channels, (float)cfg->dropout, &d->features, cfg->seed) != 0)
        return -1;
    model_take_data(&t.model, d);
    model_copy(&t.best, &t.model);
    adam_init(&t.adam, t.model.n_params, cfg->lr);
    t.history = callocCheck((size_t)cfg->max_epochs, sizeof(epoch_result));
    t.best_loss = INFINITY;
    ckpt_fingerprint fp = fingerprint(cfg, d);

    int status = TRAIN_DONE;
    if (resume && checkpoint_dir) {
        int loaded = ckpt_load(&t, &fp, checkpoint_dir, cfg->max_epochs);
        int worst = loaded;
        ADFD_MPI_CHECK(MPI_Allreduce(&loaded, &worst, 1, MPI_INT, MPI_MIN, comm));
        if (worst < 0) {
            if (loaded >= 0) adfd_fail("another rank could not read the checkpoint");
            status = -1;
        } else if (loaded == 1) {
            log0("resuming after epoch %d, step %d\n", t.epoch_done, t.step_in_epoch);
            if (rank == 0 && cb)
                for (int i = 0; i < t.n_history; i++)
                    cb(&t.history[i], user);
        }
        /* more epochs than the checkpointed run may be asked for */
        if (t.finished && t.epoch_done < cfg->max_epochs &&
            !t.history[t.n_history - 1].stopped_early)
            t.finished = 0;
    }

    int cap = (cfg->batch + P - 1) / P;
    activations a;
    activations_create(&a, cap, cfg->channels);
    int *order = mallocCheck((size_t)d->n_train * sizeof(int));
    float *scores = mallocCheck((size_t)(d->n_test > 0 ? d->n_test : 1) * sizeof(float));
    uint64_t dropout_seed = rng_hash64(cfg->seed, 0x64726f70ULL, 0); /* "drop" */
    int steps = (d->n_train + cfg->batch - 1) / cfg->batch;

    for (int epoch = t.epoch_done + 1;
         status == TRAIN_DONE && !t.finished && epoch <= cfg->max_epochs; epoch++) {
        for (int i = 0; i < d->n_train; i++)
            order[i] = i;
        rng_shuffle_int(order, d->n_train, cfg->seed, (uint64_t)epoch);
        double t0 = adfd_seconds();
        for (int step = t.step_in_epoch; step < steps; step++) {
            if (preempt_agreed(comm)) {
                t.step_in_epoch = step;
                t.epoch_seconds += adfd_seconds() - t0;
                ckpt_save_collective(&t, &fp, checkpoint_dir, rank, comm);
                log0("preempted: checkpoint at epoch %d, step %d\n", epoch, step);
                status = TRAIN_PREEMPTED;
                break;
            }
            int start = step * cfg->batch;
            int Bs = d->n_train - start < cfg->batch ? d->n_train - start : cfg->batch;
            t.epoch_loss_sum +=
                train_step(&t, &a, d, order, start, Bs, epoch, dropout_seed, rank, P, comm);
        }
        if (status != TRAIN_DONE) break;
        epoch_result r;
        memset(&r, 0, sizeof r);
        r.epoch = epoch;
        r.train_loss = t.epoch_loss_sum / d->n_train;
        if (d->n_test > 0)
            evaluate(&r.test_loss, &r.test_auc, &t, &a, d, scores, rank, P, comm);
        else /* nothing held out (keep_last): no test figures, and no epoch is "best" */
            r.test_loss = r.test_auc = NAN;
        r.seconds = t.epoch_seconds + adfd_seconds() - t0;
        if (r.test_loss < t.best_loss) {
            r.is_best = 1;
            t.best_loss = r.test_loss;
            t.best_epoch = epoch;
            model_copy(&t.best, &t.model);
        }
        t.history[t.n_history++] = r;
        double losses[t.n_history];
        for (int i = 0; i < t.n_history; i++)
            losses[i] = t.history[i].test_loss;
        if (train_should_stop(losses, t.n_history, cfg->patience)) {
            r.stopped_early = 1;
            t.history[t.n_history - 1].stopped_early = 1;
        }
        t.epoch_done = epoch;
        t.step_in_epoch = 0;
        t.epoch_loss_sum = 0.0;
        t.epoch_seconds = 0.0;
        if (r.stopped_early || epoch == cfg->max_epochs) t.finished = 1;
        ckpt_save_collective(&t, &fp, checkpoint_dir, rank, comm);
        if (rank == 0 && cb) cb(&r, user);
    }
    if (status == TRAIN_DONE) {
        if (best->params && best->channels != t.best.channels) model_free(best);
        model_copy(best, cfg->keep_last ? &t.model : &t.best);
    }
    free(order);
    free(scores);
    activations_free(&a);
    free(t.history);
    adam_free(&t.adam);
    model_free(&t.model);
    model_free(&t.best);
    return status;
}
