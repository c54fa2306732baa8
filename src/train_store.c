/* train_run on a feature store: the store's train and test rows as a train_data source (kept
 * apart from train.c so that the trainer itself does not depend on the store). */
#include <stdlib.h>
#include <string.h>

#include "adfd/dataset.h"
#include "adfd/train.h"
#include "adfd/util.h"

static int store_source_read(void *ctx, const int64_t *rows, int n, float *out) {
    return store_read_rows(ctx, rows, n, out);
}

void train_data_from_store(train_data *d, feature_store *store) {
    train_data_from_store_splits(d, store, 1u << SPLIT_TRAIN);
}

/* Appends the rows of `split` (file order) to rows/labels from index n; returns the new n. */
static int append_split(const feature_store *store, int split, int64_t *rows, int *labels, int n) {
    for (int64_t r = 0; r < store->n_rows; r++) {
        int clip = store->row_clip[r];
        if (store->clip_split[clip] != split) continue;
        rows[n] = r;
        labels[n] = store->clip_label[clip];
        n++;
    }
    return n;
}

void train_data_from_store_splits(train_data *d, feature_store *store, unsigned train_splits) {
    memset(d, 0, sizeof *d);
    size_t n_rows = (size_t)(store->n_rows > 0 ? store->n_rows : 1);
    int64_t *rows = mallocCheck(n_rows * sizeof(int64_t));
    int *labels = mallocCheck(n_rows * sizeof(int));
    /* train rows first, then test rows; the order depends on the file only, not on the ranks */
    int n = 0;
    for (int split = SPLIT_TRAIN; split <= SPLIT_HOLDOUT; split++)
        if (train_splits & (1u << split)) n = append_split(store, split, rows, labels, n);
    d->n_train = n;
    if (!(train_splits & (1u << SPLIT_TEST))) n = append_split(store, SPLIT_TEST, rows, labels, n);
    d->n_test = n - d->n_train;
    d->train_rows = rows;
    d->train_labels = labels;
    d->test_rows = rows + d->n_train;
    d->test_labels = labels + d->n_train;
    d->read_rows = store_source_read;
    d->ctx = store;
    d->features = store->params;
    memcpy(d->band_mean, store->band_mean, sizeof d->band_mean);
    memcpy(d->band_std, store->band_std, sizeof d->band_std);
}

void train_data_free(train_data *d) {
    free((void *)d->train_rows);
    free((void *)d->train_labels);
    memset(d, 0, sizeof *d);
}

int train_run(const train_config *cfg, feature_store *store, MPI_Comm comm,
              const char *checkpoint_dir, int resume, epoch_callback cb, void *user,
              cnn_model *best) {
    train_data d;
    train_data_from_store(&d, store);
    int rc = train_run_data(cfg, &d, comm, checkpoint_dir, resume, cb, user, best);
    train_data_free(&d);
    return rc;
}
