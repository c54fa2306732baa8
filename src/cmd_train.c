/* adfd train: one CNN configuration trained on the train split of a feature file, data-parallel
 * over every rank of MPI_COMM_WORLD; the best epoch (by test loss) is written as model.h5.
 * With --train-splits train,test: trained on both for exactly E epochs, the last one written. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adfd/cli.h"
#include "adfd/dataset.h"
#include "adfd/preempt.h"
#include "adfd/store.h"
#include "adfd/train.h"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: adfd train --features F --channels C --lr LR --batch B --epochs E\n"
            "                  [--dropout P] [--seed N] [--patience K | --no-early-stopping]\n"
            "                  [--train-splits train|train,test]\n"
            "                  [--threshold T | --threshold-from MODEL.h5]\n"
            "                  [--checkpoint-dir DIR [--resume]] --out model.h5\n"
            "\n"
            "Trains the seed CNN (Conv2d(1,C,3)-BatchNorm-ReLU-MaxPool(2)-Dropout(P)-Linear) with\n"
            "Adam on the train split of F and evaluates the test split after every epoch; writes\n"
            "the weights of the epoch with the lowest test loss. Under mpiexec -n N the global\n"
            "batch B is split over the ranks: the result does not depend on N.\n"
            "\n"
            "  --features F        features.h5 written by 'adfd prepare'\n"
            "  --channels C        convolution channels (> 0)\n"
            "  --lr LR             Adam learning rate (> 0)\n"
            "  --batch B           global batch size (> 0, at most the train split)\n"
            "  --epochs E          maximum number of epochs (> 0)\n"
            "  --dropout P         dropout probability in [0, 1) (default 0.2)\n"
            "  --seed N            initialisation, data order and dropout seed (default 1)\n"
            "  --patience K        early stopping: from epoch K+1 on, stop when the last K test\n"
            "                      losses are all above the best (default 3)\n"
            "  --no-early-stopping train all E epochs (same as --patience 0)\n"
            "  --train-splits S    train (default) or train,test: train on the train and test\n"
            "                      rows together (train rows first, file order) for exactly E\n"
            "                      epochs and write the LAST epoch (nothing is held out to pick\n"
            "                      one or to stop early: implies --no-early-stopping, refuses\n"
            "                      --patience K > 0). The holdout split is never trained on.\n"
            "  --threshold T       decision threshold on P(spoof) stored in the model\n"
            "                      (default 0.5)\n"
            "  --threshold-from M  copy threshold and clip aggregation from model M (e.g. a\n"
            "                      grid's best.h5): after train,test the threshold is the one\n"
            "                      chosen on the earlier model's test scores\n"
            "  --checkpoint-dir D  checkpoint after every epoch and on SIGTERM/SIGUSR1\n"
            "  --resume            continue from the checkpoint in D\n"
            "  --out model.h5      the model file (HDF5, PyTorch state_dict names)\n"
            "\n"
            "Prints one line per epoch: epoch, train loss, test loss, test AUC (chunk level;\n"
            "n/a with --train-splits train,test).\n"
            "Exit status: 0 done, 1 runtime error, 2 usage error, 3 preempted (checkpoint\n"
            "written; rerun with --resume).\n");
}

static void print_epoch(const epoch_result *r, void *user) {
    (void)user;
    if (isnan(r->test_loss)) /* trained on the test split too: nothing to evaluate on */
        printf("epoch %3d  train_loss %.6f  test_loss n/a  test_auc n/a  %.1f s\n", r->epoch,
               r->train_loss, r->seconds);
    else
        printf("epoch %3d  train_loss %.6f  test_loss %.6f  test_auc %.4f  %.1f s%s%s\n", r->epoch,
               r->train_loss, r->test_loss, r->test_auc, r->seconds, r->is_best ? "  best" : "",
               r->stopped_early ? "  (early stop)" : "");
    fflush(stdout);
}

/* "train" or "train,test" (any order) into a mask of 1u << SPLIT_*; 0, or ADFD_EXIT_USAGE after
 * a message. The held-out split is refused: its speakers must stay unseen. */
