/* adfd eval: scores one split of a feature file with a model at the model's stored threshold and
 * writes metrics.json, scores.csv, chunks.csv and plots (docs/eval.md). Rank 0 does the work;
 * other ranks of a larger world only wait for its exit status. */
#include <getopt.h>
#include <mpi.h>
#include <string.h>

#include "adfd/cli.h"
#include "adfd/dataset.h"
#include "adfd/evaluate.h"

static void usage(void) {
    printf("Usage: adfd eval --features F --model M --split test|holdout --out DIR [options]\n\n"
           "Scores every chunk of one split with the model, aggregates chunk scores into clip\n"
           "scores and reports, at clip and chunk level and at the model's stored threshold:\n"
           "ROC AUC and EER (ASVspoof algorithm) with 95%% bootstrap intervals, accuracy,\n"
           "sensitivity, specificity, PPV, NPV and the confusion matrix (spoof = positive).\n\n"
           "Options:\n"
           "  --features F      feature file from 'adfd prepare'\n"
           "  --model M         model file (.h5) from 'adfd train' or 'adfd grid'\n"
           "  --split S         test or holdout (train also accepted)\n"
           "  --out DIR         writes DIR/metrics.json, scores.csv, chunks.csv, roc.png,\n"
           "                    confusion.png, scores.png\n"
           "  --aggregate A     clip score from chunk scores: rms (seed), mean or max\n"
           "                    (default: the model's own)\n"
           "  --bootstrap N     bootstrap replicates for the intervals (default 1000)\n"
           "  --seed N          bootstrap seed (default 1)\n"
           "  --no-plots        do not draw PNGs (gnuplot not needed)\n"
           "  -h, --help        this help\n\n"
           "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

typedef struct {
    const char *features, *model, *out, *aggregate;
    int split, bootstrap, seed, plots;
} eval_options;

static int run_eval(const eval_options *o) {
    feature_store store;
    cnn_model model;
    memset(&model, 0, sizeof model);
    if (store_open(&store, o->features)) return -1;
    if (model_load(&model, o->model)) {
        store_close(&store);
        return -1;
    }
    const char *aggregate = o->aggregate ? o->aggregate : model.aggregate;
    split_scores scores;
    int rc = evaluate_split(&store, &model, o->split, aggregate, &scores);
    if (rc == 0) {
        eval_metrics m = {.split = split_name(o->split),
                          .model_path = o->model,
                          .features_path = o->features,
                          .threshold = model.threshold,
                          .threshold_method = model.threshold_method,
                          .aggregate = aggregate};
        rc = evaluate_metrics(&scores, o->bootstrap, (uint64_t)o->seed, &m);
        if (rc == 0) rc = evaluate_write(o->out, &store, &scores, &m, o->plots);
        if (rc == 0) {
            report_print_table(stdout, &m);
            printf("Written: %s/{metrics.json,scores.csv,chunks.csv%s}\n", o->out,
                   o->plots ? ",roc.png,confusion.png,scores.png" : "");
        }
        split_scores_free(&scores);
    }
    model_free(&model);
    store_close(&store);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    static const struct option long_options[] = {{"features", required_argument, 0, 'f'},
                                                 {"model", required_argument, 0, 'm'},
                                                 {"split", required_argument, 0, 's'},
                                                 {"out", required_argument, 0, 'o'},
                                                 {"aggregate", required_argument, 0, 'a'},
                                                 {"bootstrap", required_argument, 0, 'b'},
                                                 {"seed", required_argument, 0, 'S'},
                                                 {"no-plots", no_argument, 0, 'P'},
                                                 {"help", no_argument, 0, 'h'},
                                                 {0, 0, 0, 0}};
    eval_options o = {.split = -3, .bootstrap = 1000, .seed = 1, .plots = 1};
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'f':
            o.features = optarg;
            break;
        case 'm':
            o.model = optarg;
            break;
        case 'o':
            o.out = optarg;
            break;
        case 'a':
            if (strcmp(optarg, "rms") && strcmp(optarg, "mean") && strcmp(optarg, "max"))
                return cli_usage_error("eval", "--aggregate must be rms, mean or max");
            o.aggregate = optarg;
            break;
        case 's':
            o.split = split_from_name(optarg);
            if (o.split < 0)
                return cli_usage_error("eval", "--split must be test, holdout or train");
            break;
        case 'b':
            if (cli_parse_int(optarg, &o.bootstrap) || o.bootstrap < 1)
                return cli_usage_error("eval", "--bootstrap needs a positive integer");
            break;
        case 'S':
            if (cli_parse_int(optarg, &o.seed) || o.seed < 0)
                return cli_usage_error("eval", "--seed needs an integer >= 0");
            break;
        case 'P':
            o.plots = 0;
            break;
        case 'h':
            if (adfd_rank() == 0) usage();
            return ADFD_EXIT_OK;
        default:
            return cli_usage_error("eval", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!o.features || !o.model || !o.out || o.split == -3)
        return cli_usage_error("eval", "--features, --model, --split and --out are required");
    int status = ADFD_EXIT_OK;
    if (adfd_rank() == 0 && run_eval(&o)) status = cli_runtime_error("eval");
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return status;
}
