/* features: the mel front end (FFTW single precision, plans made once and reused) and cutting a
 * clip's spectrogram into [128,80] chunks, for the two presets of DESIGN.md section 3.
 *
 * Contract used by prepare/train/eval/analyze (keep these names and meanings):
 *  - every parameter that changes the numbers lives in feature_params and is stored in the
 *    feature file and the model file, so a model knows its front end;
 *  - a chunk is float32 [n_mels=128][chunk_frames=80], mel band major (row = band);
 *  - features are stored raw; the model applies (x - band_mean[b]) / band_std[b] per band
 *    (identity, mean 0 / std 1, for the seed preset).
 *
 * Numerical choices (each matches torchaudio 0.13 where torchaudio defines the step):
 *  - window: periodic Hann of win_length (torch.hann_window(periodic=True)), centred in n_fft
 *    when win_length < n_fft (as torch.stft does);
 *  - center=1: the signal is reflect-padded by n_fft/2 on both sides (torch.stft center=True,
 *    pad_mode="reflect"); frames = 1 + n/hop. For clips shorter than n_fft/2 + 1 samples, where
 *    torch refuses, the reflection is folded repeatedly (period 2(n-1));
 *  - power spectrogram |X|^2 of each frame's real FFT, single precision, through batched FFTW
 *    complex transforms (8 frames per call, one plan per front end), which FFTW's SIMD codelets
 *    run about 2x faster than its r2c plans: for n_fft a power of two, a frame's n_fft real
 *    samples as n_fft/2 complex ones, split into the n_fft/2+1 bins after; otherwise (seed, 400)
 *    two frames as the real and imaginary parts of one n_fft-point transform, separated after
 *    (src/features.c says why);
 *  - mel filterbank: torchaudio.functional.melscale_fbanks(n_fft/2+1, f_min, f_max, n_mels,
 *    sample_rate, norm=None, mel_scale="htk"), computed in double and rounded to float;
 *    the projection loops over each filter's non-zero bins only (about 2 per FFT bin);
 *  - log_db: 10*log10(max(x, 1e-10)) (torchaudio AmplitudeToDB("power", top_db=None)),
 *    evaluated by a polynomial in the mantissa (error < 2e-5 dB) because libm's log10f on 128
 *    bands per frame costs more than the FFT;
 *  - trim_silence: the clip is cut into blocks of hop_length samples; blocks whose mean square
 *    is more than trim_db below the loudest block are removed from the start and the end
 *    (nothing is trimmed from an all-zero clip);
 *  - repeat_pad: a clip with fewer samples than one chunk needs ((chunk_frames-1)*hop_length)
 *    is tiled (x[i % n]) up to that length before the STFT;
 *  - chunking: chunks start every chunk_hop frames; with repeat_pad the last chunk is moved to
 *    end at the last frame when the regular grid leaves a tail uncovered; without repeat_pad
 *    (seed) the spectrogram is padded on the right with "silence" (0, or -100 dB with log_db)
 *    to a multiple of chunk_frames (no padding when it already is one).
 *  - FFTW plans come from wisdom compiled into the library (measured once, src/features_wisdom.c)
 *    or, where it does not apply, FFTW_ESTIMATE: FFTW_MEASURE at run time may pick a different
 *    algorithm on each rank or run, which changes the last bits and would break "same file for
 *    any rank count". */
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
/* NULL + adfd_fail for parameters the front end cannot run (power other than 2, n_mels not 128,
 * win_length > n_fft, ...). Not thread-safe (FFTW planning): create front ends one at a time. */
mel_frontend *mel_frontend_create(const feature_params *p);
void mel_frontend_free(mel_frontend *fe);
const feature_params *mel_frontend_params(const mel_frontend *fe);
/* Whether the front end uses its AVX2 kernels (the default when the CPU has AVX2). enable = 0
 * selects the portable kernels, which give the same bits (the tests compare both). Returns the
 * setting now in effect. */
int mel_frontend_use_avx2(mel_frontend *fe, int enable);
/* Plans the FFTs of the front ends of params[0 .. n_params) with FFTW_MEASURE, after forgetting
 * all wisdom, and returns FFTW's wisdom text (free() it, NULL + message for bad parameters): how
 * src/features_wisdom.c is made (bench_features --wisdom). */
char *mel_frontend_measure_wisdom(const feature_params *params, int n_params);
/* Number of STFT frames for n samples (with centering). */
int64_t mel_frontend_frames(const mel_frontend *fe, int64_t n_samples);
/* mel is [n_mels][n_frames] (band major), n_frames = mel_frontend_frames(n). No trimming.
 * Applies log_db when the preset asks for it. */
void mel_spectrogram(mel_frontend *fe, const float *x, int64_t n, float *mel);
/* The filterbank [n_fft/2+1][n_mels] as torchaudio lays it out (for tests). */
void mel_frontend_filterbank(const mel_frontend *fe, float *fb);
/* The samples the preset keeps, [*begin, *end): with trim_silence, blocks of hop_length samples
 * whose mean square is more than trim_db below the loudest block are removed from both ends
 * (nothing for an all-zero clip); without it [0, n). features_clip_chunks applies it; analyze
 * calls it to know where the kept signal starts. */
void features_trim_bounds(const feature_params *p, const float *x, int64_t n, int64_t *begin,
                          int64_t *end);
/* The full per-clip pipeline of the preset: trim / repeat-pad, mel, chunks.
 * *chunks is [n_chunks][128][80] and *offsets [n_chunks] (first frame of each chunk), malloc'ed.
 * Always at least one chunk for n >= 1; -1 + message for n < 1. */
int features_clip_chunks(mel_frontend *fe, const float *x, int64_t n, float **chunks,
                         int32_t **offsets, int *n_chunks);
/* Room for one clip's chunks, asked for once their number is known: [n_chunks][128][80] floats
 * and n_chunks offsets. */
typedef struct {
    float *chunks;
    int32_t *offsets;
} chunk_storage;
typedef chunk_storage (*chunk_reserve_fn)(void *ctx, int n_chunks);
/* As features_clip_chunks, but the chunks are written where reserve(ctx, n_chunks) says (prepare
 * has them computed straight into the rows it writes, saving a copy of every byte). reserve is
 * called once, and only when the call succeeds. */
int features_clip_chunks_into(mel_frontend *fe, const float *x, int64_t n, chunk_reserve_fn reserve,
                              void *ctx, int *n_chunks);

#endif
