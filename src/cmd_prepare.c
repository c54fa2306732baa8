/* adfd prepare: options, checks that every rank agrees on, then the collective engine
 * (src/prepare.c) writing OUT.tmp.<pid of rank 0>, renamed to OUT by rank 0 when complete. */
#include <errno.h>
#include <getopt.h>
#include <mpi.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adfd/cli.h"
#include "adfd/dataset.h"
#include "adfd/prepare.h"

static void print_help(void) {
    printf("Usage: mpiexec -n P adfd prepare --data DIR | --protocol FILE --audio DIR\n"
           "                   --split split.csv --preset seed|default --out features.h5\n"
           "                   [--chunk-hop N] [--skip-bad] [--force] [--round-seconds S]\n\n"
           "Computes log-mel (default) or mel (seed) features of every clip into one HDF5 file,\n"
           "written in parallel by all MPI ranks. Any number of ranks writes the same rows.\n\n"
           "Options:\n"
           "  --data DIR        In-the-Wild layout: DIR/meta.csv (file,speaker,label) + audio\n"
           "  --protocol FILE   ASVspoof 2019 LA protocol (SPEAKER FILE - SYSTEM KEY) ...\n"
           "  --audio DIR       ... with audio in DIR/flac/FILE.flac\n"
           "  --split FILE      split.csv from 'adfd split' (file,speaker,label,split)\n"
           "  --preset NAME     seed: torchaudio MelSpectrogram(16000), no log, 80-frame chunks\n"
           "                    default: log-mel dB, n_fft 512, trimmed, overlapping chunks,\n"
           "                    train-split band mean/std stored for normalisation\n"
           "  --out FILE        the feature file (written as FILE.tmp.PID, renamed when complete)\n"
           "  --chunk-hop N     frames between chunk starts, 1..80 (seed 80, default 40)\n"
           "  --skip-bad        skip unreadable clips (listed on stderr and in /skipped)\n"
           "                    instead of stopping at the first one\n"
           "  --force           overwrite an existing FILE\n"
           "  --round-seconds S audio per rank processed between two collective writes\n"
           "                    (default 600; memory per rank grows with it)\n"
           "  -h, --help        this help\n\n"
           "Progress is shown on a terminal; a one-line summary is always printed.\n"
           "Exit status: 0 success, 1 runtime error (message names the file), 2 usage.\n"
           "See docs/prepare.md for the file layout.\n");
}

typedef struct {
    const char *data_dir, *protocol, *audio_dir, *split_csv, *preset, *out;
    int chunk_hop, skip_bad, force;
    double round_seconds;
} prepare_args;

