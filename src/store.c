/* store (reader): opens features.h5 on one process, loads the clip table and row index, and
 * reads feature rows on demand. The writer is in store_writer.c. */
#include "adfd/store.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/util.h"

/* Reads a scalar numeric attribute of the root group into a double; -1 if missing. */
static int read_attr_double(hid_t file, const char *name, double *out) {
    if (H5Aexists(file, name) <= 0) return -1;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Aread(a, H5T_NATIVE_DOUBLE, out);
    if (a >= 0) H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

/* Reads a fixed-length string attribute into out[size]; -1 if missing. */
static int read_attr_string(hid_t file, const char *name, char *out, size_t size) {
    if (H5Aexists(file, name) <= 0) return -1;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, size);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    herr_t rc = H5Aread(a, t, out);
    H5Tclose(t);
    H5Aclose(a);
    out[size - 1] = '\0';
    return rc < 0 ? -1 : 0;
}

/* Length of the 1-D dataset NAME, or -1 if it is missing or not 1-D. */
static int64_t dataset_length(hid_t file, const char *name) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[3] = {0, 0, 0};
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    return rank == 1 ? (int64_t)dims[0] : -1;
}

/* Reads the whole 1-D dataset NAME (n values of mem_type) into buf. */
static int read_all(hid_t file, const char *name, hid_t mem_type, void *buf) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return -1;
    herr_t rc = H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    return rc < 0 ? -1 : 0;
}

static int read_strings(hid_t file, const char *name, size_t width, void *buf) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, width);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    int rc = read_all(file, name, t, buf);
    H5Tclose(t);
    return rc;
}

/* The feature_params attributes, named as the struct fields. */
static int read_params(hid_t file, feature_params *p) {
    struct {
        const char *name;
        int *i;
        float *f;
    } fields[] = {
        {"sample_rate", &p->sample_rate, NULL},
        {"n_fft", &p->n_fft, NULL},
        {"win_length", &p->win_length, NULL},
        {"hop_length", &p->hop_length, NULL},
        {"n_mels", &p->n_mels, NULL},
        {"f_min", NULL, &p->f_min},
        {"f_max", NULL, &p->f_max},
        {"center", &p->center, NULL},
        {"power", NULL, &p->power},
        {"log_db", &p->log_db, NULL},
        {"trim_silence", &p->trim_silence, NULL},
        {"trim_db", NULL, &p->trim_db},
        {"repeat_pad", &p->repeat_pad, NULL},
        {"chunk_frames", &p->chunk_frames, NULL},
        {"chunk_hop", &p->chunk_hop, NULL},
    };
    memset(p, 0, sizeof *p);
    if (read_attr_string(file, "preset", p->preset, sizeof p->preset) < 0) return -1;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        double v;
        if (read_attr_double(file, fields[i].name, &v) < 0) return -1;
        if (fields[i].i)
            *fields[i].i = (int)v;
        else
            *fields[i].f = (float)v;
    }
    return 0;
}

static int open_fail(feature_store *s, const char *path, const char *what) {
    store_close(s);
    return adfd_fail("%s: %s", path, what);
}

