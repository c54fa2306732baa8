#include "adfd/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adfd/util.h"

static void json_number(FILE *fp, double v) {
    if (isfinite(v))
        fprintf(fp, "%.9g", v);
    else
        fputs("null", fp);
}

static void json_level(FILE *fp, const metrics_summary *s) {
    fprintf(fp, "{\"n\": %d, \"n_spoof\": %d, \"n_bonafide\": %d,\n", s->n, s->n_spoof,
            s->n_bonafide);
    const struct {
        const char *name;
        double value;
    } fields[] = {{"auc", s->auc},
                  {"eer", s->eer},
                  {"eer_threshold", s->eer_at.threshold},
                  {"threshold", s->threshold},
                  {"accuracy", s->cm.accuracy},
                  {"sensitivity", s->cm.sensitivity},
                  {"specificity", s->cm.specificity},
                  {"ppv", s->cm.ppv},
                  {"npv", s->cm.npv}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        fprintf(fp, "    \"%s\": ", fields[i].name);
        json_number(fp, fields[i].value);
        fputs(",\n", fp);
        if (!strcmp(fields[i].name, "auc") || !strcmp(fields[i].name, "eer")) {
            double lo = i == 0 ? s->auc_lo : s->eer_lo, hi = i == 0 ? s->auc_hi : s->eer_hi;
            fprintf(fp, "    \"%s_ci95\": [", fields[i].name);
            json_number(fp, lo);
            fputs(", ", fp);
            json_number(fp, hi);
            fputs("],\n", fp);
        }
    }
    fprintf(fp, "    \"confusion\": {\"tp\": %ld, \"fn\": %ld, \"fp\": %ld, \"tn\": %ld},\n",
            (long)s->cm.tp, (long)s->cm.fn, (long)s->cm.fp, (long)s->cm.tn);
    fprintf(fp, "    \"bootstrap\": {\"replicates\": %d, \"seed\": %llu}}", s->bootstrap_replicates,
            (unsigned long long)s->bootstrap_seed);
}

int report_write_metrics_json(const char *path, const eval_metrics *m) {
    atomic_file af;
    if (atomic_file_open(&af, path)) return -1;
    FILE *fp = af.fp;
    fprintf(fp, "{\"format_version\": 1,\n \"split\": ");
    json_write_string(fp, m->split);
    fprintf(fp, ",\n \"model\": ");
    json_write_string(fp, m->model_path);
    fprintf(fp, ",\n \"features\": ");
    json_write_string(fp, m->features_path);
    fprintf(fp, ",\n \"threshold\": ");
    json_number(fp, m->threshold);
    fprintf(fp, ",\n \"threshold_method\": ");
    json_write_string(fp, m->threshold_method);
    fprintf(fp, ",\n \"aggregate\": ");
    json_write_string(fp, m->aggregate);
    fprintf(fp, ",\n \"clip\": ");
    json_level(fp, &m->clip);
    fprintf(fp, ",\n \"chunk\": ");
    json_level(fp, &m->chunk);
    fprintf(fp, "}\n");
    return atomic_file_commit(&af);
}

static void table_row(FILE *out, const char *name, const char *clip, const char *chunk) {
    fprintf(out, "  %-12s %-32s %s\n", name, clip, chunk);
}

static void table_ratio(FILE *out, const char *name, double clip, double chunk) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%.4f", clip);
    snprintf(b, sizeof b, "%.4f", chunk);
    table_row(out, name, a, b);
}

static void table_interval(FILE *out, const char *name, double clip, double clip_lo, double clip_hi,
                           double chunk, double chunk_lo, double chunk_hi) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%.4f [%.4f, %.4f]", clip, clip_lo, clip_hi);
    snprintf(b, sizeof b, "%.4f [%.4f, %.4f]", chunk, chunk_lo, chunk_hi);
    table_row(out, name, a, b);
}

