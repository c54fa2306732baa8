/* The seed CNN: parameters in one buffer, PyTorch's default initialisation, inference, and the
 * model file (HDF5 with the PyTorch state_dict names, see docs/train.md). */
#include "adfd/model.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/layers.h"
#include "adfd/util.h"

#define POOLED_PER_SAMPLE(C) ((size_t)(C)*ADFD_POOL_H * ADFD_POOL_W)
#define SAMPLE_SIZE ((size_t)ADFD_N_MELS * ADFD_CHUNK_FRAMES)
#define PREDICT_BLOCK 64 /* chunks per inference block */

typedef struct {
    float *x; /* [PREDICT_BLOCK][128][80] normalised input */
    float logits[PREDICT_BLOCK * ADFD_N_CLASSES];
    float *mean, *invstd; /* [C] */
} predict_scratch;

size_t model_param_count(int channels) {
    return (size_t)channels * 9 + 3 * (size_t)channels +
           ADFD_N_CLASSES * POOLED_PER_SAMPLE(channels) + ADFD_N_CLASSES;
}

cnn_tensors model_tensors(float *base, int C) {
    cnn_tensors t;
    t.conv_w = base;
    t.conv_b = t.conv_w + 9 * C;
    t.bn_w = t.conv_b + C;
    t.bn_b = t.bn_w + C;
    t.linear_w = t.bn_b + C;
    t.linear_b = t.linear_w + ADFD_N_CLASSES * POOLED_PER_SAMPLE(C);
    return t;
}

/* U(-bound, bound) from (seed, tensor, element): PyTorch's kaiming_uniform(a=sqrt(5)) for
 * weights and its bias rule both give bound = 1/sqrt(fan_in). */
static void uniform_init(float *w, size_t n, float bound, uint64_t seed, uint64_t tensor) {
    for (size_t i = 0; i < n; i++)
        w[i] = (2.0f * rng_uniform(seed, tensor, i) - 1.0f) * bound;
}

static void model_allocate(cnn_model *m, int channels) {
    m->channels = channels;
    m->n_params = model_param_count(channels);
    /* the BatchNorm running statistics ride at the tail of the parameter allocation */
    m->params = callocCheck(m->n_params + 2 * (size_t)channels, sizeof(float));
    cnn_tensors t = model_tensors(m->params, channels);
    m->conv_w = t.conv_w;
    m->conv_b = t.conv_b;
    m->bn_w = t.bn_w;
    m->bn_b = t.bn_b;
    m->linear_w = t.linear_w;
    m->linear_b = t.linear_b;
    m->bn_running_mean = m->params + m->n_params;
    m->bn_running_var = m->bn_running_mean + channels;
    m->scratch = NULL;
}

int model_create(cnn_model *m, int channels, float dropout, const feature_params *features,
                 uint64_t seed) {
    memset(m, 0, sizeof *m);
    if (channels <= 0) return adfd_fail("model: channel count must be positive (got %d)", channels);
    if (!(dropout >= 0.0f && dropout < 1.0f))
        return adfd_fail("model: dropout must be in [0, 1) (got %g)", dropout);
    model_allocate(m, channels);
    m->dropout = dropout;
    if (features) m->features = *features;
    for (int b = 0; b < ADFD_N_MELS; b++) {
        m->band_mean[b] = 0.0f;
        m->band_std[b] = 1.0f;
    }
    m->threshold = 0.5f;
    snprintf(m->threshold_method, sizeof m->threshold_method, "default 0.5");
    snprintf(m->aggregate, sizeof m->aggregate, "rms");
    int C = channels;
    float conv_bound = 1.0f / 3.0f; /* fan_in = 1*3*3 */
    float linear_bound = 1.0f / sqrtf((float)POOLED_PER_SAMPLE(C));
    uniform_init(m->conv_w, 9 * (size_t)C, conv_bound, seed, 1);
    uniform_init(m->conv_b, C, conv_bound, seed, 2);
    uniform_init(m->linear_w, ADFD_N_CLASSES * POOLED_PER_SAMPLE(C), linear_bound, seed, 3);
    uniform_init(m->linear_b, ADFD_N_CLASSES, linear_bound, seed, 4);
    for (int c = 0; c < C; c++) {
        m->bn_w[c] = 1.0f;
        m->bn_b[c] = 0.0f;
        m->bn_running_mean[c] = 0.0f;
        m->bn_running_var[c] = 1.0f;
    }
    m->bn_num_batches_tracked = 0;
    return 0;
}

