/* train: one configuration trained data-parallel over an MPI communicator (DESIGN.md section 6):
 * fixed global batch, each rank its slice, one allreduce of the gradient buffer per step,
 * synchronized BatchNorm statistics, data order from (seed, epoch), dropout masks from
 * (seed, epoch, sample); early stopping; per-epoch checkpoints that --resume continues.
 *
 * Contract used by cmd_train and cmd_grid (the owner may add fields and functions). */
#ifndef ADFD_TRAIN_H
#define ADFD_TRAIN_H

#include <mpi.h>
#include <stdint.h>

#include "adfd/adam.h"
#include "adfd/model.h"
#include "adfd/store.h"

typedef struct {
    int channels;
    double lr;
    int batch; /* global batch, independent of the number of ranks */
    int max_epochs;
    double dropout;
    uint64_t seed;
    int patience; /* early stopping: from epoch 4 on, stop when the last `patience` (3) test
                     losses are all above the best so far; 0 = off */
    int keep_last; /* 1: the data may have no test rows (n_test 0: no evaluation, test loss and
                      AUC NAN) and *best is the LAST epoch's model; patience must be 0 */
} train_config;

typedef struct {
    int epoch; /* 1-based */
    double train_loss, test_loss, test_auc, seconds;
    int is_best;       /* best test loss so far */
    int stopped_early; /* this epoch triggered the stop */
} epoch_result;

/* Called on rank 0 of comm after every epoch. */
typedef void (*epoch_callback)(const epoch_result *r, void *user);

enum { TRAIN_DONE = 0, TRAIN_PREEMPTED = 3 };

/* Every rank of comm calls it. Trains on the train split, evaluates the test split each epoch,
 * keeps the best epoch's weights in *best (valid on every rank). checkpoint_dir (NULL: none)
 * holds one checkpoint per epoch (weights, Adam state, epoch); with resume=1 training continues
 * from the newest complete one and ends with the same model as an uninterrupted run.
 * Returns TRAIN_DONE, TRAIN_PREEMPTED (checkpointed after a preemption signal) or -1 + message. */
int train_run(const train_config *cfg, feature_store *store, MPI_Comm comm,
              const char *checkpoint_dir, int resume, epoch_callback cb, void *user,
              cnn_model *best);

/* Where training samples come from: train_run reads a feature_store; tests and benchmarks can
 * pass rows held in memory. read_rows fills out [n][128][80] with raw features of rows[0..n)
 * (0 ok, -1 + message). */
typedef struct {
    int n_train, n_test;
    const int64_t *train_rows, *test_rows; /* row ids passed to read_rows; also the dropout key */
    const int *train_labels, *test_labels; /* 0 bona fide, 1 spoof */
    int (*read_rows)(void *ctx, const int64_t *rows, int n, float *out);
    void *ctx;
    feature_params features;
    float band_mean[ADFD_N_MELS], band_std[ADFD_N_MELS];
} train_data;

/* The store's train rows then test rows (file order), read with store_read_rows. */
void train_data_from_store(train_data *d, feature_store *store);
/* Train rows from every split whose bit (1u << SPLIT_*) is set in train_splits, in split order
 * (SPLIT_TRAIN's rows, then SPLIT_TEST's), each in file order; test rows: the test split when
 * it is not a train split, else none (n_test 0). train_data_from_store = mask 1u << SPLIT_TRAIN. */
void train_data_from_store_splits(train_data *d, feature_store *store, unsigned train_splits);
void train_data_free(train_data *d);

/* train_run on an explicit data source (same contract). */
int train_run_data(const train_config *cfg, const train_data *data, MPI_Comm comm,
                   const char *checkpoint_dir, int resume, epoch_callback cb, void *user,
                   cnn_model *best);

/* One optimisation step, exposed for the PyTorch reference test and the benchmarks.
 * A workspace holds one rank's activations for up to `cap` samples and the gradient buffer. */
typedef struct train_workspace train_workspace;
train_workspace *train_workspace_create(int cap, int channels);
void train_workspace_free(train_workspace *w);
/* After a step: the allreduced gradient [n_params] and this rank's logits [nb][2]. */
const float *train_workspace_grads(const train_workspace *w);
const float *train_workspace_logits(const train_workspace *w);
/* x: this rank's nb band-normalised samples [nb][128][80] with labels and sample ids (the
 * dropout key), nb <= cap; global_batch: the samples of the step over all ranks of comm.
 * Updates BatchNorm running statistics, then (adam != NULL) the parameters. Collective over
 * comm. Returns the summed loss of the global batch. */
double train_step_batch(cnn_model *m, adam_state *adam, train_workspace *w, const float *x,
                        const int *labels, const int64_t *sample_ids, int nb, int global_batch,
                        int epoch, uint64_t dropout_seed, MPI_Comm comm);

/* The seed's early-stopping rule on the test losses of epochs 1..n (losses[0..n)): with
 * patience K > 0, stop after epoch n when n >= K+1 and the last K losses are all above the best
 * (lowest) loss so far. 1 = stop. */
int train_should_stop(const double *test_losses, int n, int patience);

/* Chunk-level ROC AUC (Mann-Whitney, ties counted one half); 0.5 when a class is missing. */
double train_auc(const float *score, const int *label, int n);

#endif
