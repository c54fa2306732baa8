/* adfd train: one CNN configuration trained on the train split of a feature file, data-parallel
 * over every rank of MPI_COMM_WORLD; the best epoch (by test loss) is written as model.h5. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "adfd/cli.h"
#include "adfd/preempt.h"
#include "adfd/store.h"
#include "adfd/train.h"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: adfd train --features F --channels C --lr LR --batch B --epochs E\n"
            "                  [--dropout P] [--seed N] [--patience K | --no-early-stopping]\n"
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
            "  --checkpoint-dir D  checkpoint after every epoch and on SIGTERM/SIGUSR1\n"
            "  --resume            continue from the checkpoint in D\n"
            "  --out model.h5      the model file (HDF5, PyTorch state_dict names)\n"
            "\n"
            "Prints one line per epoch: epoch, train loss, test loss, test AUC (chunk level).\n"
            "Exit status: 0 done, 1 runtime error, 2 usage error, 3 preempted (checkpoint\n"
            "written; rerun with --resume).\n");
}

static void print_epoch(const epoch_result *r, void *user) {
    (void)user;
    printf("epoch %3d  train_loss %.6f  test_loss %.6f  test_auc %.4f  %.1f s%s%s\n", r->epoch,
           r->train_loss, r->test_loss, r->test_auc, r->seconds, r->is_best ? "  best" : "",
           r->stopped_early ? "  (early stop)" : "");
    fflush(stdout);
}

int cmd_train(int argc, char **argv) {
    enum { OPT_NO_EARLY = 1000, OPT_CKPT, OPT_RESUME, OPT_HELP };
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
                                            {"help", no_argument, 0, 'h'},
                                            {0, 0, 0, 0}};
    const char *features = NULL, *out = NULL, *ckpt_dir = NULL;
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
    if (no_early) cfg.patience = 0;
    if (resume && !ckpt_dir) return cli_usage_error("train", "--resume needs --checkpoint-dir");

    preempt_install_handlers();
    if (slurm_check_world_size() != 0) return cli_runtime_error("train");
    feature_store store;
    /* every rank opens the file itself and gets the same answer */
    if (store_open(&store, features) != 0) return cli_runtime_error("train");
    if (adfd_rank() == 0)
        printf("train: %s (%s preset), %d ranks, channels %d, lr %g, batch %d, epochs %d, "
               "dropout %g, seed %llu, patience %d\n",
               features, store.params.preset, adfd_world_size(), cfg.channels, cfg.lr, cfg.batch,
               cfg.max_epochs, cfg.dropout, (unsigned long long)cfg.seed, cfg.patience);
    cnn_model best;
    memset(&best, 0, sizeof best);
    int rc = train_run(&cfg, &store, MPI_COMM_WORLD, ckpt_dir, resume, print_epoch, NULL, &best);
    store_close(&store);
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
