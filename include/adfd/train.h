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

#include "adfd/model.h"
#include "adfd/store.h"

typedef struct {
    int channels;
    double lr;
    int batch;      /* global batch, independent of the number of ranks */
    int max_epochs;
    double dropout;
    uint64_t seed;
    int patience;       /* early stopping: from epoch 4 on, stop when the last `patience` (3) test
                           losses are all above the best so far; 0 = off */
} train_config;

typedef struct {
    int epoch; /* 1-based */
    double train_loss, test_loss, test_auc, seconds;
    int is_best;      /* best test loss so far */
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

#endif
