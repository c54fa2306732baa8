/* store (writer): features.h5 written by every rank of `adfd prepare` with parallel HDF5
 * (MPI-IO driver, collective transfers). Every function here is collective; an HDF5 failure
 * aborts all ranks so that none waits forever in a collective. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/store.h"
#include "adfd/util.h"

/* 25 rows of [128][80] float32 = 1,024,000 bytes per chunk */
enum { ROWS_PER_CHUNK = 25, INDEX_CHUNK = 16384 };

struct store_writer {
    MPI_Comm comm;
    int rank;
    hid_t file, features, clip, offset;
    hid_t collective; /* dataset transfer property: H5FD_MPIO_COLLECTIVE */
    int64_t n_rows;   /* rows written so far (all ranks) */
    feature_params params;
    char source_meta[4096];
    char source_checksum[17];
};

/* An extendible chunked dataset with 0 rows; no fill values are written (every row is). */
static hid_t create_growing(hid_t file, const char *name, hid_t type, int rank,
                            const hsize_t *row_shape, hsize_t chunk_rows) {
    hsize_t dims[3] = {0, 0, 0}, maxdims[3] = {H5S_UNLIMITED, 0, 0}, chunk[3] = {chunk_rows, 0, 0};
    for (int i = 1; i < rank; i++)
        dims[i] = maxdims[i] = chunk[i] = row_shape[i - 1];
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    ADFD_H5_CHECK(H5Pset_chunk(dcpl, rank, chunk));
    ADFD_H5_CHECK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
    hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ADFD_CHECK(d >= 0, "cannot create dataset /%s", name);
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
}

store_writer *store_writer_create(MPI_Comm comm, const char *path, const feature_params *p,
                                  const char *source_meta, const char *source_checksum) {
    store_writer *w = callocCheck(1, sizeof *w);
    w->comm = comm;
    MPI_Comm_rank(comm, &w->rank);
    w->params = *p;
    snprintf(w->source_meta, sizeof w->source_meta, "%s", source_meta);
    snprintf(w->source_checksum, sizeof w->source_checksum, "%s", source_checksum);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    ADFD_H5_CHECK(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
    ADFD_H5_CHECK(H5Pset_file_locking(fapl, 0, 1));
    /* metadata written by all ranks together instead of many small independent writes */
    ADFD_H5_CHECK(H5Pset_coll_metadata_write(fapl, 1));
    w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    ADFD_CHECK(w->file >= 0,
               "%s: cannot create the feature file (directory missing or "
               "not writable?)",
               path);
    H5Pclose(fapl);
    hsize_t row_shape[2] = {ADFD_N_MELS, ADFD_CHUNK_FRAMES};
    w->features = create_growing(w->file, "features", H5T_IEEE_F32LE, 3, row_shape, ROWS_PER_CHUNK);
    w->clip = create_growing(w->file, "clip", H5T_STD_I32LE, 1, NULL, INDEX_CHUNK);
    w->offset = create_growing(w->file, "offset", H5T_STD_I32LE, 1, NULL, INDEX_CHUNK);
    w->collective = H5Pcreate(H5P_DATASET_XFER);
    ADFD_H5_CHECK(H5Pset_dxpl_mpio(w->collective, H5FD_MPIO_COLLECTIVE));
    /* Collective calls, but each rank moves its own bytes: a rank's rows are one contiguous
     * block of the file, so two-phase aggregation would only copy them to an aggregator rank
     * that then writes everything alone (measured 1.5-2x slower on one node, docs/prepare.md). */
    ADFD_H5_CHECK(H5Pset_dxpl_mpio_collective_opt(w->collective, H5FD_MPIO_INDIVIDUAL_IO));
    return w;
}

/* Collective write of this rank's local_rows rows at row w->n_rows + local_first of dataset d,
 * after growing it by round_rows. One regular hyperslab per rank: HDF5 maps it to chunks
 * arithmetically, where a union of hyperslabs is walked element by element (100x slower). */
static void write_block(store_writer *w, hid_t d, hid_t mem_type, int rank, int64_t round_rows,
                        int64_t local_first, int64_t local_rows, const void *buf) {
    hsize_t dims[3] = {(hsize_t)(w->n_rows + round_rows), ADFD_N_MELS, ADFD_CHUNK_FRAMES};
    ADFD_H5_CHECK(H5Dset_extent(d, dims));
    hid_t file_space = H5Dget_space(d);
    hsize_t start[3] = {(hsize_t)(w->n_rows + local_first), 0, 0};
    hsize_t count[3] = {(hsize_t)local_rows, ADFD_N_MELS, ADFD_CHUNK_FRAMES};
    hsize_t mem_dims[3] = {(hsize_t)(local_rows > 0 ? local_rows : 1), ADFD_N_MELS,
                           ADFD_CHUNK_FRAMES};
    hid_t mem_space = H5Screate_simple(rank, mem_dims, NULL);
    if (local_rows > 0) {
        ADFD_H5_CHECK(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL));
    } else {
        ADFD_H5_CHECK(H5Sselect_none(file_space));
        ADFD_H5_CHECK(H5Sselect_none(mem_space));
    }
    ADFD_H5_CHECK(H5Dwrite(d, mem_type, mem_space, file_space, w->collective, buf));
    H5Sclose(mem_space);
    H5Sclose(file_space);
}