void report_print_table(FILE *out, const eval_metrics *m) {
    const metrics_summary *a = &m->clip, *b = &m->chunk;
    char x[96], y[96];
    fprintf(out, "%s split: threshold %.6g (%s), clip score = %s of its chunk scores\n", m->split,
            m->threshold, m->threshold_method, m->aggregate);
    table_row(out, "", "clips", "chunks");
    snprintf(x, sizeof x, "%d (%d spoof, %d bona fide)", a->n, a->n_spoof, a->n_bonafide);
    snprintf(y, sizeof y, "%d (%d spoof, %d bona fide)", b->n, b->n_spoof, b->n_bonafide);
    table_row(out, "n", x, y);
    table_interval(out, "ROC AUC", a->auc, a->auc_lo, a->auc_hi, b->auc, b->auc_lo, b->auc_hi);
    table_interval(out, "EER", a->eer, a->eer_lo, a->eer_hi, b->eer, b->eer_lo, b->eer_hi);
    table_ratio(out, "accuracy", a->cm.accuracy, b->cm.accuracy);
    table_ratio(out, "sensitivity", a->cm.sensitivity, b->cm.sensitivity);
    table_ratio(out, "specificity", a->cm.specificity, b->cm.specificity);
    table_ratio(out, "PPV", a->cm.ppv, b->cm.ppv);
    table_ratio(out, "NPV", a->cm.npv, b->cm.npv);
    snprintf(x, sizeof x, "TP %ld FN %ld FP %ld TN %ld", (long)a->cm.tp, (long)a->cm.fn,
             (long)a->cm.fp, (long)a->cm.tn);
    snprintf(y, sizeof y, "TP %ld FN %ld FP %ld TN %ld", (long)b->cm.tp, (long)b->cm.fn,
             (long)b->cm.fp, (long)b->cm.tn);
    table_row(out, "confusion", x, y);
    fprintf(out, "  (spoof = positive; [95%% bootstrap interval, %d stratified replicates])\n",
            a->bootstrap_replicates);
}

