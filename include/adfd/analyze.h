/* analyze: scoring one decoded clip with a model on a sliding grid of 1-second windows — the
 * library part of `adfd analyze` (window scores and times, clip score, verdict, top windows).
 *
 * The windows are the chunks of the MODEL's own front end (its stored feature_params, with
 * chunk_hop set to the analysis hop), so a model of either preset is scored on exactly the
 * features it was trained on, and a window at offset o has the score `adfd eval` gives the chunk
 * at offset o. */
#ifndef ADFD_ANALYZE_H
#define ADFD_ANALYZE_H

#include <stdint.h>
#include <stdio.h>

#include "adfd/features.h"
#include "adfd/model.h"

typedef struct {
    int32_t offset_frames; /* first frame of the window in the preset's (trimmed) frame grid */
    double start_seconds;  /* position in the decoded clip */
    double end_seconds;    /* start + window length, clipped to the clip's duration */
    float score;           /* P(spoof) */
} analyze_window;

typedef struct {
    analyze_window *windows; /* [n_windows] in time order, malloc'ed */
    int n_windows;
    double seconds;      /* duration of the decoded clip */
    int padded;          /* shorter than one window: padded by the preset's rule */
    double trim_seconds; /* leading audio the preset trimmed before the first frame */
    float clip_score;    /* aggregate of the window scores */
    int is_spoof;        /* clip_score >= the model's threshold */
} analyze_result;

typedef struct {
    cnn_model *model;             /* borrowed */
    feature_params window_params; /* the model's front end with chunk_hop = hop_frames */
    mel_frontend *frontend;
    int hop_frames;
    char aggregate[16];     /* "rms", "mean" or "max" */
    int batch;              /* windows per model_predict call */
    int64_t segment_frames; /* long clips are scored in pieces of about this many frames */
} analyzer;

/* Windows per model_predict call: large enough for GEMM efficiency, small enough for the cache. */
#define ADFD_ANALYZE_BATCH 64
/* Pieces of 5 minutes bound the memory of a long recording to ~30 MB of windows at a time (the
 * scores do not depend on it: test_analyze_windows compares tiny pieces with one piece). */
#define ADFD_ANALYZE_SEGMENT_FRAMES 24000

/* Frames of hop_length closest to hop_seconds (at least 1). */
int analyze_hop_frames(const feature_params *p, double hop_seconds);
/* Seconds covered by one window (chunk_frames frames). */
double analyze_window_seconds(const feature_params *p);

/* aggregate NULL or "" = the model's own (rms when the model names none). -1 + message on an
 * unknown aggregate or a hop below one frame. */
int analyzer_init(analyzer *a, cnn_model *m, int hop_frames, const char *aggregate);
void analyzer_free(analyzer *a);
/* Scores the mono 16 kHz clip x[n]. -1 + message (no result to free) on failure. */
int analyze_clip(analyzer *a, const float *x, int64_t n, analyze_result *r);
void analyze_result_free(analyze_result *r);
/* idx[0..min(k, n_windows)) = the highest-scoring windows, best first, the earlier window first
 * on equal scores. Returns how many were written. */
int analyze_top_windows(const analyze_result *r, int k, int *idx);

/* Longest path analyze writes (exported windows, plots). */
#define ADFD_ANALYZE_PATH_MAX 4400

/* Outputs of `adfd analyze` besides the report: WAV export and plot (src/analyze_output.c). */
/* Writes the window w of the clip x[n] (16 kHz) as a 16-bit WAV file; a window shorter than one
 * frame (frame_samples) at the end of the clip is widened to the clip's last frame. */
int analyze_export_window(const char *path, const float *x, int64_t n, const analyze_window *w,
                          int frame_samples);
/* Draws the waveform (the top windows top[0..n_top) shaded) and the window scores over time into
 * png_path with gnuplot; the data and the script are kept next to it (<png without .png>.dat /
 * .gp) so the plot can be re-made. */
int analyze_plot(const char *png_path, const char *title, const float *x, int64_t n,
                 const analyze_result *r, const int *top, int n_top, float threshold);

/* The report of one scored file: the table or the JSON of docs/analyze.md (src/analyze_report.c).
 * The JSON document is header, then one entry per file (first = 1 for the first), then footer. */
typedef struct {
    const char *file;
    const analyze_result *result;
    const int *top; /* [n_top] indices into result->windows, best first */
    int n_top;
    char (*exports)[ADFD_ANALYZE_PATH_MAX]; /* [n_top] WAV files written; NULL without --export */
    const char *plot;                       /* PNG written; NULL without --plot */
} analyze_report;

/* The hop actually used, in seconds (whole frames). */
double analyzer_hop_seconds(const analyzer *a);
void analyze_print_text_header(FILE *out, const analyzer *a, const char *model_path);
void analyze_print_text_file(FILE *out, const analyzer *a, const analyze_report *rep);
void analyze_print_json_header(FILE *out, const analyzer *a, const char *model_path, int top_k);
void analyze_print_json_file(FILE *out, const analyze_report *rep, int first);
void analyze_print_json_error(FILE *out, const char *file, const char *message, int first);
void analyze_print_json_footer(FILE *out, int failed);

#endif