static int parse_train_splits(const char *list, unsigned *mask) {
    char buf[64];
    if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf)
        return cli_usage_error("train", "--train-splits '%s' is too long", list);
    *mask = 0;
    for (char *save = NULL, *name = strtok_r(buf, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        int split = split_from_name(name);
        if (split == SPLIT_HOLDOUT)
            return cli_usage_error("train", "--train-splits: the holdout split is never trained "
                                            "on (its speakers must stay unseen)");
        if (split != SPLIT_TRAIN && split != SPLIT_TEST)
            return cli_usage_error("train", "--train-splits: unknown split '%s' (train, test)",
                                   name);
        *mask |= 1u << split;
    }
    if (!(*mask & (1u << SPLIT_TRAIN)))
        return cli_usage_error("train", "--train-splits must include train (got '%s')", list);
    return 0;
}

int cmd_train(int argc, char **argv) {
    enum { OPT_NO_EARLY = 1000, OPT_CKPT, OPT_RESUME, OPT_SPLITS, OPT_THR, OPT_THR_FROM };
    static const struct option options[] = {{"features", required_argument, 0, 'f'},
                                            {"channels", required_argument, 0, 'c'},
                                            {"lr", required_argument, 0, 'l'},
                                            {"batch", required_argument, 0, 'b'},
                                            {"epochs", required_argument, 0, 'e'},
                                            {"dropout", required_argument, 0, 'd'},
                                            {"seed", required_argument, 0, 's'},
                                            {"patience", required_argument, 0, 'p'},
                                            {"out", required_argument, 0, 'o'},
                                            {"no-early-stopping", no_argument, 0, OPT_NO_EARLY},
                                            {"checkpoint-dir", required_argument, 0, OPT_CKPT},
                                            {"resume", no_argument, 0, OPT_RESUME},
                                            {"train-splits", required_argument, 0, OPT_SPLITS},
                                            {"threshold", required_argument, 0, OPT_THR},
                                            {"threshold-from", required_argument, 0, OPT_THR_FROM},
                                            {"help", no_argument, 0, 'h'},
                                            {0, 0, 0, 0}};
    const char *features = NULL, *out = NULL, *ckpt_dir = NULL, *threshold_from = NULL;
    unsigned train_splits = 1u << SPLIT_TRAIN;
    double threshold = -1.0; /* < 0: not given */
    train_config cfg = {.channels = 0,
                        .lr = 0.0,
                        .batch = 0,
                        .max_epochs = 0,
                        .dropout = 0.2,
                        .seed = 1,
                        .patience = 3};
    int have_channels = 0, have_lr = 0, have_batch = 0, have_epochs = 0, resume = 0;
    int patience_set = 0, no_early = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        double v;
        int iv;
        switch (c) {
        case 'h':
            if (adfd_rank() == 0) usage(stdout);
            return ADFD_EXIT_OK;
        case 'f':
            features = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'c':
            if (cli_parse_int(optarg, &cfg.channels) || cfg.channels <= 0)
                return cli_usage_error("train", "--channels must be a positive integer");
            have_channels = 1;
            break;
        case 'l':
            if (cli_parse_double(optarg, &cfg.lr) || !(cfg.lr > 0.0))
                return cli_usage_error("train", "--lr must be a positive number");
            have_lr = 1;
            break;
        case 'b':
            if (cli_parse_int(optarg, &cfg.batch) || cfg.batch <= 0)
                return cli_usage_error("train", "--batch must be a positive integer");
            have_batch = 1;
            break;
        case 'e':
            if (cli_parse_int(optarg, &cfg.max_epochs) || cfg.max_epochs <= 0)
                return cli_usage_error("train", "--epochs must be a positive integer");
            have_epochs = 1;
            break;
        case 'd':
            if (cli_parse_double(optarg, &v) || !(v >= 0.0 && v < 1.0))
                return cli_usage_error("train", "--dropout must be in [0, 1)");
            cfg.dropout = v;
            break;
        case 's':
            if (cli_parse_int(optarg, &iv) || iv < 0)
                return cli_usage_error("train", "--seed must be a non-negative integer");
            cfg.seed = (uint64_t)iv;
            break;
        case 'p':
            if (cli_parse_int(optarg, &cfg.patience) || cfg.patience < 0)
                return cli_usage_error("train", "--patience must be a non-negative integer");
            patience_set = 1;
            break;
        case OPT_NO_EARLY:
            no_early = 1;
            break;
        case OPT_CKPT:
            ckpt_dir = optarg;
            break;
        case OPT_RESUME:
            resume = 1;
            break;
        case OPT_SPLITS:
            if (parse_train_splits(optarg, &train_splits) != 0) return ADFD_EXIT_USAGE;
            break;
        case OPT_THR:
            if (cli_parse_double(optarg, &threshold) || !(threshold >= 0.0 && threshold <= 1.0))
                return cli_usage_error("train", "--threshold must be in [0, 1]");
            break;
        case OPT_THR_FROM:
            threshold_from = optarg;
            break;
        default:
            return cli_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!features) return cli_usage_error("train", "--features is required");
    if (!out) return cli_usage_error("train", "--out is required");
    if (!have_channels || !have_lr || !have_batch || !have_epochs)
        return cli_usage_error("train", "--channels, --lr, --batch and --epochs are required");
    if (no_early && patience_set)
        return cli_usage_error("train", "--patience and --no-early-stopping exclude each other");
    if (threshold >= 0.0 && threshold_from)
        return cli_usage_error("train", "--threshold and --threshold-from exclude each other");
    cfg.keep_last = (train_splits & (1u << SPLIT_TEST)) != 0;
    if (cfg.keep_last && patience_set && cfg.patience > 0)
        return cli_usage_error("train", "--patience needs a test split to stop on: not with "
                                        "--train-splits train,test");
    if (no_early || cfg.keep_last) cfg.patience = 0;
    if (resume && !ckpt_dir) return cli_usage_error("train", "--resume needs --checkpoint-dir");

    preempt_install_handlers();
    if (slurm_check_world_size() != 0) return cli_runtime_error("train");
    feature_store store;
    /* every rank opens the file itself and gets the same answer */
    if (store_open(&store, features) != 0) return cli_runtime_error("train");
    cnn_model from;
    memset(&from, 0, sizeof from);
    /* read before training so that a bad file fails in seconds, not after the last epoch */
    if (threshold_from && model_load(&from, threshold_from) != 0) {
        store_close(&store);
        return cli_runtime_error("train");
    }
    train_data data;
    train_data_from_store_splits(&data, &store, train_splits);
    if (adfd_rank() == 0)
        printf("train: %s (%s preset), %d ranks, channels %d, lr %g, batch %d, epochs %d, "
               "dropout %g, seed %llu, patience %d; training on %s (%d samples)%s\n",
               features, store.params.preset, adfd_world_size(), cfg.channels, cfg.lr, cfg.batch,
               cfg.max_epochs, cfg.dropout, (unsigned long long)cfg.seed, cfg.patience,
               cfg.keep_last ? "train+test" : "train", data.n_train,
               cfg.keep_last ? ", keeping the last epoch" : "");
    cnn_model best;
    memset(&best, 0, sizeof best);
    int rc =
        train_run_data(&cfg, &data, MPI_COMM_WORLD, ckpt_dir, resume, print_epoch, NULL, &best);
    train_data_free(&data);
    store_close(&store);
    if (rc == TRAIN_DONE && threshold >= 0.0) {
        best.threshold = (float)threshold;
        snprintf(best.threshold_method, sizeof best.threshold_method, "given (--threshold)");
    } else if (rc == TRAIN_DONE && threshold_from) {
        best.threshold = from.threshold;
        snprintf(best.threshold_method, sizeof best.threshold_method, "copied: %.55s",
                 from.threshold_method);
        memcpy(best.aggregate, from.aggregate, sizeof best.aggregate);
        if (adfd_rank() == 0)
            printf("threshold %.6g (%s) and aggregate %s copied from %s\n", from.threshold,
                   from.threshold_method, from.aggregate, threshold_from);
    }
    if (threshold_from) model_free(&from);
    if (rc < 0) return cli_runtime_error("train");
    if (rc == TRAIN_PREEMPTED) {
        if (adfd_rank() == 0)
            fprintf(stderr, "adfd train: preempted; checkpoint in %s, rerun with --resume\n",
                    ckpt_dir ? ckpt_dir : "(none: no --checkpoint-dir)");
        return TRAIN_PREEMPTED;
    }
    int save_rc = 0;
    if (adfd_rank() == 0) save_rc = model_save(&best, out);
    MPI_Bcast(&save_rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    model_free(&best);
    if (save_rc != 0) return cli_runtime_error("train");
    if (adfd_rank() == 0) printf("wrote %s\n", out);
    return ADFD_EXIT_OK;
}