static void predict_scratch_free(predict_scratch *s) {
    if (!s) return;
    free(s->x);
    free(s->mean);
    free(s->invstd);
    free(s);
}

void model_free(cnn_model *m) {
    free(m->params);
    predict_scratch_free(m->scratch);
    memset(m, 0, sizeof *m);
}

int model_copy(cnn_model *dst, const cnn_model *src) {
    if (dst->params && dst->channels != src->channels)
        return adfd_fail("model_copy: %d channels into a model of %d", src->channels,
                         dst->channels);
    if (!dst->params) model_allocate(dst, src->channels);
    float *params = dst->params;
    void *scratch = dst->scratch;
    memcpy(params, src->params, (src->n_params + 2 * (size_t)src->channels) * sizeof(float));
    *dst = *src;
    /* keep dst's own buffers, re-pointed */
    dst->params = params;
    dst->scratch = scratch;
    cnn_tensors t = model_tensors(params, src->channels);
    dst->conv_w = t.conv_w;
    dst->conv_b = t.conv_b;
    dst->bn_w = t.bn_w;
    dst->bn_b = t.bn_b;
    dst->linear_w = t.linear_w;
    dst->linear_b = t.linear_b;
    dst->bn_running_mean = params + src->n_params;
    dst->bn_running_var = dst->bn_running_mean + src->channels;
    return 0;
}

/* ---------------- inference ---------------- */

int model_predict(cnn_model *m, const float *chunks, int n, float *p_spoof) {
    int C = m->channels;
    predict_scratch *s = m->scratch;
    if (!s) {
        s = callocCheck(1, sizeof *s);
        s->x = mallocCheck(PREDICT_BLOCK * SAMPLE_SIZE * sizeof(float));
        s->mean = mallocCheck((size_t)C * sizeof(float));
        s->invstd = mallocCheck((size_t)C * sizeof(float));
        m->scratch = s;
    }
    batchnorm_eval_stats(s->mean, s->invstd, m->bn_running_mean, m->bn_running_var, C);
    for (int start = 0; start < n; start += PREDICT_BLOCK) {
        int B = n - start < PREDICT_BLOCK ? n - start : PREDICT_BLOCK;
        for (int b = 0; b < B; b++)
            for (int band = 0; band < ADFD_N_MELS; band++) {
                const float *src =
                    chunks + (size_t)(start + b) * SAMPLE_SIZE + (size_t)band * ADFD_CHUNK_FRAMES;
                float *dst = s->x + (size_t)b * SAMPLE_SIZE + (size_t)band * ADFD_CHUNK_FRAMES;
                float mu = m->band_mean[band], inv = 1.0f / m->band_std[band];
                for (int t = 0; t < ADFD_CHUNK_FRAMES; t++)
                    dst[t] = (src[t] - mu) * inv;
            }
        /* the Linear dot products are taken as the block makes each pooled row: its output is
         * never stored */
        conv_bn_pool_linear_forward(s->logits, NULL, NULL, s->x, m->conv_w, m->conv_b, s->mean,
                                    s->invstd, m->bn_w, m->bn_b, NULL, m->linear_w, m->linear_b, B,
                                    C, ADFD_N_MELS, ADFD_CHUNK_FRAMES);
        for (int b = 0; b < B; b++) {
            /* P(class 1) of a 2-class softmax */
            float d = s->logits[2 * b] - s->logits[2 * b + 1];
            p_spoof[start + b] = 1.0f / (1.0f + expf(d));
        }
    }
    return 0;
}

