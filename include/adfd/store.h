/* store: the feature file features.h5 (DESIGN.md section 4), written collectively by all ranks
 * of `adfd prepare` with parallel HDF5, read by train/grid/eval with bounded memory.
 *
 * Layout (format version ADFD_STORE_VERSION):
 *   /features        float32 [N,128,80], chunked          /clip int32 [N]   /offset int32 [N]
 *   /clips/file      fixed string [C]   /clips/speaker int32 [C]  /clips/label int32 [C]
 *   /clips/split     int32 [C]          /clips/seconds float32 [C]
 *   /speakers/name   fixed string [S]
 *   /normalization/mean, /normalization/std  float32 [128] (train split; 0 and 1 for seed)
 *   root attributes: format_version, preset, every feature_params field, sample_rate,
 *   source_meta, source_checksum. */
#ifndef ADFD_STORE_H
#define ADFD_STORE_H

#include <stdint.h>

#include "adfd/dataset.h"
#include "adfd/features.h"

#define ADFD_STORE_VERSION 1

/* Reader: every process opens the file on its own, read-only. The clip table and the row index
 * are loaded whole (small); features are read on demand, so memory does not grow with N. */
typedef struct {
    int format_version;
    feature_params params;
    char source_meta[4096];
    char source_checksum[17];
    int64_t n_rows;
    int32_t *row_clip;   /* [n_rows] */
    int32_t *row_offset; /* [n_rows] */
    int n_clips;
    char (*clip_file)[ADFD_FILE_MAX];
    int32_t *clip_speaker, *clip_label, *clip_split;
    float *clip_seconds;
    int n_speakers;
    char (*speaker_name)[ADFD_SPEAKER_MAX];
    float band_mean[ADFD_N_MELS], band_std[ADFD_N_MELS];
    int64_t h5_file, h5_features; /* hid_t */
} feature_store;

/* -1 + message for a missing file, another format version, a damaged layout. */
int store_open(feature_store *s, const char *path);
/* Reads rows[0..n) (any order, repeats allowed) into out [n][128][80], raw features. */
int store_read_rows(feature_store *s, const int64_t *rows, int n, float *out);
void store_close(feature_store *s);

#endif
