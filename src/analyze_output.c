/* Outputs of `adfd analyze` besides the table: WAV export of windows, and the gnuplot timeline. */
#include "adfd/analyze.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/audio.h"
#include "adfd/report.h"
#include "adfd/util.h"

int analyze_export_window(const char *path, const float *x, int64_t n, const analyze_window *w,
                          int frame_samples) {
    int64_t first = llround(w->start_seconds * ADFD_SAMPLE_RATE);
    int64_t last = llround(w->end_seconds * ADFD_SAMPLE_RATE);
    if (last > n) last = n;
    /* The seed preset's last window may start at the very end of the clip (it holds the last
     * frame and zero padding): export the samples of that last frame. */
    if (last - first < frame_samples) first = last - frame_samples;
    if (first < 0) first = 0;
    if (last <= first)
        return adfd_fail("%s: the window %.3f-%.3f s holds no audio", path, w->start_seconds,
                         w->end_seconds);
    return audio_write_wav16(path, x + first, last - first, ADFD_SAMPLE_RATE);
}

/* A path inside a gnuplot single-quoted string: a quote is written twice. */
static void gnuplot_quoted(FILE *out, const char *s) {
    fputc('\'', out);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', out);
        fputc(*s, out);
    }
    fputc('\'', out);
}

/* Waveform as a min/max envelope over at most this many columns: a one-hour clip has 57.6 M
 * samples, far more than a plot has pixels. */
enum { PLOT_ENVELOPE_COLUMNS = 2400 };

static int write_plot_data(const char *dat_path, const float *x, int64_t n,
                           const analyze_result *r) {
    atomic_file af;
    if (atomic_file_open(&af, dat_path) != 0) return -1;
    fprintf(af.fp, "# waveform envelope: seconds min max\n");
    int64_t columns = n < PLOT_ENVELOPE_COLUMNS ? n : PLOT_ENVELOPE_COLUMNS;
    for (int64_t c = 0; c < columns; c++) {
        int64_t lo = c * n / columns, hi = (c + 1) * n / columns;
        float mn = x[lo], mx = x[lo];
        for (int64_t i = lo; i < hi; i++) {
            mn = fminf(mn, x[i]);
            mx = fmaxf(mx, x[i]);
        }
        fprintf(af.fp, "%.6f %.6f %.6f\n", (double)lo / ADFD_SAMPLE_RATE, mn, mx);
    }
    fprintf(af.fp, "\n\n# windows: centre_seconds score start end\n");
    for (int i = 0; i < r->n_windows; i++) {
        const analyze_window *w = &r->windows[i];
        fprintf(af.fp, "%.6f %.6f %.6f %.6f\n", 0.5 * (w->start_seconds + w->end_seconds), w->score,
                w->start_seconds, w->end_seconds);
    }
    return atomic_file_commit(&af);
}

static int write_plot_script(const char *gp_path, const char *png_tmp, const char *dat_path,
                             const char *title, const analyze_result *r, const int *top, int n_top,
                             float threshold) {
    atomic_file af;
    if (atomic_file_open(&af, gp_path) != 0) return -1;
    FILE *f = af.fp;
    fprintf(f, "set terminal pngcairo size 1200,600 font ',10'\nset output ");
    gnuplot_quoted(f, png_tmp);
    fprintf(f, "\nset multiplot layout 2,1 title ");
    gnuplot_quoted(f, title);
    fprintf(f, " noenhanced\nset xrange [0:%.6f]\nset grid\nset lmargin 10\n",
            r->seconds > 0 ? r->seconds : 1.0);
    /* the top windows shaded on the waveform, so the seconds that look fake stand out */
    for (int k = 0; k < n_top; k++)
        fprintf(f,
                "set object %d rect from %.6f, graph 0 to %.6f, graph 1 fc rgb '#ee7733' "
                "fs transparent solid 0.25 noborder behind\n",
                k + 1, r->windows[top[k]].start_seconds, r->windows[top[k]].end_seconds);
    fprintf(f, "set ylabel 'amplitude (top %d windows shaded)'\nset yrange [-1:1]\nplot ", n_top);
    gnuplot_quoted(f, dat_path);
    fprintf(f, " index 0 using 1:2:3 with filledcurves lc rgb '#4477aa' notitle\n");
    fprintf(f, "unset object\nset ylabel 'P(spoof) of the window'\n");
    fprintf(f, "set xlabel 'seconds (window centre)'\n");
    fprintf(f, "set yrange [0:1]\nplot ");
    gnuplot_quoted(f, dat_path);
    fprintf(f,
            " index 1 using 1:2 with linespoints pt 7 ps 0.5 lc rgb '#cc3311' title "
            "'window score', %.6f with lines dt 2 lc rgb 'black' title 'threshold'\n",
            threshold);
    fprintf(f, "unset multiplot\n");
    return atomic_file_commit(&af);
}

int analyze_plot(const char *png_path, const char *title, const float *x, int64_t n,
                 const analyze_result *r, const int *top, int n_top, float threshold) {
    char base[4096], dat_path[4200], gp_path[4200], png_tmp[4200];
    size_t len = strlen(png_path);
    if (len >= sizeof base) return adfd_fail("%s: path too long", png_path);
    strcpy(base, png_path);
    if (len > 4 && !strcmp(base + len - 4, ".png")) base[len - 4] = '\0';
    snprintf(dat_path, sizeof dat_path, "%s.dat", base);
    snprintf(gp_path, sizeof gp_path, "%s.gp", base);
    atomic_tmp_name(png_tmp, sizeof png_tmp, png_path);
    if (write_plot_data(dat_path, x, n, r) != 0) return -1;
    if (write_plot_script(gp_path, png_tmp, dat_path, title, r, top, n_top, threshold) != 0)
        return -1;
    if (report_run_gnuplot(NULL, NULL, gp_path) != 0) {
        remove(png_tmp);
        return -1;
    }
    if (rename(png_tmp, png_path) != 0) {
        int err = errno;
        remove(png_tmp);
        return adfd_fail("%s: cannot rename the plot into place: %s", png_path, strerror(err));
    }
    return 0;
}
