/* adfd grid: MPI grid search. The world is split into G groups; configurations are dealt to the
 * groups by expected cost; each group trains its configurations one after another with
 * train_run (data-parallel inside the group). Group leaders append every epoch to their own file
 * in the run folder; world rank 0 (itself the leader of group 0) merges those files into
 * grid.tsv and summary.txt after every epoch it sees, so no message between groups can
 * deadlock. At the end rank 0 picks the best configuration by test loss, chooses its threshold
 * on the test split, saves best.h5 and evaluates the held-out split (docs/grid.md). */
#include <getopt.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adfd/cli.h"
#include "adfd/dataset.h"
#include "adfd/evaluate.h"
#include "adfd/gridrun.h"
#include "adfd/preempt.h"
#include "adfd/train.h"

enum { GRID_EXIT_PREEMPTED = 3 };

static void usage(void) {
    printf(
        "Usage: mpiexec -n P adfd grid --features F --config configs/X.ini --out runs/NAME "
        "[options]\n\n"
        "Trains every configuration of the grid (early stopping on the test split), picks the\n"
        "best by test loss, saves it as runs/NAME/best.h5 with a threshold chosen on the test\n"
        "split, and evaluates the held-out split into runs/NAME/holdout and runs/NAME/report.\n\n"
        "Options:\n"
        "  --features F       feature file from 'adfd prepare'\n"
        "  --config FILE      grid configuration (.ini, see configs/seed-grid.ini)\n"
        "  --out DIR          run folder (grid.tsv, summary.txt, best.h5, ...)\n"
        "  --groups G         split the P ranks into G groups of P/G (default P: one rank per\n"
        "                     configuration at a time; 1: all ranks train each configuration)\n"
        "  --resume           continue a killed or preempted run in DIR\n"
        "  --threshold M      eer (default) or youden, chosen on the test split's clip scores\n"
        "  --task-id I --num-tasks N\n"
        "                     train only slice I of N (Slurm job array); afterwards run once\n"
        "                     without them and with --resume to choose and evaluate\n"
        "  --bootstrap N      bootstrap replicates for the held-out intervals (default 1000)\n"
        "  --no-plots         skip the PNG report (gnuplot not needed)\n"
        "  -h, --help         this help\n\n"
        "Exit status: 0 success, 1 runtime error, 2 usage error, 3 preempted (checkpointed;\n"
        "rerun with --resume).\n");
}

typedef struct {
    const char *features, *config, *out, *threshold;
    int groups, resume, task_id, num_tasks, bootstrap, plots;
} grid_options;

/* ---------------- progress on world rank 0 ---------------- */

typedef struct {
    const char *dir;
    const grid_config *grid;
    double t0, work_at_start;
    int started;
    int rows_shown, done_shown; /* what the last progress line reported */
} progress;

static void format_duration(char *out, size_t size, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else
        snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
}

/* Merges the epoch files into grid.tsv / summary.txt and, when an epoch or a configuration
 * finished since the last call, prints one progress line. Work is measured in channel-epochs
 * (the cost model of the dealing). */
static void progress_update(progress *p) {
    grid_state st;
    ADFD_CHECK(gridrun_collect(p->dir, p->grid, &st) == 0, "%s", adfd_error());
    if (p->started && st.n_rows == p->rows_shown && st.n_done == p->done_shown) {
        grid_state_free(&st);
        return;
    }
    p->rows_shown = st.n_rows, p->done_shown = st.n_done;
    ADFD_CHECK(gridrun_write_tables(p->dir, p->grid, &st) == 0, "%s", adfd_error());
    double total = 0, done = 0;
    for (int i = 0; i < p->grid->n; i++) {
        double full = grid_config_cost(&p->grid->configs[i], 1);
        total += full;
        if (st.done[i]) done += full;
    }
    for (int i = 0; i < st.n_rows; i++)
        if (!st.done[st.rows[i].config]) done += p->grid->configs[st.rows[i].config].channels;
    if (!p->started) p->work_at_start = done, p->started = 1;
    char elapsed[32], eta[32] = "unknown";
    double seconds = adfd_seconds() - p->t0;
    format_duration(elapsed, sizeof elapsed, seconds);
    if (done > p->work_at_start)
        format_duration(eta, sizeof eta, seconds * (total - done) / (done - p->work_at_start));
    if (st.best >= 0)
        log0("grid: %d/%d configurations done, best c%03d (test loss %.4f, AUC %.4f, epoch %d), "
             "elapsed %s, ETA %s\n",
             st.n_done, p->grid->n, st.best, st.best_loss, st.best_auc, st.best_epoch, elapsed,
             eta);
    else
        log0("grid: %d/%d configurations done, elapsed %s, ETA %s\n", st.n_done, p->grid->n,
             elapsed, eta);
    grid_state_free(&st);
}

