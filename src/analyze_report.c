/* The report of `adfd analyze`: a readable table, or the JSON document of docs/analyze.md
 * (schema docs/analyze.schema.json; change ANALYZE_SCHEMA_VERSION with any incompatible change). */
#include "adfd/analyze.h"

#include "adfd/util.h"

#define ANALYZE_SCHEMA_VERSION 1

double analyzer_hop_seconds(const analyzer *a) {
    return (double)a->hop_frames * a->window_params.hop_length / a->window_params.sample_rate;
}

void analyze_print_text_header(FILE *out, const analyzer *a, const char *model_path) {
    const cnn_model *m = a->model;
    fprintf(out, "model %s: %s preset, %d channels, threshold %.4f (%s)\n", model_path,
            m->features.preset, m->channels, m->threshold,
            m->threshold_method[0] ? m->threshold_method : "unspecified");
    fprintf(out, "windows of %.2f s every %.4g s; clip score = %s of the window scores\n",
            analyze_window_seconds(&a->window_params), analyzer_hop_seconds(a), a->aggregate);
}

void analyze_print_text_file(FILE *out, const analyzer *a, const analyze_report *rep) {
    const analyze_result *r = rep->result;
    fprintf(out, "\n%s\n  %.2f s, %d window%s, clip score %.4f -> %s (threshold %.4f)\n", rep->file,
            r->seconds, r->n_windows, r->n_windows == 1 ? "" : "s", r->clip_score,
            r->is_spoof ? "SPOOF" : "bona fide", a->model->threshold);
    if (r->padded)
        fprintf(out,
                "  note: shorter than one window (%.2f s < %.2f s): padded by the %s preset's "
                "rule, the score is less reliable\n",
                r->seconds, analyze_window_seconds(&a->window_params), a->window_params.preset);
    if (r->trim_seconds > 0)
        fprintf(out, "  note: %.2f s of leading silence trimmed\n", r->trim_seconds);
    if (rep->n_top > 0) fprintf(out, "  %4s %9s %9s %9s\n", "top", "start s", "end s", "P(spoof)");
    for (int k = 0; k < rep->n_top; k++) {
        const analyze_window *w = &r->windows[rep->top[k]];
        fprintf(out, "  %4d %9.2f %9.2f %9.4f", k + 1, w->start_seconds, w->end_seconds, w->score);
        if (rep->exports) fprintf(out, "  %s", rep->exports[k]);
        fprintf(out, "\n");
    }
    if (rep->plot) fprintf(out, "  plot: %s\n", rep->plot);
}

void analyze_print_json_header(FILE *out, const analyzer *a, const char *model_path, int top_k) {
    const cnn_model *m = a->model;
    fprintf(out, "{\n  \"schema\": \"adfd-analyze\",\n  \"schema_version\": %d,\n",
            ANALYZE_SCHEMA_VERSION);
    fprintf(out, "  \"model\": {\"path\": ");
    json_write_string(out, model_path);
    fprintf(out, ", \"preset\": ");
    json_write_string(out, m->features.preset);
    fprintf(out, ", \"channels\": %d, \"threshold\": %.9g, \"threshold_method\": ", m->channels,
            m->threshold);
    json_write_string(out, m->threshold_method);
    fprintf(out,
            "},\n  \"aggregate\": \"%s\",\n  \"hop_seconds\": %.9g,\n  \"window_seconds\": %.9g,\n"
            "  \"top_k\": %d,\n  \"files\": [",
            a->aggregate, analyzer_hop_seconds(a), analyze_window_seconds(&a->window_params),
            top_k);
}

void analyze_print_json_file(FILE *out, const analyze_report *rep, int first) {
    const analyze_result *r = rep->result;
    fprintf(out, "%s\n    {\"file\": ", first ? "" : ",");
    json_write_string(out, rep->file);
    fprintf(out,
            ", \"status\": \"ok\", \"seconds\": %.9g, \"padded\": %s, \"trim_seconds\": %.9g,\n"
            "     \"n_windows\": %d, \"clip_score\": %.9g, \"verdict\": \"%s\",\n     \"top\": [",
            r->seconds, r->padded ? "true" : "false", r->trim_seconds, r->n_windows, r->clip_score,
            r->is_spoof ? "spoof" : "bona-fide");
    for (int k = 0; k < rep->n_top; k++) {
        const analyze_window *w = &r->windows[rep->top[k]];
        fprintf(out, "%s{\"rank\": %d, \"start\": %.9g, \"end\": %.9g, \"score\": %.9g",
                k ? ", " : "", k + 1, w->start_seconds, w->end_seconds, w->score);
        if (rep->exports) {
            fprintf(out, ", \"export\": ");
            json_write_string(out, rep->exports[k]);
        }
        fprintf(out, "}");
    }
    fprintf(out, "],\n     \"windows\": [");
    for (int i = 0; i < r->n_windows; i++) {
        const analyze_window *w = &r->windows[i];
        fprintf(out, "%s{\"offset_frames\": %d, \"start\": %.9g, \"end\": %.9g, \"score\": %.9g}",
                i ? ", " : "", (int)w->offset_frames, w->start_seconds, w->end_seconds, w->score);
    }
    fprintf(out, "]");
    if (rep->plot) {
        fprintf(out, ", \"plot\": ");
        json_write_string(out, rep->plot);
    }
    fprintf(out, "}");
}

void analyze_print_json_error(FILE *out, const char *file, const char *message, int first) {
    fprintf(out, "%s\n    {\"file\": ", first ? "" : ",");
    json_write_string(out, file);
    fprintf(out, ", \"status\": \"error\", \"error\": ");
    json_write_string(out, message);
    fprintf(out, "}");
}

void analyze_print_json_footer(FILE *out, int failed) {
    fprintf(out, "\n  ],\n  \"failed\": %d\n}\n", failed);
}
