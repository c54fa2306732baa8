/* Feature-file reader speed: random batches of rows (as training reads them) with
 * store_read_rows, rows per second. bench/run_features.sh compares it with h5py reading the same
 * rows (sorted fancy indexing) in the same run.
 *   bench_store FEATURES.h5 BATCH N_BATCHES */
#include <stdio.h>
#include <stdlib.h>

#include "adfd/store.h"
#include "adfd/util.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_store FEATURES.h5 BATCH N_BATCHES\n");
        return 2;
    }
    feature_store s;
    if (store_open(&s, argv[1]) != 0) {
        fprintf(stderr, "%s\n", adfd_error());
        return 1;
    }
    int batch = atoi(argv[2]), n_batches = atoi(argv[3]);
    int64_t *rows = mallocCheck((size_t)batch * sizeof *rows);
    float *out = mallocCheck((size_t)batch * ADFD_N_MELS * ADFD_CHUNK_FRAMES * sizeof(float));
    double t0 = adfd_seconds(), checksum = 0.0;
    for (int b = 0; b < n_batches; b++) {
        for (int i = 0; i < batch; i++)
            rows[i] = (int64_t)(rng_hash64(7, (uint64_t)b, (uint64_t)i) % (uint64_t)s.n_rows);
        if (store_read_rows(&s, rows, batch, out) != 0) {
            fprintf(stderr, "%s\n", adfd_error());
            return 1;
        }
        checksum += out[0];
    }
    double seconds = adfd_seconds() - t0;
    printf("c store_read_rows: %.0f rows/s (batches of %d random rows of %lld)%s\n",
           (double)batch * n_batches / seconds, batch, (long long)s.n_rows,
           checksum == 12345.678 ? "." : "");
    store_close(&s);
    free(rows);
    free(out);
    return 0;
}