void store_writer_append_features(store_writer *w, int64_t round_rows, int64_t local_first,
                                  int64_t local_rows, const float *features) {
    write_block(w, w->features, H5T_NATIVE_FLOAT, 3, round_rows, local_first, local_rows, features);
    w->n_rows += round_rows;
}

void store_writer_append(store_writer *w, int64_t local_rows, const float *features,
                         const int32_t *clip, const int32_t *offset) {
    /* this rank's rows follow those of the lower ranks: offsets from an exclusive scan */
    int64_t local_first = 0, round_rows = 0;
    ADFD_MPI_CHECK(MPI_Exscan(&local_rows, &local_first, 1, MPI_INT64_T, MPI_SUM, w->comm));
    if (w->rank == 0) local_first = 0; /* MPI_Exscan leaves rank 0's result undefined */
    ADFD_MPI_CHECK(MPI_Allreduce(&local_rows, &round_rows, 1, MPI_INT64_T, MPI_SUM, w->comm));
    write_block(w, w->clip, H5T_NATIVE_INT32, 1, round_rows, local_first, local_rows, clip);
    write_block(w, w->offset, H5T_NATIVE_INT32, 1, round_rows, local_first, local_rows, offset);
    store_writer_append_features(w, round_rows, local_first, local_rows, features);
}

/* /clip and /offset whole, by rank 0, when the caller knows every row's values (prepare). */
static void write_index(store_writer *w, hid_t d, const int32_t *values) {
    hsize_t dims[1] = {(hsize_t)w->n_rows};
    ADFD_H5_CHECK(H5Dset_extent(d, dims));
    hid_t space = H5Dget_space(d);
    if (w->rank != 0) ADFD_H5_CHECK(H5Sselect_none(space));
    if (w->n_rows > 0)
        ADFD_H5_CHECK(H5Dwrite(d, H5T_NATIVE_INT32, space, space, w->collective, values));
    H5Sclose(space);
}

/* A 1-D dataset of n values written whole by rank 0 (the other ranks select nothing). */
static void write_table(store_writer *w, const char *name, hid_t file_type, hid_t mem_type,
                        int64_t n, const void *buf) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(w->file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ADFD_CHECK(d >= 0, "cannot create dataset /%s", name);
    if (w->rank != 0) ADFD_H5_CHECK(H5Sselect_none(space));
    /* an empty dataset has no storage to write to (n is the same on every rank) */
    if (n > 0) ADFD_H5_CHECK(H5Dwrite(d, mem_type, space, space, w->collective, buf));
    H5Dclose(d);
    H5Sclose(space);
}

static hid_t string_type(size_t width) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, width);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

/* Packs n C strings into fixed-width records (the layout HDF5 writes). */
static void write_strings(store_writer *w, const char *name, int n, const char *const *strings,
                          size_t width) {
    char *packed = callocCheck((size_t)(n > 0 ? n : 1), width);
    for (int i = 0; i < n; i++) {
        ADFD_CHECK(strlen(strings[i]) < width, "name longer than %zu bytes: %s", width - 1,
                   strings[i]);
        memcpy(packed + (size_t)i * width, strings[i], strlen(strings[i]));
    }
    hid_t t = string_type(width);
    write_table(w, name, t, t, n, packed);
    H5Tclose(t);
    free(packed);
}

