#include "adfd/gridrun.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adfd/util.h"

int gridrun_append_epoch(const char *epoch_file, int config, const epoch_result *r) {
    char line[512];
    int n = snprintf(line, sizeof line, "%d\t%d\t%.17g\t%.17g\t%.17g\t%.6f\t%d\t%d\n", config,
                     r->epoch, r->train_loss, r->test_loss, r->test_auc, r->seconds, r->is_best,
                     r->stopped_early);
    int fd = open(epoch_file, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return adfd_fail("%s: %s", epoch_file, strerror(errno));
    ssize_t written = write(fd, line, (size_t)n);
    int closed = close(fd);
    if (written != n || closed != 0) return adfd_fail("%s: write failed", epoch_file);
    return 0;
}

void gridrun_model_path(const char *dir, int config, char *out, size_t out_size) {
    char name[64];
    snprintf(name, sizeof name, "models/c%03d.h5", config);
    path_join(out, out_size, dir, name);
}

void gridrun_checkpoint_dir(const char *dir, int config, char *out, size_t out_size) {
    char name[64];
    snprintf(name, sizeof name, "checkpoints/c%03d", config);
    path_join(out, out_size, dir, name);
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the complete lines of one epoch file to rows (index = config * max_epoch + epoch). */
static int read_epoch_file(const char *path, const grid_config *g, int max_epochs,
                           grid_epoch_row *slots, int *filled) {
    FILE *fp = fopen(path, "r");
    if (!fp) return adfd_fail("%s: %s", path, strerror(errno));
    char line[512];
    int line_no = 0;
    while (fgets(line, sizeof line, fp)) {
        line_no++;
        if (!strchr(line, '\n')) break; /* being written right now */
        grid_epoch_row row;
        memset(&row, 0, sizeof row);
        epoch_result *r = &row.r;
        if (sscanf(line, "%d %d %lf %lf %lf %lf %d %d", &row.config, &r->epoch, &r->train_loss,
                   &r->test_loss, &r->test_auc, &r->seconds, &r->is_best, &r->stopped_early) != 8 ||
            row.config < 0 || row.config >= g->n || r->epoch < 1 || r->epoch > max_epochs) {
            fclose(fp);
            return adfd_fail("%s:%d: damaged epoch line", path, line_no);
        }
        int slot = row.config * max_epochs + r->epoch - 1;
        slots[slot] = row;
        filled[slot] = 1;
    }
    fclose(fp);
    return 0;
}

static void choose_best(grid_state *st) {
    st->best = -1;
    st->best_loss = INFINITY;
    for (int i = 0; i < st->n_rows; i++) {
        const grid_epoch_row *row = &st->rows[i];
        /* strict <: ties go to the lower configuration, then the earlier epoch */
        if (st->done[row->config] && row->r.test_loss < st->best_loss) {
            st->best = row->config;
            st->best_epoch = row->r.epoch;
            st->best_loss = row->r.test_loss;
            st->best_auc = row->r.test_auc;
        }
    }
}

int gridrun_collect(const char *dir, const grid_config *g, grid_state *st) {
    memset(st, 0, sizeof *st);
    int max_epochs = 1;
    for (int i = 0; i < g->n; i++)
        if (g->configs[i].max_epochs > max_epochs) max_epochs = g->configs[i].max_epochs;
    size_t n_slots = (size_t)g->n * (size_t)max_epochs;
    grid_epoch_row *slots = mallocCheck(sizeof(grid_epoch_row) * n_slots);
    int *filled = callocCheck(n_slots, sizeof(int));
    char epochs_dir[4352];
    path_join(epochs_dir, sizeof epochs_dir, dir, "epochs");
    DIR *d = opendir(epochs_dir);
    char **names = NULL;
    int n_names = 0, rc = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (len < 5 || strcmp(e->d_name + len - 4, ".tsv")) continue;
            names = realloc(names, sizeof(char *) * (size_t)(n_names + 1));
            names[n_names++] = adfd_strdup(e->d_name);
        }
        closedir(d);
    }
    qsort(names, (size_t)n_names, sizeof(char *), compare_names);
    for (int i = 0; i < n_names && rc == 0; i++) {
        char path[4608];
        path_join(path, sizeof path, epochs_dir, names[i]);
        rc = read_epoch_file(path, g, max_epochs, slots, filled);
    }
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    st->done = callocCheck((size_t)g->n, sizeof(int));
    st->rows = mallocCheck(sizeof(grid_epoch_row) * (n_slots ? n_slots : 1));
    for (size_t s = 0; s < n_slots; s++)
        if (filled[s]) st->rows[st->n_rows++] = slots[s];
    free(slots);
    free(filled);
    for (int i = 0; i < g->n; i++) {
        char path[4352];
        gridrun_model_path(dir, i, path, sizeof path);
        st->done[i] = path_exists(path);
        st->n_done += st->done[i];
    }
    choose_best(st);
    if (rc) grid_state_free(st);
    return rc;
}

void grid_state_free(grid_state *st) {
    free(st->rows);
    free(st->done);
    memset(st, 0, sizeof *st);
}

static void describe_config(FILE *fp, const train_config *c) {
    fprintf(fp, "channels=%d lr=%g batch=%d max_epochs=%d dropout=%g seed=%llu patience=%d",
            c->channels, c->lr, c->batch, c->max_epochs, c->dropout, (unsigned long long)c->seed,
            c->patience);
}