int store_open(feature_store *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->h5_file = s->h5_features = -1;
    if (!path_exists(path)) return adfd_fail("%s: no such feature file", path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_locking(fapl, 0, 1); /* many cluster file systems have no flock */
    hid_t file;
    H5E_BEGIN_TRY {
        file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    }
    H5E_END_TRY;
    H5Pclose(fapl);
    if (file < 0) return adfd_fail("%s: not an HDF5 file (or unreadable)", path);
    s->h5_file = file;
    int ok = 1;
    double version = -1;
    H5E_BEGIN_TRY {
        if (read_attr_double(file, "format_version", &version) < 0) ok = 0;
    }
    H5E_END_TRY;
    if (!ok) return open_fail(s, path, "not an adfd feature file (no format_version attribute)");
    s->format_version = (int)version;
    if (s->format_version != ADFD_STORE_VERSION) {
        store_close(s);
        return adfd_fail("%s: feature file format version %d, this adfd reads version %d "
                         "(re-run adfd prepare)",
                         path, (int)version, ADFD_STORE_VERSION);
    }
    H5E_BEGIN_TRY {
        ok = read_params(file, &s->params) == 0 &&
             read_attr_string(file, "source_meta", s->source_meta, sizeof s->source_meta) == 0 &&
             read_attr_string(file, "source_checksum", s->source_checksum,
                              sizeof s->source_checksum) == 0;
        s->n_rows = dataset_length(file, "clip");
        int64_t n_clips = dataset_length(file, "clips/file");
        int64_t n_speakers = dataset_length(file, "speakers/name");
        ok = ok && s->n_rows >= 0 && dataset_length(file, "offset") == s->n_rows && n_clips >= 0 &&
             n_speakers >= 0 && dataset_length(file, "clips/speaker") == n_clips &&
             dataset_length(file, "clips/label") == n_clips &&
             dataset_length(file, "clips/split") == n_clips &&
             dataset_length(file, "clips/seconds") == n_clips &&
             dataset_length(file, "normalization/mean") == ADFD_N_MELS &&
             dataset_length(file, "normalization/std") == ADFD_N_MELS;
        if (ok) {
            s->n_clips = (int)n_clips;
            s->n_speakers = (int)n_speakers;
            s->row_clip = mallocCheck((size_t)s->n_rows * sizeof(int32_t));
            s->row_offset = mallocCheck((size_t)s->n_rows * sizeof(int32_t));
            s->clip_file = mallocCheck((size_t)n_clips * sizeof *s->clip_file);
            s->clip_speaker = mallocCheck((size_t)n_clips * sizeof(int32_t));
            s->clip_label = mallocCheck((size_t)n_clips * sizeof(int32_t));
            s->clip_split = mallocCheck((size_t)n_clips * sizeof(int32_t));
            s->clip_seconds = mallocCheck((size_t)n_clips * sizeof(float));
            s->speaker_name = mallocCheck((size_t)n_speakers * sizeof *s->speaker_name);
            ok = read_all(file, "clip", H5T_NATIVE_INT32, s->row_clip) == 0 &&
                 read_all(file, "offset", H5T_NATIVE_INT32, s->row_offset) == 0 &&
                 read_strings(file, "clips/file", ADFD_FILE_MAX, s->clip_file) == 0 &&
                 read_all(file, "clips/speaker", H5T_NATIVE_INT32, s->clip_speaker) == 0 &&
                 read_all(file, "clips/label", H5T_NATIVE_INT32, s->clip_label) == 0 &&
                 read_all(file, "clips/split", H5T_NATIVE_INT32, s->clip_split) == 0 &&
                 read_all(file, "clips/seconds", H5T_NATIVE_FLOAT, s->clip_seconds) == 0 &&
                 read_strings(file, "speakers/name", ADFD_SPEAKER_MAX, s->speaker_name) == 0 &&
                 read_all(file, "normalization/mean", H5T_NATIVE_FLOAT, s->band_mean) == 0 &&
                 read_all(file, "normalization/std", H5T_NATIVE_FLOAT, s->band_std) == 0;
        }
        if (ok) {
            hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
            H5Pset_chunk_cache(dapl, 0, 0, 1.0); /* direct reads: see store.h */
            s->h5_features = H5Dopen2(file, "features", dapl);
            H5Pclose(dapl);
            hsize_t dims[3] = {0, 0, 0};
            if (s->h5_features >= 0) {
                hid_t sp = H5Dget_space(s->h5_features);
                ok = H5Sget_simple_extent_dims(sp, dims, NULL) == 3;
                H5Sclose(sp);
            }
            ok = ok && s->h5_features >= 0 && (int64_t)dims[0] == s->n_rows &&
                 dims[1] == ADFD_N_MELS && dims[2] == ADFD_CHUNK_FRAMES;
        }
    }
    H5E_END_TRY;
    if (!ok)
        return open_fail(s, path,
                         "damaged feature file (a dataset or attribute is missing "
                         "or has the wrong shape)");
    for (int64_t r = 0; r < s->n_rows; r++)
        if (s->row_clip[r] < 0 || s->row_clip[r] >= s->n_clips)
            return open_fail(s, path, "damaged feature file (/clip points outside /clips)");
    for (int c = 0; c < s->n_clips; c++) {
        s->clip_file[c][ADFD_FILE_MAX - 1] = '\0';
        if (s->clip_speaker[c] < 0 || s->clip_speaker[c] >= s->n_speakers)
            return open_fail(s, path, "damaged feature file (a speaker id is out of range)");
    }
    for (int c = 0; c < s->n_speakers; c++)
        s->speaker_name[c][ADFD_SPEAKER_MAX - 1] = '\0';
    return 0;
}

typedef struct {
    int64_t row;
    int position; /* index into the caller's request */
} row_request;

static int compare_requests(const void *a, const void *b) {
    const row_request *x = a, *y = b;
    if (x->row != y->row) return x->row < y->row ? -1 : 1;
    return x->position - y->position;
}

/* Reads rows [first, first+count) into dst [count][128][80]. */
static int read_run(feature_store *s, int64_t first, int64_t count, float *dst) {
    hsize_t start[3] = {(hsize_t)first, 0, 0};
    hsize_t size[3] = {(hsize_t)count, ADFD_N_MELS, ADFD_CHUNK_FRAMES};
    hid_t file_space = H5Dget_space(s->h5_features);
    hid_t mem_space = H5Screate_simple(3, size, NULL);
    herr_t rc = H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, size, NULL);
    if (rc >= 0)
        rc = H5Dread(s->h5_features, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, dst);
    H5Sclose(mem_space);
    H5Sclose(file_space);
    return rc < 0 ? -1 : 0;
}

