/* features: the mel front end (FFTW single precision, plans made once and reused) and cutting a
 * clip's spectrogram into [128,80] chunks, for the two presets of DESIGN.md section 3.
 *
 * Contract used by prepare/train/eval/analyze (keep these names and meanings):
 *  - every parameter that changes the numbers lives in feature_params and is stored in the
 *    feature file and the model file, so a model knows its front end;
 *  - a chunk is float32 [n_mels=128][chunk_frames=80], mel band major (row = band);
 *  - features are stored raw; the model applies (x - band_mean[b]) / band_std[b] per band
 *    (identity, mean 0 / std 1, for the seed preset). */
#ifndef ADFD_FEATURES_H
#define ADFD_FEATURES_H

#include <stdint.h>

#define ADFD_N_MELS 128
#define ADFD_CHUNK_FRAMES 80

typedef struct {
    char preset[16];  /* "seed" or "default" */
    int sample_rate;  /* 16000 */
    int n_fft;        /* seed 400, default 512 */
    int win_length;   /* periodic Hann window length */
    int hop_length;   /* 200 */
    int n_mels;       /* 128 */
    float f_min;      /* 0 */
    float f_max;      /* 8000 */
    int center;       /* 1: reflect padding by n_fft/2 on both sides (torch.stft center=True) */
    float power;      /* 2: power spectrogram */
    int log_db;       /* 0 seed; 1 default: 10*log10(max(x, 1e-10)) */
    int trim_silence; /* default: leading/trailing silence trimmed */
    float trim_db;    /* threshold below the clip's peak frame energy, dB */
    int repeat_pad;   /* default: clips shorter than a chunk are repeated in the waveform */
    int chunk_frames; /* 80 */
    int chunk_hop;    /* seed 80 (non-overlapping); default 40 */
} feature_params;

int feature_params_preset(feature_params *p, const char *preset); /* -1 + message if unknown */

typedef struct mel_frontend mel_frontend;
mel_frontend *mel_frontend_create(const feature_params *p);
void mel_frontend_free(mel_frontend *fe);
/* Number of STFT frames for n samples (with centering). */
int64_t mel_frontend_frames(const mel_frontend *fe, int64_t n_samples);
/* mel is [n_mels][n_frames] (band major), n_frames = mel_frontend_frames(n). No trimming. */
void mel_spectrogram(mel_frontend *fe, const float *x, int64_t n, float *mel);
/* The full per-clip pipeline of the preset: trim / repeat-pad, mel, chunks.
 * *chunks is [n_chunks][128][80] and *offsets [n_chunks] (first frame of each chunk), malloc'ed. */
int features_clip_chunks(mel_frontend *fe, const float *x, int64_t n, float **chunks,
                         int32_t **offsets, int *n_chunks);

#endif