int report_run_gnuplot(const char *dir, const char *define, const char *script) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return adfd_fail("cannot start gnuplot: %s", strerror(errno));
    if (pid == 0) {
        if (dir && chdir(dir) != 0) _exit(126);
        if (define)
            execlp("gnuplot", "gnuplot", "-e", define, script, (char *)NULL);
        else
            execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return adfd_fail("gnuplot: %s", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return adfd_fail("gnuplot not found (Debian: apt-get install gnuplot-nox)");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return adfd_fail("%s: gnuplot failed (status %d)", script, status);
    return 0;
}

/* Writes DIR/NAME.gp (terminal and output first, then body) and runs gnuplot in DIR with the
 * output redirected to a temporary name, renamed to NAME.png when gnuplot succeeded. */
static int run_gnuplot(const char *dir, const char *name, const char *body) {
    char gp_name[256], gp_path[4352], png_path[4352], tmp_path[4400];
    snprintf(gp_name, sizeof gp_name, "%s.gp", name);
    path_join(gp_path, sizeof gp_path, dir, gp_name);
    atomic_file af;
    if (atomic_file_open(&af, gp_path)) return -1;
    fprintf(af.fp,
            "# Drawn by adfd; rerun with: gnuplot %s (in this folder)\n"
            "if (!exists(\"outfile\")) outfile = '%s.png'\n"
            "set terminal pngcairo size 900,650 font 'Sans,11'\nset output outfile\n%s",
            gp_name, name, body);
    if (atomic_file_commit(&af)) return -1;
    char png_name[256], tmp_name[300], define[400];
    snprintf(png_name, sizeof png_name, "%s.png", name);
    path_join(png_path, sizeof png_path, dir, png_name);
    snprintf(tmp_name, sizeof tmp_name, "%s.tmp.%ld", png_name, (long)getpid());
    path_join(tmp_path, sizeof tmp_path, dir, tmp_name);
    snprintf(define, sizeof define, "outfile='%s'", tmp_name);
    if (report_run_gnuplot(dir, define, gp_name) != 0) {
        unlink(tmp_path);
        return -1;
    }
    if (rename(tmp_path, png_path))
        return adfd_fail("%s: cannot rename the plot: %s", png_path, strerror(errno));
    return 0;
}

static int open_data(atomic_file *af, const char *dir, const char *file) {
    char path[4352];
    path_join(path, sizeof path, dir, file);
    return atomic_file_open(af, path);
}

/* One block of "fpr tpr" lines, then the decision point as a second block. */
static int write_roc_block(FILE *fp, const float *scores, const int *labels, int n,
                           double threshold, double *auc) {
    double *fpr, *tpr, *th;
    int m;
    if (metrics_roc_curve(scores, labels, n, &fpr, &tpr, &th, &m) ||
        metrics_auc(scores, labels, n, auc))
        return -1;
    for (int i = 0; i < m; i++)
        fprintf(fp, "%.6f %.6f\n", fpr[i], tpr[i]);
    confusion_counts cm;
    metrics_confusion(scores, labels, n, threshold, &cm);
    fprintf(fp, "\n\n%.6f %.6f\n\n\n", 1 - cm.specificity, cm.sensitivity);
    free(fpr), free(tpr), free(th);
    return 0;
}

int report_plot_roc(const char *dir, const float *clip_scores, const int *clip_labels, int n_clips,
                    const float *chunk_scores, const int *chunk_labels, int n_chunks,
                    double threshold, const char *title) {
    atomic_file af;
    double auc_clip, auc_chunk;
    if (open_data(&af, dir, "roc.dat")) return -1;
    fprintf(af.fp, "# fpr tpr; blocks: clip curve, clip point, chunk curve, chunk point\n");
    if (write_roc_block(af.fp, clip_scores, clip_labels, n_clips, threshold, &auc_clip) ||
        write_roc_block(af.fp, chunk_scores, chunk_labels, n_chunks, threshold, &auc_chunk)) {
        atomic_file_discard(&af);
        return -1;
    }
    if (atomic_file_commit(&af)) return -1;
    char body[2048];
    snprintf(body, sizeof body,
             "set title 'ROC, %s (spoof = positive), threshold %.4g'\n"
             "set xlabel 'false positive rate (bona fide called spoof)'\n"
             "set ylabel 'true positive rate (spoof recall)'\n"
             "set xrange [0:1]\nset yrange [0:1]\nset size square\nset key bottom right\n"
             "set grid\n"
             "plot x with lines dt 2 lc rgb 'gray' notitle, \\\n"
             "  'roc.dat' index 0 with lines lw 2 lc rgb '#1f77b4' title 'clips (AUC %.4f)', \\\n"
             "  'roc.dat' index 2 with lines lw 2 lc rgb '#ff7f0e' title 'chunks (AUC %.4f)', \\\n"
             "  'roc.dat' index 1 with points pt 7 ps 1.5 lc rgb '#1f77b4' notitle, \\\n"
             "  'roc.dat' index 3 with points pt 7 ps 1.5 lc rgb '#ff7f0e' notitle\n",
             title, threshold, auc_clip, auc_chunk);
    return run_gnuplot(dir, "roc", body);
}

int report_plot_confusion(const char *dir, const char *name, const confusion_counts *cm,
                          const char *title) {
    char file[300];
    snprintf(file, sizeof file, "%s.dat", name);
    atomic_file af;
    if (open_data(&af, dir, file)) return -1;
    /* x = predicted (0 bona fide, 1 spoof), y = actual; colour = share of the actual class. */
    double bona = (double)(cm->tn + cm->fp), spoof = (double)(cm->fn + cm->tp);
    fprintf(af.fp, "# predicted actual count share_of_actual\n");
    fprintf(af.fp, "0 0 %ld %.6f\n1 0 %ld %.6f\n\n", (long)cm->tn, bona ? cm->tn / bona : 0,
            (long)cm->fp, bona ? cm->fp / bona : 0);
    fprintf(af.fp, "0 1 %ld %.6f\n1 1 %ld %.6f\n", (long)cm->fn, spoof ? cm->fn / spoof : 0,
            (long)cm->tp, spoof ? cm->tp / spoof : 0);
    if (atomic_file_commit(&af)) return -1;
    char body[2048];
    snprintf(body, sizeof body,
             "set title '%s'\nset xlabel 'predicted'\nset ylabel 'actual'\n"
             "set xtics ('bona fide' 0, 'spoof' 1)\nset ytics ('bona fide' 0, 'spoof' 1)\n"
             "set xrange [-0.5:1.5]\nset yrange [-0.5:1.5]\nset size square\n"
             "set cbrange [0:1]\nset cblabel 'share of the actual class'\n"
             "set palette defined (0 'white', 1 '#2b6cb0')\n"
             "plot '%s' using 1:2:4 with image notitle, \\\n"
             "  '' using 1:2:(sprintf('%%d (%%.1f%%%%)', $3, 100*$4)) with labels font ',16' "
             "notitle\n",
             title, file);
    return run_gnuplot(dir, name, body);
}

int report_plot_score_histograms(const char *dir, const float *scores, const int *labels, int n,
                                 double threshold, const char *title) {
    enum { BINS = 40 };
    int counts[2][BINS] = {{0}};
    for (int i = 0; i < n; i++) {
        int bin = (int)(scores[i] * BINS);
        bin = bin < 0 ? 0 : bin >= BINS ? BINS - 1 : bin;
        counts[labels[i] == 1][bin]++;
    }
    atomic_file af;
    if (open_data(&af, dir, "scores.dat")) return -1;
    fprintf(af.fp, "# bin_center bonafide_count spoof_count\n");
    for (int b = 0; b < BINS; b++)
        fprintf(af.fp, "%.4f %d %d\n", (b + 0.5) / BINS, counts[0][b], counts[1][b]);
    if (atomic_file_commit(&af)) return -1;
    char body[2048];
    snprintf(body, sizeof body,
             "set title '%s'\nset xlabel 'score = P(spoof)'\nset ylabel 'count'\n"
             "set xrange [0:1]\nset yrange [0:*]\nset style fill transparent solid 0.5\n"
             "set boxwidth %.6f absolute\nset key top center\n"
             "set arrow from %.6g, graph 0 to %.6g, graph 1 nohead dt 2 lw 2 lc rgb 'black'\n"
             "plot 'scores.dat' using 1:2 with boxes lc rgb '#2ca02c' title 'bona fide', \\\n"
             "  '' using 1:3 with boxes lc rgb '#d62728' title 'spoof', \\\n"
             "  NaN with lines dt 2 lw 2 lc rgb 'black' title 'threshold %.4g'\n",
             title, 1.0 / BINS, threshold, threshold, threshold);
    return run_gnuplot(dir, "scores", body);
}

static int compare_rows(const void *pa, const void *pb) {
    const grid_epoch_row *a = pa, *b = pb;
    if (a->config != b->config) return a->config < b->config ? -1 : 1;
    return (a->r.epoch > b->r.epoch) - (a->r.epoch < b->r.epoch);
}

int report_plot_learning_curves(const char *dir, const grid_epoch_row *rows, int n_rows,
                                int best_config) {
    grid_epoch_row *sorted = mallocCheck(sizeof(grid_epoch_row) * (size_t)(n_rows ? n_rows : 1));
    memcpy(sorted, rows, sizeof(grid_epoch_row) * (size_t)n_rows);
    qsort(sorted, (size_t)n_rows, sizeof *sorted, compare_rows);
    atomic_file af;
    if (open_data(&af, dir, "learning_curves.dat")) {
        free(sorted);
        return -1;
    }
    fprintf(af.fp, "# one block per configuration: epoch train_loss test_loss test_auc\n");
    int blocks = 0, best_block = -1;
    for (int i = 0; i < n_rows; i++) {
        if (i == 0 || sorted[i].config != sorted[i - 1].config) {
            if (i) fprintf(af.fp, "\n\n");
            fprintf(af.fp, "# c%03d\n", sorted[i].config);
            if (sorted[i].config == best_config) best_block = blocks;
            blocks++;
        }
        fprintf(af.fp, "%d %.6g %.6g %.6g\n", sorted[i].r.epoch, sorted[i].r.train_loss,
                sorted[i].r.test_loss, sorted[i].r.test_auc);
    }
    free(sorted);
    if (atomic_file_commit(&af)) return -1;
    if (blocks == 0) return adfd_fail("no grid epochs to plot");
    char body[2048], best_plot[512] = "";
    if (best_block >= 0)
        snprintf(best_plot, sizeof best_plot,
                 ", \\\n  '' index %d using 1:3 with linespoints lw 3 pt 7 lc rgb '#d62728' "
                 "title 'best: c%03d'",
                 best_block, best_config);
    snprintf(body, sizeof body,
             "set title 'Grid search: test loss per epoch (%d configurations)'\n"
             "set xlabel 'epoch'\nset ylabel 'test loss (cross-entropy)'\nset grid\nset xtics 1\n"
             "set key top right\n"
             "plot for [i=0:%d] 'learning_curves.dat' index i using 1:3 with linespoints pt 7 ps "
             "0.4 lw 1 "
             "lc rgb '#9aa5b1' notitle, \\\n"
             "  NaN with lines lc rgb '#9aa5b1' title 'other configurations'%s\n",
             blocks, blocks - 1, best_plot);
    return run_gnuplot(dir, "learning_curves", body);
}