static int write_grid_tsv(const char *dir, const grid_config *g, const grid_state *st) {
    char path[4352];
    path_join(path, sizeof path, dir, "grid.tsv");
    atomic_file af;
    if (atomic_file_open(&af, path)) return -1;
    fprintf(af.fp, "config\tchannels\tlr\tbatch\tmax_epochs\tdropout\tseed\tpatience\tepoch\t"
                   "train_loss\ttest_loss\ttest_auc\tseconds\tbest_so_far\tstopped_early\n");
    for (int i = 0; i < st->n_rows; i++) {
        const grid_epoch_row *row = &st->rows[i];
        const train_config *c = &g->configs[row->config];
        fprintf(af.fp, "c%03d\t%d\t%g\t%d\t%d\t%g\t%llu\t%d\t%d\t%.9g\t%.9g\t%.9g\t%.3f\t%d\t%d\n",
                row->config, c->channels, c->lr, c->batch, c->max_epochs, c->dropout,
                (unsigned long long)c->seed, c->patience, row->r.epoch, row->r.train_loss,
                row->r.test_loss, row->r.test_auc, row->r.seconds, row->r.is_best,
                row->r.stopped_early);
    }
    return atomic_file_commit(&af);
}

typedef struct {
    int config, best_epoch, epochs, stopped_early;
    double best_loss, best_auc, seconds;
} config_outcome;

static int compare_outcomes(const void *pa, const void *pb) {
    const config_outcome *a = pa, *b = pb;
    if (a->best_loss != b->best_loss) return a->best_loss < b->best_loss ? -1 : 1;
    return (a->config > b->config) - (a->config < b->config);
}

static int write_summary(const char *dir, const grid_config *g, const grid_state *st) {
    config_outcome *out = callocCheck((size_t)g->n, sizeof *out);
    for (int i = 0; i < g->n; i++)
        out[i] = (config_outcome){i, 0, 0, 0, INFINITY, NAN, 0};
    for (int i = 0; i < st->n_rows; i++) {
        const grid_epoch_row *row = &st->rows[i];
        config_outcome *o = &out[row->config];
        o->epochs++;
        o->seconds += row->r.seconds;
        o->stopped_early |= row->r.stopped_early;
        if (row->r.test_loss < o->best_loss) {
            o->best_loss = row->r.test_loss;
            o->best_auc = row->r.test_auc;
            o->best_epoch = row->r.epoch;
        }
    }
    char path[4352];
    path_join(path, sizeof path, dir, "summary.txt");
    atomic_file af;
    if (atomic_file_open(&af, path)) {
        free(out);
        return -1;
    }
    FILE *fp = af.fp;
    fprintf(fp, "Grid search: %d configurations, %d finished\n", g->n, st->n_done);
    if (st->best >= 0) {
        fprintf(fp, "Best configuration: c%03d (", st->best);
        describe_config(fp, &g->configs[st->best]);
        fprintf(fp, ")\n  best epoch %d, test loss %.6f, test AUC %.6f\n", st->best_epoch,
                st->best_loss, st->best_auc);
    }
    config_outcome *ranked = mallocCheck(sizeof *ranked * (size_t)g->n);
    memcpy(ranked, out, sizeof *ranked * (size_t)g->n);
    qsort(ranked, (size_t)g->n, sizeof *ranked, compare_outcomes);
    fprintf(fp, "\nRanking by best test loss:\n  rank config  best test loss  test AUC  "
                "best epoch  epochs  status\n");
    for (int k = 0; k < g->n; k++) {
        const config_outcome *o = &ranked[k];
        const char *status = st->done[o->config] ? (o->stopped_early ? "stopped early" : "finished")
                                                 : (o->epochs ? "running" : "not started");
        fprintf(fp, "  %4d c%03d  %14.6f  %8.4f  %10d  %6d  %s\n", k + 1, o->config, o->best_loss,
                o->best_auc, o->best_epoch, o->epochs, status);
    }
    fprintf(fp, "\nPer configuration:\n");
    for (int i = 0, r = 0; i < g->n; i++) {
        fprintf(fp, "\nc%03d: ", i);
        describe_config(fp, &g->configs[i]);
        fprintf(fp, "\n");
        for (; r < st->n_rows && st->rows[r].config == i; r++) {
            const epoch_result *e = &st->rows[r].r;
            fprintf(fp, "  Epoch %2d: train loss %.6f, test loss %.6f, test AUC %.6f, %.1f s%s%s\n",
                    e->epoch, e->train_loss, e->test_loss, e->test_auc, e->seconds,
                    e->is_best ? " *" : "", e->stopped_early ? "  (early stop)" : "");
        }
        if (out[i].epochs)
            fprintf(fp, "  -> best epoch %d: test loss %.6f, test AUC %.6f; %d epochs, %.1f s\n",
                    out[i].best_epoch, out[i].best_loss, out[i].best_auc, out[i].epochs,
                    out[i].seconds);
    }
    free(ranked);
    free(out);
    return atomic_file_commit(&af);
}

int gridrun_write_tables(const char *dir, const grid_config *g, const grid_state *st) {
    return write_grid_tsv(dir, g, st) || write_summary(dir, g, st) ? -1 : 0;
}