float model_aggregate(const char *aggregate, const float *p_spoof, int n) {
    if (n <= 0) return 0.0f;
    double acc = 0.0;
    if (!strcmp(aggregate, "max")) {
        float best = p_spoof[0];
        for (int i = 1; i < n; i++)
            if (p_spoof[i] > best) best = p_spoof[i];
        return best;
    }
    if (!strcmp(aggregate, "mean")) {
        for (int i = 0; i < n; i++)
            acc += p_spoof[i];
        return (float)(acc / n);
    }
    /* "rms", the seed's rule */
    for (int i = 0; i < n; i++)
        acc += (double)p_spoof[i] * p_spoof[i];
    return (float)sqrt(acc / n);
}

/* ---------------- model file ---------------- */

static void write_float_dataset(hid_t file, const char *name, const float *data, int rank,
                                const hsize_t *dims) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    ADFD_H5_CHECK(space);
    hid_t ds = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ADFD_H5_CHECK(ds);
    ADFD_H5_CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5Dclose(ds);
    H5Sclose(space);
}

static void write_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                       const void *value, hsize_t n) {
    hid_t space = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    ADFD_H5_CHECK(attr);
    ADFD_H5_CHECK(H5Awrite(attr, mem_type, value));
    H5Aclose(attr);
    H5Sclose(space);
}

static void write_int_attr(hid_t obj, const char *name, int v) {
    write_attr(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v, 0);
}
static void write_float_attr(hid_t obj, const char *name, float v) {
    write_attr(obj, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, &v, 0);
}
static void write_string_attr(hid_t obj, const char *name, const char *v) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(v) + 1);
    H5Tset_strpad(type, H5T_STR_NULLTERM);
    write_attr(obj, name, type, type, v, 0);
    H5Tclose(type);
}

/* The feature_params fields, one attribute each (same names as in features.h5). */
#define FEATURE_INT_FIELDS(X)                                                                      \
    X(sample_rate)                                                                                 \
    X(n_fft)                                                                                       \
    X(win_length)                                                                                  \
    X(hop_length)                                                                                  \
    X(n_mels) X(center) X(log_db) X(trim_silence) X(repeat_pad) X(chunk_frames) X(chunk_hop)
#define FEATURE_FLOAT_FIELDS(X) X(f_min) X(f_max) X(power) X(trim_db)

int model_save(const cnn_model *m, const char *path) {
    char tmp[4096 + 32];
    atomic_tmp_name(tmp, sizeof tmp, path);
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) return adfd_fail("%s: cannot create the model file", path);
    int C = m->channels;
    hsize_t conv_dims[4] = {(hsize_t)C, 1, 3, 3}, c_dims[1] = {(hsize_t)C};
    hsize_t lin_dims[2] = {ADFD_N_CLASSES, POOLED_PER_SAMPLE(C)}, cls_dims[1] = {ADFD_N_CLASSES};
    hsize_t band_dims[1] = {ADFD_N_MELS};
    write_float_dataset(file, "layer1.0.weight", m->conv_w, 4, conv_dims);
    write_float_dataset(file, "layer1.0.bias", m->conv_b, 1, c_dims);
    write_float_dataset(file, "layer1.1.weight", m->bn_w, 1, c_dims);
    write_float_dataset(file, "layer1.1.bias", m->bn_b, 1, c_dims);
    write_float_dataset(file, "layer1.1.running_mean", m->bn_running_mean, 1, c_dims);
    write_float_dataset(file, "layer1.1.running_var", m->bn_running_var, 1, c_dims);
    hid_t scalar = H5Screate(H5S_SCALAR);
    hid_t nbt = H5Dcreate2(file, "layer1.1.num_batches_tracked", H5T_STD_I64LE, scalar, H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT);
    ADFD_H5_CHECK(nbt);
    ADFD_H5_CHECK(
        H5Dwrite(nbt, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &m->bn_num_batches_tracked));
    H5Dclose(nbt);
    H5Sclose(scalar);
    write_float_dataset(file, "layer2.weight", m->linear_w, 2, lin_dims);
    write_float_dataset(file, "layer2.bias", m->linear_b, 1, cls_dims);
    write_float_dataset(file, "band_mean", m->band_mean, 1, band_dims);
    write_float_dataset(file, "band_std", m->band_std, 1, band_dims);

    write_int_attr(file, "format_version", ADFD_MODEL_VERSION);
    write_string_attr(file, "architecture",
                      "Sequential(layer1=[Conv2d(1,C,3), BatchNorm2d(C), ReLU, MaxPool2d(2), "
                      "Dropout(p)], layer2=Linear(C*63*39, 2)); output 1 = spoof");
    write_int_attr(file, "channels", C);
    write_float_attr(file, "dropout", m->dropout);
    int input_shape[3] = {1, ADFD_N_MELS, ADFD_CHUNK_FRAMES};
    write_attr(file, "input_shape", H5T_STD_I32LE, H5T_NATIVE_INT, input_shape, 3);
    write_string_attr(file, "preset", m->features.preset);
