/* The trainer on an in-memory data source: the early-stopping rule and the AUC against hand
 * values; a run whose per-epoch results obey the rule, whose returned model is the best
 * epoch's (its test loss, recomputed with model_predict, equals the best epoch's test loss),
 * and whose loss goes down on a learnable task. */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/train.h"
#include "adfd/util.h"
#include "check.h"

enum { N_TRAIN = 40, N_TEST = 16, S = ADFD_N_MELS * ADFD_CHUNK_FRAMES };
static float *samples; /* [N_TRAIN + N_TEST][128][80] */
static int labels[N_TRAIN + N_TEST];

static int memory_read(void *ctx, const int64_t *rows, int n, float *out) {
    (void)ctx;
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * S, samples + rows[i] * S, S * sizeof(float));
    return 0;
}

static epoch_result history[64];
static int n_history;
static void record(const epoch_result *r, void *user) {
    (void)user;
    history[n_history++] = *r;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    /* the rule, by hand: losses 1.0 0.8 0.9 0.85 0.95 -> patience 3 stops after epoch 5 */
    double l[6] = {1.0, 0.8, 0.9, 0.85, 0.95, 0.7};
    CHECK(!train_should_stop(l, 3, 3), "too early: needs patience+1 epochs");
    CHECK(!train_should_stop(l, 4, 3), "epochs 2..4 include the best");
    CHECK(train_should_stop(l, 5, 3), "epochs 3..5 all above 0.8");
    CHECK(!train_should_stop(l, 6, 3), "epoch 6 is a new best");
    CHECK(!train_should_stop(l, 5, 0), "patience 0 never stops");
    CHECK(train_should_stop(l, 3, 1), "patience 1: epoch 3 above the best");
    /* AUC by hand: scores 0.1 0.4 0.35 0.8 labels 0 0 1 1 -> 3 of 4 pairs ordered = 0.75;
     * a tie between classes counts one half */
    float sc[4] = {0.1f, 0.4f, 0.35f, 0.8f}, tie[4] = {0.5f, 0.2f, 0.5f, 0.9f};
    int lab[4] = {0, 0, 1, 1};
    CHECK_CLOSE(train_auc(sc, lab, 4), 0.75, 1e-12, 0.0);
    CHECK_CLOSE(train_auc(tie, lab, 4), 0.875, 1e-12, 0.0);

    /* a learnable task: spoof samples carry a little energy in bands 30..33 */
    samples = malloc((size_t)(N_TRAIN + N_TEST) * S * sizeof(float));
    int64_t rows[N_TRAIN + N_TEST];
    for (int r = 0; r < N_TRAIN + N_TEST; r++) {
        rows[r] = r;
        labels[r] = (r * 5 + 1) % 3 == 0;
        for (int i = 0; i < S; i++) {
            int band = i / ADFD_CHUNK_FRAMES;
            float u = rng_uniform(11, (uint64_t)r, (uint64_t)i);
            samples[(size_t)r * S + i] =
                u + (labels[r] && band >= 30 && band < 34 ? 0.1f * u : 0.0f);
        }
    }
    train_data d;
    memset(&d, 0, sizeof d);
    d.n_train = N_TRAIN;
    d.n_test = N_TEST;
    d.train_rows = rows;
    d.test_rows = rows + N_TRAIN;
    d.train_labels = labels;
    d.test_labels = labels + N_TRAIN;
    d.read_rows = memory_read;
    feature_params_preset(&d.features, "default");
    for (int b = 0; b < ADFD_N_MELS; b++) {
        d.band_mean[b] = 0.6f;
        d.band_std[b] = 0.3f;
    }
    /* a weak signal and few samples: the test loss rises again and early stopping triggers */
    train_config cfg = {.channels = 3,
                        .lr = 4e-3,
                        .batch = 8,
                        .max_epochs = 12,
                        .dropout = 0.2,
                        .seed = 4,
                        .patience = 2};
    cnn_model best;
    memset(&best, 0, sizeof best);
    int rc = train_run_data(&cfg, &d, MPI_COMM_WORLD, NULL, 0, record, NULL, &best);
    CHECK(rc == TRAIN_DONE, "train_run_data returned %d: %s", rc, adfd_error());
    CHECK(n_history >= 3, "%d epochs", n_history);
    double losses[64], best_loss = INFINITY;
    int best_epoch = 0;
    for (int i = 0; i < n_history; i++) {
        losses[i] = history[i].test_loss;
        CHECK(history[i].epoch == i + 1, "epoch numbering");
        int stop = train_should_stop(losses, i + 1, cfg.patience);
        CHECK(history[i].stopped_early == stop, "epoch %d: stopped_early %d, rule says %d", i + 1,
              history[i].stopped_early, stop);
        CHECK(!stop || i == n_history - 1, "training went on after the stop");
        CHECK(history[i].is_best == (losses[i] < best_loss), "epoch %d is_best", i + 1);
        if (losses[i] < best_loss) {
            best_loss = losses[i];
            best_epoch = i + 1;
        }
        printf("epoch %d train %.4f test %.4f auc %.3f%s%s\n", i + 1, history[i].train_loss,
               history[i].test_loss, history[i].test_auc, history[i].is_best ? " best" : "",
               history[i].stopped_early ? " stop" : "");
    }
    CHECK(history[0].train_loss > history[best_epoch - 1].train_loss ||
              history[best_epoch - 1].test_auc > 0.9,
          "no learning");
    /* the returned model is the best epoch's: recompute its test loss */
    float p[N_TEST];
    model_predict(&best, samples + (size_t)N_TRAIN * S, N_TEST, p);
    double loss = 0.0;
    for (int i = 0; i < N_TEST; i++)
        loss -= log(labels[N_TRAIN + i] ? p[i] : 1.0 - p[i]);
    CHECK_CLOSE(loss / N_TEST, best_loss, 1e-4, 1e-6);
    CHECK(best.band_std[5] == 0.3f && !strcmp(best.features.preset, "default"),
          "normalisation and feature parameters copied into the model");
    model_free(&best);
    free(samples);
    int status = check_exit_status("test_train_unit");
    MPI_Finalize();
    return status;
}