/* ---------------- training ---------------- */

typedef struct {
    char epoch_file[4352];
    int config;
    progress *progress; /* world rank 0 only */
} epoch_context;

/* Test hook: ADFD_TEST_KILL_AFTER_EPOCHS=N makes the process die like kill -9 after it has
 * recorded N epochs, to test --resume. */
static int kill_after_epochs(void) {
    const char *v = getenv("ADFD_TEST_KILL_AFTER_EPOCHS");
    return v ? atoi(v) : 0;
}

static void on_epoch(const epoch_result *r, void *user) {
    static int epochs_seen = 0;
    epoch_context *ctx = user;
    ADFD_CHECK(gridrun_append_epoch(ctx->epoch_file, ctx->config, r) == 0, "%s", adfd_error());
    if (ctx->progress) progress_update(ctx->progress);
    if (++epochs_seen == kill_after_epochs()) {
        fprintf(stderr, "adfd grid: ADFD_TEST_KILL_AFTER_EPOCHS reached, dying\n");
        _Exit(137);
    }
}

/* Trains this group's configurations; returns 1 if preempted. */
static int train_group(const grid_options *o, const grid_config *g, feature_store *store,
                       MPI_Comm group, int color, const int *mine, int n_mine, progress *prog) {
    int group_rank;
    MPI_Comm_rank(group, &group_rank);
    epoch_context ctx = {.progress = prog};
    char name[64];
    if (o->num_tasks)
        snprintf(name, sizeof name, "epochs/task%03d-group%03d.tsv", o->task_id, color);
    else
        snprintf(name, sizeof name, "epochs/group%03d.tsv", color);
    path_join(ctx.epoch_file, sizeof ctx.epoch_file, o->out, name);
    for (int j = 0; j < n_mine; j++) {
        int i = mine[j];
        char model_path[4352], ckpt_dir[4352];
        gridrun_model_path(o->out, i, model_path, sizeof model_path);
        gridrun_checkpoint_dir(o->out, i, ckpt_dir, sizeof ckpt_dir);
        int done = group_rank == 0 && path_exists(model_path);
        ADFD_MPI_CHECK(MPI_Bcast(&done, 1, MPI_INT, 0, group));
        if (done) continue; /* finished in an earlier run (--resume) */
        const train_config *c = &g->configs[i];
        log_all("grid: group %d trains c%03d (channels %d, lr %g, batch %d)\n", color, i,
                c->channels, c->lr, c->batch);
        ctx.config = i;
        cnn_model best;
        memset(&best, 0, sizeof best);
        int rc = train_run(c, store, group, ckpt_dir, o->resume, on_epoch, &ctx, &best);
        if (rc == TRAIN_PREEMPTED) return 1;
        ADFD_CHECK(rc == TRAIN_DONE, "c%03d: %s", i, adfd_error());
        if (group_rank == 0) ADFD_CHECK(model_save(&best, model_path) == 0, "%s", adfd_error());
        model_free(&best);
        ADFD_MPI_CHECK(MPI_Barrier(group)); /* the model exists before the group moves on */
        if (prog) progress_update(prog);
    }
    return 0;
}

/* Waits until every group is done and returns 1 if any was preempted. The wait sleeps between
 * tests instead of spinning in a blocking collective, so a finished rank leaves its core to the
 * ranks still training on the node; meanwhile rank 0 keeps merging the other groups' epochs. */
static int wait_for_all_groups(int preempted, progress *prog) {
    int any = 0, complete = 0;
    MPI_Request request;
    ADFD_MPI_CHECK(MPI_Iallreduce(&preempted, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &request));
    const struct timespec pause = {0, 50 * 1000 * 1000};
    double last_merge = adfd_seconds();
    for (;;) {
        ADFD_MPI_CHECK(MPI_Test(&request, &complete, MPI_STATUS_IGNORE));
        if (complete) return any;
        nanosleep(&pause, NULL);
        if (prog && adfd_seconds() - last_merge > 2.0) {
            progress_update(prog);
            last_merge = adfd_seconds();
        }
    }
}

/* ---------------- run folder, final choice and held-out evaluation (rank 0) ---------------- */