static void attr_double(hid_t file, const char *name, hid_t file_type, double value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    ADFD_CHECK(a >= 0, "cannot create attribute %s", name);
    ADFD_H5_CHECK(H5Awrite(a, H5T_NATIVE_DOUBLE, &value));
    H5Aclose(a);
    H5Sclose(space);
}

static void attr_string(hid_t file, const char *name, const char *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t t = string_type(strlen(value) + 1);
    hid_t a = H5Acreate2(file, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
    ADFD_CHECK(a >= 0, "cannot create attribute %s", name);
    ADFD_H5_CHECK(H5Awrite(a, t, value));
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(space);
}

static void write_attributes(store_writer *w, int n_clips) {
    const feature_params *p = &w->params;
    hid_t i32 = H5T_STD_I32LE, f32 = H5T_IEEE_F32LE;
    attr_double(w->file, "format_version", i32, ADFD_STORE_VERSION);
    attr_string(w->file, "preset", p->preset);
    attr_double(w->file, "sample_rate", i32, p->sample_rate);
    attr_double(w->file, "n_fft", i32, p->n_fft);
    attr_double(w->file, "win_length", i32, p->win_length);
    attr_double(w->file, "hop_length", i32, p->hop_length);
    attr_double(w->file, "n_mels", i32, p->n_mels);
    attr_double(w->file, "f_min", f32, p->f_min);
    attr_double(w->file, "f_max", f32, p->f_max);
    attr_double(w->file, "center", i32, p->center);
    attr_double(w->file, "power", f32, p->power);
    attr_double(w->file, "log_db", i32, p->log_db);
    attr_double(w->file, "trim_silence", i32, p->trim_silence);
    attr_double(w->file, "trim_db", f32, p->trim_db);
    attr_double(w->file, "repeat_pad", i32, p->repeat_pad);
    attr_double(w->file, "chunk_frames", i32, p->chunk_frames);
    attr_double(w->file, "chunk_hop", i32, p->chunk_hop);
    attr_string(w->file, "window", "hann_periodic");
    attr_string(w->file, "mel_scale", "htk");
    attr_string(w->file, "pad_mode", "reflect");
    attr_string(w->file, "source_meta", w->source_meta);
    attr_string(w->file, "source_checksum", w->source_checksum);
    attr_string(w->file, "adfd_version", ADFD_VERSION);
    attr_double(w->file, "n_rows", H5T_STD_I64LE, (double)w->n_rows);
    attr_double(w->file, "n_clips", i32, n_clips);
}

void store_writer_finish(store_writer *w, const store_tables *t) {
    hid_t group_ids[3];
    const char *groups[3] = {"clips", "speakers", "normalization"};
    for (int g = 0; g < 3; g++) {
        group_ids[g] = H5Gcreate2(w->file, groups[g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ADFD_CHECK(group_ids[g] >= 0, "cannot create group /%s", groups[g]);
    }
    write_strings(w, "clips/file", t->n_clips, t->file, ADFD_FILE_MAX);
    write_table(w, "clips/speaker", H5T_STD_I32LE, H5T_NATIVE_INT32, t->n_clips, t->speaker);
    write_table(w, "clips/label", H5T_STD_I32LE, H5T_NATIVE_INT32, t->n_clips, t->label);
    write_table(w, "clips/split", H5T_STD_I32LE, H5T_NATIVE_INT32, t->n_clips, t->split);
    write_table(w, "clips/seconds", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->n_clips, t->seconds);
    write_strings(w, "speakers/name", t->n_speakers, t->speaker_name, ADFD_SPEAKER_MAX);
    write_table(w, "normalization/mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ADFD_N_MELS,
                t->band_mean);
    write_table(w, "normalization/std", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ADFD_N_MELS, t->band_std);
    write_strings(w, "skipped", t->n_skipped, t->skipped, ADFD_FILE_MAX);
    if (t->row_clip) write_index(w, w->clip, t->row_clip);
    if (t->row_offset) write_index(w, w->offset, t->row_offset);
    write_attributes(w, t->n_clips);
    for (int g = 0; g < 3; g++)
        H5Gclose(group_ids[g]);
    H5Pclose(w->collective);
    H5Dclose(w->features);
    H5Dclose(w->clip);
    H5Dclose(w->offset);
    ADFD_H5_CHECK(H5Fclose(w->file));
    free(w);
}
