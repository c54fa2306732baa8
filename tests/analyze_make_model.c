/* Test helper: writes a model file for the analyze tests before a trained model exists.
 *   analyze_make_model OUT.h5 PRESET CHANNELS SEED THRESHOLD            random (PyTorch init)
 *   analyze_make_model OUT.h5 PRESET CHANNELS SEED THRESHOLD K M        hand-made "energy" model
 * The energy model's P(spoof) of a window is sigmoid(K * mean(maxpool(relu(x_norm))) - M): it
 * rises with the (normalised) loudness of the window, so the timeline of a clip that is quiet in
 * its first half and loud in its second is known in advance. For the default preset the band
 * normalisation is set too (random model: a different mean/std per band; energy model: -50/20). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/model.h"
#include "adfd/util.h"

static void make_energy_model(cnn_model *m, float k, float bias) {
    int C = m->channels;
    size_t pooled = (size_t)ADFD_POOL_H * ADFD_POOL_W;
    memset(m->params, 0, sizeof(float) * m->n_params);
    for (int c = 0; c < C; c++) {
        m->conv_w[c * 9 + 4] = 1.0f; /* centre tap: the conv passes the input through */
        m->bn_w[c] = 1.0f;
        m->bn_running_mean[c] = 0.0f;
        m->bn_running_var[c] = 1.0f;
    }
    for (size_t i = 0; i < (size_t)C * pooled; i++)
        m->linear_w[(size_t)C * pooled + i] = k / (C * pooled);
    m->linear_b[1] = -bias;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 8) {
        fprintf(stderr, "usage: %s OUT.h5 PRESET CHANNELS SEED THRESHOLD [K M]\n", argv[0]);
        return 2;
    }
    feature_params fp;
    if (feature_params_preset(&fp, argv[2]) != 0) {
        fprintf(stderr, "%s\n", adfd_error());
        return 1;
    }
    cnn_model m;
    if (model_create(&m, atoi(argv[3]), 0.2f, &fp, strtoull(argv[4], NULL, 10)) != 0) {
        fprintf(stderr, "%s\n", adfd_error());
        return 1;
    }
    m.threshold = strtof(argv[5], NULL);
    snprintf(m.threshold_method, sizeof m.threshold_method, "test model, fixed");
    snprintf(m.aggregate, sizeof m.aggregate, "rms");
    int energy = argc == 8;
    for (int b = 0; b < ADFD_N_MELS; b++) {
        int log_features = fp.log_db;
        m.band_mean[b] = !log_features ? 0.0f : energy ? -50.0f : -60.0f + 0.2f * b;
        m.band_std[b] = !log_features ? 1.0f : energy ? 20.0f : 15.0f + 0.05f * b;
    }
    if (energy) make_energy_model(&m, strtof(argv[6], NULL), strtof(argv[7], NULL));
    if (model_save(&m, argv[1]) != 0) {
        fprintf(stderr, "%s\n", adfd_error());
        return 1;
    }
    model_free(&m);
    return 0;
}