/* -1 after --help, ADFD_EXIT_USAGE on a usage error, 0 to run. Same result on every rank. */
static int parse_options(int argc, char **argv, prepare_args *a) {
    static const struct option long_options[] = {{"data", required_argument, 0, 'd'},
                                                 {"protocol", required_argument, 0, 'p'},
                                                 {"audio", required_argument, 0, 'a'},
                                                 {"split", required_argument, 0, 's'},
                                                 {"preset", required_argument, 0, 'P'},
                                                 {"out", required_argument, 0, 'o'},
                                                 {"chunk-hop", required_argument, 0, 'c'},
                                                 {"skip-bad", no_argument, 0, 'S'},
                                                 {"force", no_argument, 0, 'f'},
                                                 {"round-seconds", required_argument, 0, 'r'},
                                                 {"help", no_argument, 0, 'h'},
                                                 {0, 0, 0, 0}};
    *a = (prepare_args){.round_seconds = 600.0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case 'd':
            a->data_dir = optarg;
            break;
        case 'p':
            a->protocol = optarg;
            break;
        case 'a':
            a->audio_dir = optarg;
            break;
        case 's':
            a->split_csv = optarg;
            break;
        case 'P':
            a->preset = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'S':
            a->skip_bad = 1;
            break;
        case 'f':
            a->force = 1;
            break;
        case 'c':
            if (cli_parse_int(optarg, &a->chunk_hop) != 0 || a->chunk_hop < 1 ||
                a->chunk_hop > ADFD_CHUNK_FRAMES)
                return cli_usage_error("prepare",
                                       "--chunk-hop must be an integer in 1..%d, not "
                                       "'%s'",
                                       ADFD_CHUNK_FRAMES, optarg);
            break;
        case 'r':
            if (cli_parse_double(optarg, &a->round_seconds) != 0 || !(a->round_seconds > 0))
                return cli_usage_error("prepare",
                                       "--round-seconds must be a positive number, "
                                       "not '%s'",
                                       optarg);
            break;
        case 'h':
            if (adfd_rank() == 0) print_help();
            return -1;
        case ':':
            return cli_usage_error("prepare", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("prepare", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("prepare", "unexpected argument '%s'", argv[optind]);
    if (!a->data_dir == !a->protocol)
        return cli_usage_error("prepare", "give either --data DIR or --protocol FILE --audio DIR");
    if (a->protocol && !a->audio_dir)
        return cli_usage_error("prepare", "--protocol needs --audio DIR (audio in DIR/flac/)");
    if (a->data_dir && a->audio_dir)
        return cli_usage_error("prepare", "--audio goes with --protocol; with --data the audio "
                                          "is in DIR next to meta.csv");
    if (!a->split_csv) return cli_usage_error("prepare", "missing --split FILE");
    if (!a->preset) return cli_usage_error("prepare", "missing --preset seed|default");
    if (strcmp(a->preset, "seed") && strcmp(a->preset, "default"))
        return cli_usage_error("prepare", "--preset must be seed or default, not '%s'", a->preset);
    if (!a->out) return cli_usage_error("prepare", "missing --out FILE");
    return 0;
}

/* Rank 0 removes the temporary file when the run is interrupted (Ctrl-C, scancel). */
static char interrupted_tmp[4096 + 32];

static void remove_tmp_and_reraise(int sig) {
    unlink(interrupted_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The output must not exist (unless --force) and its folder must. */
static int check_output(const prepare_args *a) {
    if (path_exists(a->out) && !a->force)
        return adfd_fail("%s already exists (use --force to overwrite it)", a->out);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", a->out);
    char *slash = strrchr(dir, '/');
    if (!slash) return 0;
    slash[slash == dir ? 1 : 0] = '\0';
    if (!path_is_dir(dir)) return adfd_fail("%s: folder %s does not exist", a->out, dir);
    return 0;
}

/* Loads the data set and the split on every rank; 0 on every rank or -1 on every rank. */
static int load_inputs(const prepare_args *a, dataset *ds) {
    int rc = a->data_dir ? dataset_load_meta(ds, a->data_dir)
                         : dataset_load_protocol(ds, a->protocol, a->audio_dir);
    if (rc == 0) {
        rc = dataset_apply_split(ds, a->split_csv);
        if (rc != 0) dataset_free(ds);
    }
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (worst != 0 && rc == 0) dataset_free(ds);
    if (worst != 0 && rc != 0 && adfd_rank() != 0) /* rank 0 prints its own via the CLI */
        log_all("adfd prepare: %s\n", adfd_error());
    return worst;
}

static int run_prepare(const prepare_args *a) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int status = 0;
    if (rank == 0) status = check_output(a);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status != 0) return cli_runtime_error("prepare");
    dataset ds;
    if (load_inputs(a, &ds) != 0) return cli_runtime_error("prepare");

    prepare_options o = {.skip_bad = a->skip_bad, .round_seconds_per_rank = a->round_seconds};
    feature_params_preset(&o.params, a->preset);
    if (a->chunk_hop) o.params.chunk_hop = a->chunk_hop;
    char tmp[4096 + 32];
    atomic_tmp_name(tmp, sizeof tmp, a->out);
    MPI_Bcast(tmp, sizeof tmp, MPI_CHAR, 0, MPI_COMM_WORLD); /* rank 0's pid names the file */
    o.tmp_path = tmp;
    o.progress = rank == 0 && isatty(STDERR_FILENO);
    if (rank == 0) {
        snprintf(interrupted_tmp, sizeof interrupted_tmp, "%s", tmp);
        signal(SIGINT, remove_tmp_and_reraise);
        signal(SIGTERM, remove_tmp_and_reraise);
    }
    prepare_summary s;
    prepare_run(&ds, &o, &s);
    MPI_Barrier(MPI_COMM_WORLD); /* every rank has closed the file */
    if (rank == 0) {
        if (rename(tmp, a->out) != 0) {
            status = adfd_fail("%s: cannot rename from %s: %s", a->out, tmp, strerror(errno));
            unlink(tmp);
        }
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status != 0) {
        dataset_free(&ds);
        return cli_runtime_error("prepare");
    }
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double rate = s.wall_seconds > 0 ? s.audio_seconds / s.wall_seconds : 0.0;
    log0("adfd prepare: %d clips (%d skipped), %lld rows, %.1f s (%.2f h) of audio in %.2f s "
         "(%.0f audio-s/s, %.0f per rank on %d ranks), preset %s -> %s "
         "[rank 0: headers %.2f s, decode %.2f s, features %.2f s, collective %.2f s, "
         "waiting for features %.2f s]\n",
         s.n_clips, s.n_skipped, (long long)s.n_rows, s.audio_seconds, s.audio_seconds / 3600.0,
         s.wall_seconds, rate, rate / size, size, a->preset, a->out, s.header_seconds,
         s.decode_seconds, s.feature_seconds, s.collective_seconds, s.wait_seconds);
    dataset_free(&ds);
    return ADFD_EXIT_OK;
}

int cmd_prepare(int argc, char **argv) {
    prepare_args a;
    int status = parse_options(argc, argv, &a);
    if (status == -1) return ADFD_EXIT_OK;
    if (status != 0) return status;
    return run_prepare(&a);
}
