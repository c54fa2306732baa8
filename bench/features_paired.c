/* The mel front end as a shared library for bench/bench_features_paired.py, which times it and
 * torchaudio on the same clips in one process, taking turns (ctypes). Built from the same sources
 * and flags as adfd_core, so it runs the code `adfd prepare` runs. The script calls
 * mel_frontend_frames, mel_spectrogram and mel_frontend_free directly; these two functions are
 * what it cannot: a front end from a preset name (feature_params is a C struct), and the clip
 * pipeline with its buffers freed. */
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