#define W_INT(f) write_int_attr(file, #f, m->features.f);
#define W_FLOAT(f) write_float_attr(file, #f, m->features.f);
    FEATURE_INT_FIELDS(W_INT)
    FEATURE_FLOAT_FIELDS(W_FLOAT)
    write_float_attr(file, "threshold", m->threshold);
    write_string_attr(file, "threshold_method", m->threshold_method);
    write_string_attr(file, "aggregate", m->aggregate);
    if (H5Fclose(file) < 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return adfd_fail("%s: cannot write the model file", path);
    }
    return 0;
}

static int read_attr(hid_t file, const char *name, hid_t mem_type, void *out) {
    if (H5Aexists(file, name) <= 0) return -1;
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    herr_t rc = H5Aread(attr, mem_type, out);
    H5Aclose(attr);
    return rc < 0 ? -1 : 0;
}

static int read_string_attr(hid_t file, const char *name, char *out, size_t size) {
    if (H5Aexists(file, name) <= 0) return -1;
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    hid_t ftype = H5Aget_type(attr);
    size_t n = H5Tget_size(ftype);
    char *buf = callocCheck(n + 1, 1);
    hid_t mtype = H5Tcopy(H5T_C_S1);
    H5Tset_size(mtype, n);
    herr_t rc = H5Aread(attr, mtype, buf);
    snprintf(out, size, "%s", buf);
    free(buf);
    H5Tclose(mtype);
    H5Tclose(ftype);
    H5Aclose(attr);
    return rc < 0 ? -1 : 0;
}

/* Reads a dataset that must have exactly the shape dims[0..rank). */
static int read_dataset(hid_t file, const char *path, const char *name, hid_t mem_type, void *out,
                        int rank, const hsize_t *dims) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return adfd_fail("%s: not an adfd model: no dataset '%s'", path, name);
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t space = H5Dget_space(ds);
    int got_rank = H5Sget_simple_extent_ndims(space);
    hsize_t got[8] = {0};
    int ok = got_rank == rank;
    if (ok && rank > 0) {
        H5Sget_simple_extent_dims(space, got, NULL);
        for (int i = 0; i < rank; i++)
            ok = ok && got[i] == dims[i];
    }
    H5Sclose(space);
    if (!ok) {
        H5Dclose(ds);
        return adfd_fail("%s: dataset '%s' has the wrong shape for this architecture", path, name);
    }
    herr_t rc = H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(ds);
    return rc < 0 ? adfd_fail("%s: cannot read dataset '%s'", path, name) : 0;
}

