/* train_run on a feature store: the store's train and test rows as a train_data source (kept
 * apart from train.c so that the trainer itself does not depend on the store). */
#include <stdlib.h>
#include <string.h>

#include "adfd/train.h"
#include "adfd/util.h"

static int store_source_read(void *ctx, const int64_t *rows, int n, float *out) {
    return store_read_rows(ctx, rows, n, out);
}

int train_run(const train_config *cfg, feature_store *store, MPI_Comm comm,
              const char *checkpoint_dir, int resume, epoch_callback cb, void *user,
              cnn_model *best) {
    train_data d;
    memset(&d, 0, sizeof d);
    int64_t *rows = mallocCheck((size_t)(store->n_rows > 0 ? store->n_rows : 1) * sizeof(int64_t));
    int *labels = mallocCheck((size_t)(store->n_rows > 0 ? store->n_rows : 1) * sizeof(int));
    /* train rows first, then test rows, both in file order */
    int n = 0;
    for (int split = SPLIT_TRAIN; split <= SPLIT_TEST; split++) {
        int first = n;
        for (int64_t r = 0; r < store->n_rows; r++) {
            int clip = store->row_clip[r];
            if (store->clip_split[clip] != split) continue;
            rows[n] = r;
            labels[n] = store->clip_label[clip];
            n++;
        }
        if (split == SPLIT_TRAIN)
            d.n_train = n - first;
        else
            d.n_test = n - first;
    }
    d.train_rows = rows;
    d.train_labels = labels;
    d.test_rows = rows + d.n_train;
    d.test_labels = labels + d.n_train;
    d.read_rows = store_source_read;
    d.ctx = store;
    d.features = store->params;
    memcpy(d.band_mean, store->band_mean, sizeof d.band_mean);
    memcpy(d.band_std, store->band_std, sizeof d.band_std);
    int rc = train_run_data(cfg, &d, comm, checkpoint_dir, resume, cb, user, best);
    free(rows);
    free(labels);
    return rc;
}
