/* evaluate: scoring one split of a feature file with a model (chunk scores, clip scores by the
 * model's aggregation), choosing a decision threshold on it, and writing what `adfd eval`
 * produces: metrics.json, scores.csv, chunks.csv and the plots (DESIGN.md sections 7 and 9).
 * Runs on one process (rank 0); the feature file is read in blocks, memory stays bounded. */
#ifndef ADFD_EVALUATE_H
#define ADFD_EVALUATE_H

#include "adfd/model.h"
#include "adfd/report.h"
#include "adfd/store.h"

typedef struct {
    int n_chunks;
    int64_t *chunk_row; /* row in the feature file */
    int *chunk_clip;    /* clip table index */
    float *chunk_score; /* P(spoof) */
    int *chunk_label;
    int n_clips; /* clips of the split with at least one chunk, in clip table order */
    int *clip;   /* clip table index */
    float *clip_score;
    int *clip_label;
    int *clip_chunks;
} split_scores;

/* Scores every chunk of `split` (SPLIT_TEST, SPLIT_HOLDOUT, ...); clip score = aggregate
 * ("rms", "mean", "max") of its chunk scores. -1 + message when the split is empty. */
int evaluate_split(feature_store *store, cnn_model *model, int split, const char *aggregate,
                   split_scores *out);
void split_scores_free(split_scores *s);

/* Clip-level threshold by "eer" (the EER point, rule score >= t -> spoof) or "youden". */
int evaluate_choose_threshold(const split_scores *s, const char *method, double *threshold);

/* Clip and chunk metrics at m->threshold into m->clip / m->chunk (bootstrap: replicates, seed). */
int evaluate_metrics(const split_scores *s, int replicates, uint64_t seed, eval_metrics *m);

/* DIR/metrics.json, DIR/scores.csv (file,speaker,label,score,chunks), DIR/chunks.csv
 * (file,offset,label,score); with plots: DIR/roc.png, confusion.png, scores.png. */
int evaluate_write(const char *dir, const feature_store *store, const split_scores *s,
                   const eval_metrics *m, int plots);

#endif
