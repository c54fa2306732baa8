/* CNN speed, one thread: training samples/s (forward, backward, allreduce on one rank, Adam) for
 * C in {1,4,16,32} x batch {32,128}, inference samples/s at batch 256 (model_predict), and the
 * nominal GFLOP/s against single-thread OpenBLAS SGEMM measured in the same run.
 * Output: one "key value..." line per measurement (bench/bench_cnn.sh joins it with PyTorch's).
 * Nominal FLOPs per sample: conv 2*9*C*126*78, linear 2*2*C*63*39; a training step counts
 * conv forward + weight gradient (2x, the first layer has no input gradient) and linear 3x.
 * Time is the process's CPU time (one thread), so other jobs on a shared machine do not distort
 * the figures; bench_cnn.py measures PyTorch the same way. */
#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adfd/adam.h"
#include "adfd/model.h"
#include "adfd/train.h"
#include "adfd/util.h"

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double sgemm_gflops(void) {
    int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n);
    float *c = calloc((size_t)n * n, sizeof(float));
    for (int i = 0; i < n * n; i++)
        a[i] = b[i] = rng_uniform(1, 0, (uint64_t)i);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 0.0;
    for (int r = 0; r < 5; r++) {
        double t0 = cpu_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double g = 2.0 * n * n * n / (cpu_seconds() - t0) / 1e9;
        if (g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    double seconds = argc > 1 ? atof(argv[1]) : 1.0; /* minimum time per measurement */
    int only_c = argc > 2 ? atoi(argv[2]) : 0;       /* optional: one channel count (profiling) */
    const char *only = argc > 3 ? argv[3] : "";      /* optional: "train" or "infer" (profiling) */
    int do_train = strcmp(only, "infer") != 0, do_infer = strcmp(only, "train") != 0;
    size_t S = (size_t)ADFD_N_MELS * ADFD_CHUNK_FRAMES;
    int channels[4] = {1, 4, 16, 32}, batches[2] = {32, 128};
    float *x = malloc(256 * S * sizeof(float));
    int labels[256];
    int64_t ids[256];
    for (int i = 0; i < 256; i++) {
        labels[i] = i % 2;
        ids[i] = i;
        for (size_t j = 0; j < S; j++)
            x[i * S + j] = 2.0f * rng_uniform(3, i, j) - 0.5f;
    }
    double peak = only_c ? 1.0 : sgemm_gflops();
    printf("sgemm_gflops %.2f\n", peak);
    feature_params fp;
    feature_params_preset(&fp, "seed");
    for (int ci = 0; ci < 4; ci++) {
        int C = channels[ci];
        if (only_c && C != only_c) continue;
        double conv = 2.0 * 9 * C * ADFD_CONV_H * ADFD_CONV_W;
        double lin = 2.0 * 2 * C * ADFD_POOL_H * ADFD_POOL_W;
        for (int bi = 0; bi < 2 && do_train; bi++) {
            int B = batches[bi];
            cnn_model m;
            model_create(&m, C, 0.2f, &fp, 1);
            adam_state adam;
            adam_init(&adam, m.n_params, 1e-4);
            train_workspace *w = train_workspace_create(B, C);
            train_step_batch(&m, &adam, w, x, labels, ids, B, B, 1, 9, MPI_COMM_SELF);
            long steps = 0;
            double t0 = cpu_seconds(), dt;
            do {
                train_step_batch(&m, &adam, w, x, labels, ids, B, B, 1, 9, MPI_COMM_SELF);
                steps++;
            } while ((dt = cpu_seconds() - t0) < seconds);
            double sps = steps * B / dt;
            double gf = sps * (2.0 * conv + 3.0 * lin) / 1e9;
            printf("train C=%d B=%d samples_per_s %.1f gflops %.2f peak_fraction %.3f\n", C, B, sps,
                   gf, gf / peak);
            fflush(stdout);
            train_workspace_free(w);
            adam_free(&adam);
            model_free(&m);
        }
        if (!do_infer) continue;
        cnn_model m;
        model_create(&m, C, 0.2f, &fp, 1);
        float p[256];
        model_predict(&m, x, 256, p);
        long reps = 0;
        double t0 = cpu_seconds(), dt;
        do {
            model_predict(&m, x, 256, p);
            reps++;
        } while ((dt = cpu_seconds() - t0) < seconds);
        double sps = reps * 256.0 / dt;
        printf("infer C=%d B=256 samples_per_s %.1f gflops %.2f peak_fraction %.3f\n", C, sps,
               sps * (conv + lin) / 1e9, sps * (conv + lin) / 1e9 / peak);
        fflush(stdout);
        model_free(&m);
    }
    free(x);
    MPI_Finalize();
    return 0;
}
