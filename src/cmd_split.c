/* adfd split: read a data set, assign speakers to train / test / holdout, print the table and
 * write split.csv. Runs on rank 0 (it is quick and its output is one file); other ranks, if
 * any, wait for its exit status. */
#include <getopt.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/cli.h"
#include "adfd/dataset.h"
#include "adfd/split.h"

static void print_help(void) {
    printf("Usage: adfd split --data DIR | --protocol FILE --audio DIR\n"
           "                  --holdout NAME [--holdout NAME ...] [--test-fraction F] [--seed N]\n"
           "                  --out split.csv\n\n"
           "Speaker-disjoint split of a data set into train / test / holdout.\n"
           "The held-out speakers are named by the user; every other speaker goes, with all of\n"
           "its clips, to train or to test so that test clips / (train + test clips) is as close\n"
           "as possible to F. The same seed gives the same split.\n\n"
           "Options:\n"
           "  --data DIR          In-the-Wild layout: DIR/meta.csv (file,speaker,label) + audio\n"
           "  --protocol FILE     ASVspoof 2019 LA protocol (SPEAKER FILE - SYSTEM KEY) ...\n"
           "  --audio DIR         ... with audio in DIR/flac/FILE.flac\n"
           "  --holdout NAME      a speaker kept out of training and model choice (repeatable)\n"
           "  --test-fraction F   target share of test clips among train+test (default 0.2)\n"
           "  --seed N            picks among equally good splits (default 0)\n"
           "  --out FILE          split.csv to write (file,speaker,label,split)\n"
           "  -h, --help          this help\n\n"
           "Prints per split: clips, real (bona fide), fake (spoof), speakers, share of clips.\n"
           "Exit status: 0 success, 1 bad input (message names the file and line), 2 usage.\n");
}

typedef struct {
    const char *data_dir, *protocol, *audio_dir, *out;
    const char **holdout;
    int n_holdout;
    double test_fraction;
    int seed;
} split_options;

/* Returns -1 after --help, ADFD_EXIT_USAGE on a usage error, 0 to run. */
static int parse_options(int argc, char **argv, split_options *o) {
    static const struct option long_options[] = {{"data", required_argument, 0, 'd'},
                                                 {"protocol", required_argument, 0, 'p'},
                                                 {"audio", required_argument, 0, 'a'},
                                                 {"holdout", required_argument, 0, 'H'},
                                                 {"test-fraction", required_argument, 0, 'f'},
                                                 {"seed", required_argument, 0, 's'},
                                                 {"out", required_argument, 0, 'o'},
                                                 {"help", no_argument, 0, 'h'},
                                                 {0, 0, 0, 0}};
    *o = (split_options){.test_fraction = 0.2};
    o->holdout = mallocCheck((size_t)argc * sizeof(char *));
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->data_dir = optarg;
            break;
        case 'p':
            o->protocol = optarg;
            break;
        case 'a':
            o->audio_dir = optarg;
            break;
        case 'H':
            o->holdout[o->n_holdout++] = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'h':
            if (adfd_rank() == 0) print_help();
            return -1;
        case 'f':
            if (cli_parse_double(optarg, &o->test_fraction) != 0 || !(o->test_fraction >= 0) ||
                o->test_fraction > 1)
                return cli_usage_error("split",
                                       "--test-fraction must be a number in [0, 1], "
                                       "not '%s'",
                                       optarg);
            break;
        case 's':
            if (cli_parse_int(optarg, &o->seed) != 0)
                return cli_usage_error("split", "--seed must be an integer, not '%s'", optarg);
            break;
        case ':':
            return cli_usage_error("split", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("split", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("split", "unexpected argument '%s'", argv[optind]);
    if (!o->data_dir == !o->protocol)
        return cli_usage_error("split", "give either --data DIR or --protocol FILE --audio DIR");
    if (o->protocol && !o->audio_dir)
        return cli_usage_error("split", "--protocol needs --audio DIR (audio in DIR/flac/)");
    if (o->data_dir && o->audio_dir)
        return cli_usage_error("split", "--audio goes with --protocol; with --data the audio "
                                        "is in DIR next to meta.csv");
    if (o->n_holdout == 0)
        return cli_usage_error("split", "name at least one held-out speaker with --holdout NAME");
    if (!o->out) return cli_usage_error("split", "missing --out FILE");
    return 0;
}

static int run_split(const split_options *o) {
    dataset ds;
    int rc = o->data_dir ? dataset_load_meta(&ds, o->data_dir)
                         : dataset_load_protocol(&ds, o->protocol, o->audio_dir);
    if (rc != 0) return cli_runtime_error("split");
    rc = split_assign(&ds, o->holdout, o->n_holdout, o->test_fraction, (uint64_t)(int64_t)o->seed);
    if (rc == 0) rc = split_write_csv(&ds, o->out);
    if (rc != 0) {
        dataset_free(&ds);
        return cli_runtime_error("split");
    }
    split_print_table(&ds, stdout);
    split_counts k[3];
    split_count(&ds, k);
    int pool = k[SPLIT_TRAIN].clips + k[SPLIT_TEST].clips;
    printf("test share of train+test: %.4f (target %.4f, seed %d)\n",
           pool ? (double)k[SPLIT_TEST].clips / pool : 0.0, o->test_fraction, o->seed);
    printf("wrote %s (%d clips)\n", o->out, ds.n_clips);
    for (int s = SPLIT_TRAIN; s <= SPLIT_TEST; s++) {
        if (k[s].clips == 0)
            fprintf(stderr, "adfd split: warning: the %s split is empty\n", split_name(s));
        else if (k[s].real == 0 || k[s].fake == 0)
            fprintf(stderr, "adfd split: warning: the %s split has only %s clips\n", split_name(s),
                    k[s].real ? "bona-fide" : "spoof");
    }
    dataset_free(&ds);
    return ADFD_EXIT_OK;
}

int cmd_split(int argc, char **argv) {
    split_options o;
    int status = parse_options(argc, argv, &o);
    if (status == -1)
        status = ADFD_EXIT_OK;
    else if (status == 0 && adfd_rank() == 0)
        status = run_split(&o);
    free(o.holdout);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return status;
}
