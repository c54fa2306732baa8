/* model: the seed CNN (DESIGN.md section 5) with its parameters in one buffer, inference, and
 * the model file (HDF5, tensors under the PyTorch state_dict names).
 *
 * Contract used by train/grid/eval/analyze (keep these names and meanings; the owner of this
 * module may add fields and functions):
 *  - class 1 = spoof; a chunk's score is P(spoof);
 *  - inputs are raw feature chunks [n][128][80]; model_predict applies the stored per-band
 *    normalisation (x - band_mean[b]) / band_std[b] itself. */
#ifndef ADFD_MODEL_H
#define ADFD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "adfd/features.h"

#define ADFD_MODEL_VERSION 1

typedef struct {
    int channels;                 /* C */
    float dropout;                /* p, training only */
    feature_params features;      /* the front end the model was trained on */
    float band_mean[ADFD_N_MELS]; /* normalisation applied to raw chunks */
    float band_std[ADFD_N_MELS];
    float threshold;           /* decision threshold on P(spoof) */
    char threshold_method[64]; /* e.g. "eer on test split", "default 0.5" */
    char aggregate[16];        /* clip score from chunk scores: "rms" (seed), "mean", "max" */
    float *params;             /* one allocation: every trainable tensor points into it */
    size_t n_params;
    float *conv_w, *conv_b, *bn_w, *bn_b, *linear_w, *linear_b;
    float *bn_running_mean, *bn_running_var; /* BatchNorm buffers (not trained) */
    int64_t bn_num_batches_tracked;
    void *scratch; /* inference activations, owned by the model */
} cnn_model;

/* Shapes of the seed CNN: input [1,128,80] -> conv [C,126,78] -> pooled [C,63,39] -> [2]. */
#define ADFD_CONV_H (ADFD_N_MELS - 2)
#define ADFD_CONV_W (ADFD_CHUNK_FRAMES - 2)
#define ADFD_POOL_H (ADFD_CONV_H / 2)
#define ADFD_POOL_W (ADFD_CONV_W / 2)
#define ADFD_N_CLASSES 2

/* The trainable tensors inside one flat buffer (parameters, gradients, Adam moments share it):
 * conv_w [C,1,3,3], conv_b [C], bn_w [C], bn_b [C], linear_w [2, C*63*39] (C,H,W order),
 * linear_b [2]. */
typedef struct {
    float *conv_w, *conv_b, *bn_w, *bn_b, *linear_w, *linear_b;
} cnn_tensors;
size_t model_param_count(int channels);
cnn_tensors model_tensors(float *base, int channels);

/* Allocates a model with C channels and PyTorch's default initialisation from seed. */
int model_create(cnn_model *m, int channels, float dropout, const feature_params *features,
                 uint64_t seed);
void model_free(cnn_model *m);
/* Copies parameters, buffers and metadata (dst must have the same channel count or be zeroed). */
int model_copy(cnn_model *dst, const cnn_model *src);
/* Written under a temporary name and renamed. */
int model_save(const cnn_model *m, const char *path);
/* -1 + message on a missing file, another format version or inconsistent shapes. */
int model_load(cnn_model *m, const char *path);
/* p_spoof[i] = P(spoof) of chunk i (eval mode: BatchNorm running statistics, no dropout). */
int model_predict(cnn_model *m, const float *chunks, int n, float *p_spoof);
/* Clip score from chunk scores by m->aggregate ("rms": sqrt(mean(p^2)), "mean", "max"). */
float model_aggregate(const char *aggregate, const float *p_spoof, int n);

#endif
