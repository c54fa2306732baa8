/* Helper of the train tests (not a test by itself):
 *   cnn_tool features OUT N_TRAIN_CLIPS N_TEST_CLIPS CHUNKS [PRESET] [VERSION]
 *       a small synthetic features.h5 written through the real store writer; spoof clips carry
 *       extra energy in mel bands 20..39 so the CNN can learn; VERSION != 1 rewrites
 *       format_version afterwards (refusal tests).
 *   cnn_tool predict MODEL FEATURES OUT      model_predict on every row, one score per line
 *   cnn_tool train FEATURES OUT CKPT_DIR full|resume|preempt K
 *       train_run (C=2, lr 1e-3, batch 8, 3 epochs, dropout 0.2, seed 5, no early stopping);
 *       "preempt K" raises SIGUSR1 in this process at its K-th sample read (rank 0 only) and
 *       expects TRAIN_PREEMPTED; "resume" continues from CKPT_DIR. Collective under mpiexec. */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/preempt.h"
#include "adfd/store.h"
#include "adfd/train.h"
#include "adfd/util.h"

static int make_features(int argc, char **argv) {
    if (argc < 6) return 2;
    const char *out = argv[2], *preset = argc > 6 ? argv[6] : "seed";
    int n_train = atoi(argv[3]), n_test = atoi(argv[4]), per_clip = atoi(argv[5]);
    int version = argc > 7 ? atoi(argv[7]) : ADFD_STORE_VERSION;
    int n_clips = n_train + n_test, n_rows = n_clips * per_clip;
    feature_params p;
    if (feature_params_preset(&p, preset) != 0) return 2;
    size_t S = (size_t)ADFD_N_MELS * ADFD_CHUNK_FRAMES;
    float *features = mallocCheck((size_t)n_rows * S * sizeof(float));
    int32_t *clip = mallocCheck(n_rows * sizeof(int32_t));
    int32_t *offset = mallocCheck(n_rows * sizeof(int32_t));
    char **files = mallocCheck(n_clips * sizeof(char *));
    int32_t *speaker = mallocCheck(n_clips * 4), *label = mallocCheck(n_clips * 4);
    int32_t *split = mallocCheck(n_clips * 4);
    float *seconds = mallocCheck(n_clips * sizeof(float));
    int log_scale = !strcmp(preset, "default");
    for (int c = 0; c < n_clips; c++) {
        files[c] = mallocCheck(32);
        snprintf(files[c], 32, "clip%03d.wav", c);
        speaker[c] = c % 3;
        label[c] = (c * 7 + 3) % 5 < 2; /* both classes in each split */
        split[c] = c < n_train ? SPLIT_TRAIN : SPLIT_TEST;
        seconds[c] = (float)per_clip;
    }
    for (int r = 0; r < n_rows; r++) {
        int c = r / per_clip;
        clip[r] = c;
        offset[r] = (r % per_clip) * ADFD_CHUNK_FRAMES;
        for (size_t i = 0; i < S; i++) {
            int band = (int)(i / ADFD_CHUNK_FRAMES);
            float u = rng_uniform(77, (uint64_t)r, i);
            float v = u * u * 2.0f + (label[c] && band >= 20 && band < 40 ? 0.8f * u : 0.0f);
            features[(size_t)r * S + i] = log_scale ? 10.0f * log10f(v + 1e-3f) : v;
        }
    }
    float mean[ADFD_N_MELS], std[ADFD_N_MELS];
    for (int b = 0; b < ADFD_N_MELS; b++) {
        mean[b] = log_scale ? -3.0f + 0.01f * b : 0.0f;
        std[b] = log_scale ? 4.0f + 0.02f * b : 1.0f;
    }
    const char *speakers[3] = {"alice", "bob", "carol"};
    /* one listed skipped clip: the store writer (at the time of writing) fails on an empty list */
    const char *skipped[1] = {"unreadable.wav"};
    store_writer *w = store_writer_create(MPI_COMM_SELF, out, &p, "synthetic", "0000000000000000");
    store_writer_append(w, n_rows, features, clip, offset);
    store_tables t = {.n_clips = n_clips,
                      .file = (const char *const *)files,
                      .speaker = speaker,
                      .label = label,
                      .split = split,
                      .seconds = seconds,
                      .n_speakers = 3,
                      .speaker_name = speakers,
                      .band_mean = mean,
                      .band_std = std,
                      .n_skipped = 1,
                      .skipped = skipped};
    store_writer_finish(w, &t);
    if (version != ADFD_STORE_VERSION) {
        hid_t f = H5Fopen(out, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &version);
        H5Aclose(a);
        H5Fclose(f);
    }
    return 0;
}

static int predict(int argc, char **argv) {
    if (argc < 5) return 2;
    cnn_model m;
    feature_store s;
    if (model_load(&m, argv[2]) != 0 || store_open(&s, argv[3]) != 0) {
        fprintf(stderr, "%s\n", adfd_error());
        return 1;
    }
    size_t S = (size_t)ADFD_N_MELS * ADFD_CHUNK_FRAMES;
    float *x = mallocCheck((size_t)s.n_rows * S * sizeof(float));
    float *p = mallocCheck((size_t)s.n_rows * sizeof(float));
    int64_t *rows = mallocCheck((size_t)s.n_rows * sizeof(int64_t));
    for (int64_t r = 0; r < s.n_rows; r++)
        rows[r] = r;
    if (store_read_rows(&s, rows, (int)s.n_rows, x) != 0) return 1;
    model_predict(&m, x, (int)s.n_rows, p);
    FILE *fp = fopen(argv[4], "w");
    for (int64_t r = 0; r < s.n_rows; r++)
        fprintf(fp, "%.9g\n", p[r]);
    fclose(fp);
    return 0;
}

static int reads_until_signal = -1;
static int counting_read(void *ctx, const int64_t *rows, int n, float *out) {
    if (reads_until_signal > 0 && --reads_until_signal == 0) raise(SIGUSR1);
    return store_read_rows(ctx, rows, n, out);
}

static int train(int argc, char **argv) {
    if (argc < 6) return 2;
    const char *mode = argv[5];
    preempt_install_handlers();
    feature_store s;
    if (store_open(&s, argv[2]) != 0) return 1;
    train_data d;
    train_data_from_store(&d, &s);
    d.read_rows = counting_read;
    if (!strcmp(mode, "preempt") && adfd_rank() == 0) reads_until_signal = atoi(argv[6]);
    train_config cfg = {.channels = 2,
                        .lr = 1e-3,
                        .batch = 8,
                        .max_epochs = 3,
                        .dropout = 0.2,
                        .seed = 5,
                        .patience = 0};
    cnn_model best;
    memset(&best, 0, sizeof best);
    int rc = train_run_data(&cfg, &d, MPI_COMM_WORLD, argv[4], !strcmp(mode, "resume"), NULL, NULL,
                            &best);
    int want = !strcmp(mode, "preempt") ? TRAIN_PREEMPTED : TRAIN_DONE;
    if (rc != want) {
        fprintf(stderr, "train_run returned %d, expected %d: %s\n", rc, want, adfd_error());
        return 1;
    }
    if (rc == TRAIN_DONE && adfd_rank() == 0 && model_save(&best, argv[3]) != 0) return 1;
    train_data_free(&d);
    store_close(&s);
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rc = 2;
    if (argc > 1 && !strcmp(argv[1], "features")) rc = make_features(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "predict")) rc = predict(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "train")) rc = train(argc, argv);
    if (rc == 2) fprintf(stderr, "cnn_tool: bad arguments (see the comment in cnn_tool.c)\n");
    MPI_Finalize();
    return rc;
}