int store_read_rows(feature_store *s, const int64_t *rows, int n, float *out) {
    const size_t row_values = (size_t)ADFD_N_MELS * ADFD_CHUNK_FRAMES;
    row_request *req = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *req);
    for (int i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= s->n_rows) {
            free(req);
            return adfd_fail("feature file: row %lld out of range (0..%lld)", (long long)rows[i],
                             (long long)s->n_rows - 1);
        }
        req[i].row = rows[i];
        req[i].position = i;
    }
    qsort(req, (size_t)n, sizeof *req, compare_requests);
    /* distinct rows in increasing order, read into a staging buffer run by run */
    float *staging = mallocCheck((size_t)(n > 0 ? n : 1) * row_values * sizeof(float));
    int rc = 0, n_distinct = 0;
    for (int i = 0; i < n && rc == 0;) {
        int64_t first = req[i].row, count = 0;
        int j = i;
        while (j < n && req[j].row <= first + count) {
            if (req[j].row == first + count) count++;
            j++;
        }
        rc = read_run(s, first, count, staging + (size_t)n_distinct * row_values);
        /* scatter: request k of this run gets distinct row n_distinct + (row - first) */
        for (int k = i; k < j && rc == 0; k++)
            memcpy(out + (size_t)req[k].position * row_values,
                   staging + (size_t)(n_distinct + (req[k].row - first)) * row_values,
                   row_values * sizeof(float));
        n_distinct += (int)count;
        i = j;
    }
    free(staging);
    free(req);
    return rc < 0 ? adfd_fail("feature file: reading /features failed (damaged file?)") : 0;
}

void store_close(feature_store *s) {
    if (s->h5_features >= 0) H5Dclose(s->h5_features);
    if (s->h5_file >= 0) H5Fclose(s->h5_file);
    free(s->row_clip);
    free(s->row_offset);
    free(s->clip_file);
    free(s->clip_speaker);
    free(s->clip_label);
    free(s->clip_split);
    free(s->clip_seconds);
    free(s->speaker_name);
    memset(s, 0, sizeof *s);
    s->h5_file = s->h5_features = -1;
}