static char *read_whole_file(const char *path, long *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    *size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = mallocCheck((size_t)*size + 1);
    if (fread(text, 1, (size_t)*size, fp) != (size_t)*size) *size = -1;
    fclose(fp);
    return text;
}

static int prepare_run_dir(const grid_options *o) {
    char copy_path[4352], sub[4352];
    path_join(copy_path, sizeof copy_path, o->out, "grid.ini");
    long n_config, n_copy = -2;
    char *config = read_whole_file(o->config, &n_config);
    if (!config || n_config < 0) {
        free(config);
        return adfd_fail("%s: cannot read the configuration", o->config);
    }
    char *copy = read_whole_file(copy_path, &n_copy);
    int rc = 0;
    if (copy) {
        if (!o->resume && !o->num_tasks)
            rc = adfd_fail("%s already holds a grid run: add --resume to continue it, or choose "
                           "another --out",
                           o->out);
        else if (n_copy != n_config || memcmp(copy, config, (size_t)n_config))
            rc = adfd_fail("%s: --resume with a configuration that differs from the run's own "
                           "grid.ini",
                           o->config);
    } else {
        const char *subdirs[3] = {"epochs", "models", "checkpoints"};
        for (int k = 0; k < 3 && rc == 0; k++) {
            path_join(sub, sizeof sub, o->out, subdirs[k]);
            rc = make_dirs(sub);
        }
        atomic_file af;
        if (rc == 0 && (rc = atomic_file_open(&af, copy_path)) == 0) {
            fwrite(config, 1, (size_t)n_config, af.fp);
            rc = atomic_file_commit(&af);
        }
    }
    free(config);
    free(copy);
    return rc;
}

static int split_has_clips(const feature_store *s, int split) {
    for (int c = 0; c < s->n_clips; c++)
        if (s->clip_split[c] == split) return 1;
    return 0;
}

/* Loads the best configuration's model, chooses its threshold on the test split's clip scores,
 * saves it as best_path and writes the test split's outputs to OUT/test. m gets the metadata. */
static int save_best_model(const grid_options *o, feature_store *store, int best,
                           const char *best_path, cnn_model *model, eval_metrics *m) {
    char path[4352];
    gridrun_model_path(o->out, best, path, sizeof path);
    if (model_load(model, path)) return -1;
    split_scores test;
    double threshold;
    if (evaluate_split(store, model, SPLIT_TEST, model->aggregate, &test)) return -1;
    int rc = evaluate_choose_threshold(&test, o->threshold, &threshold);
    if (rc == 0) {
        model->threshold = (float)threshold;
        snprintf(model->threshold_method, sizeof model->threshold_method,
                 "%s on test split (clip level)", o->threshold);
        *m = (eval_metrics){.split = "test",
                            .model_path = best_path,
                            .features_path = o->features,
                            .threshold = model->threshold,
                            .threshold_method = model->threshold_method,
                            .aggregate = model->aggregate};
        path_join(path, sizeof path, o->out, "test");
        rc = model_save(model, best_path);
        if (rc == 0) rc = evaluate_metrics(&test, o->bootstrap, 1, m);
        if (rc == 0) rc = evaluate_write(path, store, &test, m, 0);
    }
    split_scores_free(&test);
    return rc;
}

/* The held-out split's outputs in OUT/holdout, its plots in report_dir, the table on stdout. */
static int evaluate_holdout(const grid_options *o, feature_store *store, cnn_model *model,
                            eval_metrics *m, const char *report_dir) {
    split_scores held;
    char dir[4352], title[128];
    if (evaluate_split(store, model, SPLIT_HOLDOUT, model->aggregate, &held)) return -1;
    m->split = "holdout";
    path_join(dir, sizeof dir, o->out, "holdout");
    int rc = evaluate_metrics(&held, o->bootstrap, 1, m);
    if (rc == 0) rc = evaluate_write(dir, store, &held, m, 0);
    if (rc == 0 && o->plots) {
        snprintf(title, sizeof title, "held-out clips, threshold %.4g (from the test split)",
                 m->threshold);
        if (report_plot_roc(report_dir, held.clip_score, held.clip_label, held.n_clips,
                            held.chunk_score, held.chunk_label, held.n_chunks, m->threshold,
                            "held-out split") ||
            report_plot_confusion(report_dir, "confusion", &m->clip.cm, title) ||
            report_plot_score_histograms(report_dir, held.clip_score, held.clip_label, held.n_clips,
                                         m->threshold, title))
            rc = -1;
    }
    if (rc == 0) {
        printf("\nHeld-out evaluation (%s):\n", dir);
        report_print_table(stdout, m);
    }
    split_scores_free(&held);
    return rc;
}

