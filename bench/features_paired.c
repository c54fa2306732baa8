/* The mel front end as a shared library for bench/bench_features_paired.py, which times it and
 * torchaudio on the same clips in one process, alternating clip by clip (ctypes). Built from the
 * same sources and flags as adfd_core, so it runs the code `adfd prepare` runs. */
#include "adfd/features.h"
#include "adfd/util.h"

#include <stdio.h>
#include <stdlib.h>

/* A front end for preset "seed" or "default"; NULL (message on stderr) if it cannot be made. */
mel_frontend *paired_create(const char *preset) {
    feature_params p;
    mel_frontend *fe = feature_params_preset(&p, preset) == 0 ? mel_frontend_create(&p) : NULL;
    if (!fe) fprintf(stderr, "features_paired: %s\n", adfd_error());
    return fe;
}

int64_t paired_frames(const mel_frontend *fe, int64_t n_samples) {
    return mel_frontend_frames(fe, n_samples);
}

/* mel [n_mels][paired_frames(n)] of x[0..n) */
void paired_mel(mel_frontend *fe, const float *x, int64_t n, float *mel) {
    mel_spectrogram(fe, x, n, mel);
}

/* The whole per-clip pipeline of `adfd prepare` (trim, pad, chunks); returns the chunk count. */
int paired_clip_chunks(mel_frontend *fe, const float *x, int64_t n) {
    float *chunks;
    int32_t *off;
    int n_chunks;
    ADFD_CHECK(features_clip_chunks(fe, x, n, &chunks, &off, &n_chunks) == 0, "%s", adfd_error());
    free(chunks);
    free(off);
    return n_chunks;
}

void paired_free(mel_frontend *fe) {
    mel_frontend_free(fe);
}