static int model_load_file(cnn_model *m, hid_t file, const char *path) {
    int version = -1, C = 0;
    if (read_attr(file, "format_version", H5T_NATIVE_INT, &version) != 0)
        return adfd_fail("%s: not an adfd model (no format_version attribute)", path);
    if (version != ADFD_MODEL_VERSION)
        return adfd_fail("%s: model format version %d, this adfd reads version %d", path, version,
                         ADFD_MODEL_VERSION);
    if (read_attr(file, "channels", H5T_NATIVE_INT, &C) != 0 || C <= 0 || C > 1 << 16)
        return adfd_fail("%s: missing or invalid 'channels' attribute", path);
    int input_shape[3] = {0};
    if (read_attr(file, "input_shape", H5T_NATIVE_INT, input_shape) != 0 || input_shape[0] != 1 ||
        input_shape[1] != ADFD_N_MELS || input_shape[2] != ADFD_CHUNK_FRAMES)
        return adfd_fail("%s: input shape is not [1,%d,%d]", path, ADFD_N_MELS, ADFD_CHUNK_FRAMES);
    memset(m, 0, sizeof *m);
    model_allocate(m, C);
    hsize_t conv_dims[4] = {(hsize_t)C, 1, 3, 3}, c_dims[1] = {(hsize_t)C};
    hsize_t lin_dims[2] = {ADFD_N_CLASSES, POOLED_PER_SAMPLE(C)}, cls_dims[1] = {ADFD_N_CLASSES};
    hsize_t band_dims[1] = {ADFD_N_MELS};
    hid_t F = H5T_NATIVE_FLOAT;
    if (read_dataset(file, path, "layer1.0.weight", F, m->conv_w, 4, conv_dims) ||
        read_dataset(file, path, "layer1.0.bias", F, m->conv_b, 1, c_dims) ||
        read_dataset(file, path, "layer1.1.weight", F, m->bn_w, 1, c_dims) ||
        read_dataset(file, path, "layer1.1.bias", F, m->bn_b, 1, c_dims) ||
        read_dataset(file, path, "layer1.1.running_mean", F, m->bn_running_mean, 1, c_dims) ||
        read_dataset(file, path, "layer1.1.running_var", F, m->bn_running_var, 1, c_dims) ||
        read_dataset(file, path, "layer1.1.num_batches_tracked", H5T_NATIVE_INT64,
                     &m->bn_num_batches_tracked, 0, NULL) ||
        read_dataset(file, path, "layer2.weight", F, m->linear_w, 2, lin_dims) ||
        read_dataset(file, path, "layer2.bias", F, m->linear_b, 1, cls_dims) ||
        read_dataset(file, path, "band_mean", F, m->band_mean, 1, band_dims) ||
        read_dataset(file, path, "band_std", F, m->band_std, 1, band_dims))
        return -1;
    int missing = read_attr(file, "dropout", H5T_NATIVE_FLOAT, &m->dropout) ||
                  read_string_attr(file, "preset", m->features.preset, sizeof m->features.preset) ||
                  read_attr(file, "threshold", H5T_NATIVE_FLOAT, &m->threshold) ||
                  read_string_attr(file, "threshold_method", m->threshold_method,
                                   sizeof m->threshold_method) ||
                  read_string_attr(file, "aggregate", m->aggregate, sizeof m->aggregate);
#define R_INT(f) missing = missing || read_attr(file, #f, H5T_NATIVE_INT, &m->features.f);
#define R_FLOAT(f) missing = missing || read_attr(file, #f, H5T_NATIVE_FLOAT, &m->features.f);
    FEATURE_INT_FIELDS(R_INT)
    FEATURE_FLOAT_FIELDS(R_FLOAT)
    if (missing) return adfd_fail("%s: a metadata attribute of the model is missing", path);
    for (int b = 0; b < ADFD_N_MELS; b++)
        if (!(m->band_std[b] > 0.0f)) return adfd_fail("%s: band_std[%d] is not positive", path, b);
    return 0;
}

int model_load(cnn_model *m, const char *path) {
    memset(m, 0, sizeof *m);
    if (!path_exists(path)) return adfd_fail("%s: no such model file", path);
    H5E_auto2_t old_func;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages, not HDF5's error stack */
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc;
    if (file < 0)
        rc = adfd_fail("%s: not an HDF5 file (or unreadable)", path);
    else {
        rc = model_load_file(m, file, path);
        H5Fclose(file);
    }
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    if (rc != 0) model_free(m);
    return rc;
}