/* After every configuration finished: grid.tsv, the choice, best.h5, the evaluations. */
static int finish_grid(const grid_options *o, const grid_config *g, feature_store *store) {
    grid_state st;
    if (gridrun_collect(o->out, g, &st) || gridrun_write_tables(o->out, g, &st)) return -1;
    cnn_model model;
    memset(&model, 0, sizeof model);
    eval_metrics m;
    char best_path[4352], report_dir[4352];
    path_join(best_path, sizeof best_path, o->out, "best.h5");
    path_join(report_dir, sizeof report_dir, o->out, "report");
    int rc = 0;
    if (st.n_done < g->n)
        rc = adfd_fail("%s: only %d of %d configurations finished", o->out, st.n_done, g->n);
    if (rc == 0) rc = save_best_model(o, store, st.best, best_path, &model, &m);
    if (rc == 0 && o->plots) {
        rc = make_dirs(report_dir);
        if (rc == 0) rc = report_plot_learning_curves(report_dir, st.rows, st.n_rows, st.best);
    }
    if (rc == 0) {
        const train_config *c = &g->configs[st.best];
        printf("Best configuration c%03d: channels %d, lr %g, batch %d, dropout %g; best epoch %d, "
               "test loss %.6f, test AUC %.4f\n",
               st.best, c->channels, c->lr, c->batch, c->dropout, st.best_epoch, st.best_loss,
               st.best_auc);
        printf("Model: %s (threshold %.6g, %s)\n", best_path, model.threshold,
               model.threshold_method);
        if (split_has_clips(store, SPLIT_HOLDOUT))
            rc = evaluate_holdout(o, store, &model, &m, report_dir);
        else
            printf("No held-out clips in %s: nothing more to evaluate.\n", o->features);
    }
    if (rc == 0 && o->plots) printf("Report: %s/\n", report_dir);
    model_free(&model);
    grid_state_free(&st);
    return rc;
}

/* ---------------- the command ---------------- */

static int parse_options(int argc, char **argv, grid_options *o, int *help) {
    static const struct option long_options[] = {{"features", required_argument, 0, 'f'},
                                                 {"config", required_argument, 0, 'c'},
                                                 {"out", required_argument, 0, 'o'},
                                                 {"groups", required_argument, 0, 'g'},
                                                 {"resume", no_argument, 0, 'r'},
                                                 {"threshold", required_argument, 0, 't'},
                                                 {"task-id", required_argument, 0, 'i'},
                                                 {"num-tasks", required_argument, 0, 'n'},
                                                 {"bootstrap", required_argument, 0, 'b'},
                                                 {"no-plots", no_argument, 0, 'P'},
                                                 {"help", no_argument, 0, 'h'},
                                                 {0, 0, 0, 0}};
    *o = (grid_options){.threshold = "eer", .task_id = -1, .bootstrap = 1000, .plots = 1};
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'f':
            o->features = optarg;
            break;
        case 'c':
            o->config = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'r':
            o->resume = 1;
            break;
        case 'P':
            o->plots = 0;
            break;
        case 'g':
            if (cli_parse_int(optarg, &o->groups) || o->groups < 1)
                return cli_usage_error("grid", "--groups needs a positive integer");
            break;
        case 't':
            if (strcmp(optarg, "eer") && strcmp(optarg, "youden"))
                return cli_usage_error("grid", "--threshold must be eer or youden");
            o->threshold = optarg;
            break;
        case 'i':
            if (cli_parse_int(optarg, &o->task_id) || o->task_id < 0)
                return cli_usage_error("grid", "--task-id needs an integer >= 0");
            break;
        case 'n':
            if (cli_parse_int(optarg, &o->num_tasks) || o->num_tasks < 1)
                return cli_usage_error("grid", "--num-tasks needs a positive integer");
            break;
        case 'b':
            if (cli_parse_int(optarg, &o->bootstrap) || o->bootstrap < 1)
                return cli_usage_error("grid", "--bootstrap needs a positive integer");
            break;
        case 'h':
            if (adfd_rank() == 0) usage();
            *help = 1;
            return 0;
        default:
            return cli_usage_error("grid", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("grid", "unexpected argument '%s'", argv[optind]);
    if (!o->features || !o->config || !o->out)
        return cli_usage_error("grid", "--features, --config and --out are required");
    if ((o->task_id >= 0) != (o->num_tasks > 0))
        return cli_usage_error("grid", "--task-id and --num-tasks go together");
    if (o->num_tasks && o->task_id >= o->num_tasks)
        return cli_usage_error("grid", "--task-id %d is not below --num-tasks %d", o->task_id,
                               o->num_tasks);
    int world = adfd_world_size();
    if (!o->groups) o->groups = world;
    if (world % o->groups)
        return cli_usage_error("grid",
                               "the world size %d is not divisible by --groups %d (every group "
                               "needs the same number of ranks)",
                               world, o->groups);
    return 0;
}

/* The same status on every rank: rank 0's, or any rank's failure when all ranks ran `rc`. */
static int agree(int rc, int from_rank0_only) {
    int status = rc ? ADFD_EXIT_FAILURE : ADFD_EXIT_OK;
    if (from_rank0_only)
        ADFD_MPI_CHECK(MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD));
    else
        ADFD_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &status, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (status && rc) cli_runtime_error("grid");
    return status;
}

