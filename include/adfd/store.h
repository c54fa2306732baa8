/* store: the feature file features.h5 (DESIGN.md section 4), written collectively by all ranks
 * of `adfd prepare` with parallel HDF5, read by train/grid/eval with bounded memory.
 *
 * Layout (format version ADFD_STORE_VERSION):
 *   /features        float32 [N,128,80], chunked          /clip int32 [N]   /offset int32 [N]
 *   /clips/file      fixed string [C]   /clips/speaker int32 [C]  /clips/label int32 [C]
 *   /clips/split     int32 [C]          /clips/seconds float32 [C]
 *   /speakers/name   fixed string [S]
 *   /normalization/mean, /normalization/std  float32 [128] (train split; 0 and 1 for seed)
 *   /skipped         fixed string [K] (clips prepare could not read, with --skip-bad)
 *   root attributes: format_version, preset, every feature_params field, sample_rate,
 *   source_meta, source_checksum, n_rows, n_clips.
 * Rows are in clip order (all chunks of clip 0, then clip 1, ...), whatever the rank count. */
#ifndef ADFD_STORE_H
#define ADFD_STORE_H

#include <mpi.h>
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

/* -1 + message for a missing file, another format version, a damaged layout.
 * /features is read without an HDF5 chunk cache: a requested row is 40 KB contiguous in its
 * 1 MiB chunk and is read directly (the OS page cache is the cache), so random row order costs
 * one 40 KB read per row instead of a 1 MiB chunk, and memory stays bounded. */
int store_open(feature_store *s, const char *path);
/* Reads rows[0..n) (any order, repeats allowed) into out [n][128][80], raw features.
 * The rows are sorted and runs of consecutive rows are read with one call each. */
int store_read_rows(feature_store *s, const int64_t *rows, int n, float *out);
void store_close(feature_store *s);

/* Writer, used by `adfd prepare`. Every call is collective over the communicator given to
 * store_writer_create (every rank calls it, in the same order, with the same shared arguments;
 * a rank with no rows passes n_runs = 0). HDF5 failures abort all ranks (ADFD_H5_CHECK). */
typedef struct store_writer store_writer;
/* Creates PATH (truncated) with the MPI-IO driver; /features, /clip, /offset start with 0 rows
 * and grow with each append. */
store_writer *store_writer_create(MPI_Comm comm, const char *path, const feature_params *p,
                                  const char *source_meta, const char *source_checksum);
/* Appends local_rows rows from every rank after the rows written so far, rank 0's first, then
 * rank 1's, ... (offsets from an exclusive scan of the counts; a rank may pass 0 rows). The
 * rows are features [local_rows][128][80], clip [local_rows], offset [local_rows]. One
 * collective write per dataset. */
void store_writer_append(store_writer *w, int64_t local_rows, const float *features,
                         const int32_t *clip, const int32_t *offset);
/* Appends /features rows only, when every rank already knows the round's row count and where
 * its own rows start (prepare derives both from the per-clip counts it sums anyway): one
 * collective write, no scan. /clip and /offset are then given whole to store_writer_finish. */
void store_writer_append_features(store_writer *w, int64_t round_rows, int64_t local_first,
                                  int64_t local_rows, const float *features);
/* The small tables, identical on every rank (rank 0 writes them). */
typedef struct {
    int n_clips;
    const char *const *file; /* [n_clips], shorter than ADFD_FILE_MAX */
    const int32_t *speaker, *label, *split;
    const float *seconds;
    int n_speakers;
    const char *const *speaker_name;   /* [n_speakers], shorter than ADFD_SPEAKER_MAX */
    const float *band_mean, *band_std; /* [128] */
    int n_skipped;
    const char *const *skipped; /* [n_skipped] */
    /* [rows written], identical on every rank, after store_writer_append_features; NULL when
     * store_writer_append wrote them with the rows */
    const int32_t *row_clip, *row_offset;
} store_tables;
/* Writes the tables and attributes, closes the file (the caller renames it afterwards). */
void store_writer_finish(store_writer *w, const store_tables *t);

#endif