int cmd_grid(int argc, char **argv) {
    grid_options o;
    int help = 0, parsed = parse_options(argc, argv, &o, &help);
    if (parsed || help) return parsed; /* every rank parsed the same arguments */
    int rank = adfd_rank(), world = adfd_world_size();
    grid_config g;
    if (grid_config_load(&g, o.config)) return cli_runtime_error("grid"); /* same on all ranks */
    if (agree(rank == 0 ? prepare_run_dir(&o) : 0, 1)) {
        grid_config_free(&g);
        return ADFD_EXIT_FAILURE;
    }
    feature_store store;
    int opened = store_open(&store, o.features);
    if (agree(opened, 0)) {
        if (opened == 0) store_close(&store);
        grid_config_free(&g);
        return ADFD_EXIT_FAILURE;
    }
    preempt_install_handlers();

    /* Which configurations this run trains (all, or a Slurm task's slice), dealt to groups. */
    int *candidates = mallocCheck(sizeof(int) * (size_t)g.n);
    int n_candidates = g.n;
    for (int i = 0; i < g.n; i++)
        candidates[i] = i;
    if (o.num_tasks)
        n_candidates = grid_task_slice(g.configs, g.n, o.task_id, o.num_tasks, candidates);
    train_config *subset = mallocCheck(sizeof(train_config) * (size_t)(n_candidates + 1));
    int *owner = mallocCheck(sizeof(int) * (size_t)(n_candidates + 1));
    for (int j = 0; j < n_candidates; j++)
        subset[j] = g.configs[candidates[j]];
    grid_deal(subset, n_candidates, o.groups, owner);
    int per_group = world / o.groups, color = rank / per_group, n_mine = 0;
    int *mine = mallocCheck(sizeof(int) * (size_t)(n_candidates + 1));
    for (int j = 0; j < n_candidates; j++)
        if (owner[j] == color) mine[n_mine++] = candidates[j];
    MPI_Comm group;
    ADFD_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, rank, &group));
    log0("grid: %d configurations%s, %d groups of %d ranks, %lld feature rows\n", n_candidates,
         o.num_tasks ? " (this task's slice)" : "", o.groups, per_group, (long long)store.n_rows);

    progress prog = {.dir = o.out, .grid = &g, .t0 = adfd_seconds()};
    if (rank == 0) progress_update(&prog);
    int preempted =
        train_group(&o, &g, &store, group, color, mine, n_mine, rank == 0 ? &prog : NULL);
    preempted = wait_for_all_groups(preempted, rank == 0 ? &prog : NULL);
    MPI_Comm_free(&group);
    free(candidates), free(subset), free(owner), free(mine);
    int status;
    if (preempted) {
        log0("grid: preempted; checkpoints written, rerun with --resume\n");
        status = GRID_EXIT_PREEMPTED;
    } else if (o.num_tasks) {
        if (rank == 0) progress_update(&prog);
        log0("grid: task %d of %d done; when every task is done, run the same command without "
             "--task-id/--num-tasks and with --resume to choose and evaluate the best model\n",
             o.task_id, o.num_tasks);
        status = ADFD_EXIT_OK;
    } else {
        status = agree(rank == 0 ? finish_grid(&o, &g, &store) : 0, 1);
    }
    store_close(&store);
    grid_config_free(&g);
    return status;
}
