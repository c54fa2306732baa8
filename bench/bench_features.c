/* Feature computation speed from decoded PCM, one thread: audio-seconds per second of
 * mel_spectrogram (the transform torchaudio's MelSpectrogram does) and of the whole per-clip
 * pipeline features_clip_chunks, for both presets; and mel_spectrogram on one clip repeated
 * (input in cache), to show what reading the input from memory costs.
 * The ratios against torchaudio come from bench/bench_features_paired.py (both in one process,
 * taking turns); this program shows adfd alone and the cost of streaming the input.
 * Time is this process's CPU time (the machines we share are loaded; wall time is noise).
 *
 * Usage:
 *   bench_features WAV CLIP_SECONDS MIN_SECONDS_OF_TIMING
 *   bench_features --wisdom   (measures the FFT plans of both presets, prints FFTW's wisdom)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adfd/audio.h"
#include "adfd/features.h"
#include "adfd/util.h"

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs the preset over the clips of the signal until min_time has passed; audio-s per second. */
static double bench(mel_frontend *fe, const float *x, int64_t n, int64_t clip, double min_time,
                    int pipeline) {
    float *mel = mallocCheck((size_t)ADFD_N_MELS * (mel_frontend_frames(fe, clip) + 1) * 4);
    double audio = 0.0, t0 = cpu_seconds(), checksum = 0.0;
    do {
        for (int64_t s = 0; s + clip <= n; s += clip) {
            if (pipeline) {
                float *chunks;
                int32_t *off;
                int k;
                ADFD_CHECK(features_clip_chunks(fe, x + s, clip, &chunks, &off, &k) == 0, "%s",
                           adfd_error());
                checksum += chunks[0];
                free(chunks);
                free(off);
            } else {
                mel_spectrogram(fe, x + s, clip, mel);
                checksum += mel[0];
            }
            audio += (double)clip / ADFD_SAMPLE_RATE;
        }
    } while (cpu_seconds() - t0 < min_time);
    double rate = audio / (cpu_seconds() - t0);
    free(mel);
    if (checksum == 12345.678) printf("(checksum)\n"); /* keeps the work observable */
    return rate;
}

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 2 && !strcmp(argv[1], "--wisdom"))) {
        fprintf(stderr, "usage: bench_features WAV CLIP_SECONDS MIN_TIMING_SECONDS\n"
                        "       bench_features --wisdom   (prints src/features_wisdom.c's text)\n");
        return 2;
    }
    const char *presets[2] = {"seed", "default"};
    if (argc == 2 && !strcmp(argv[1], "--wisdom")) { /* src/features_wisdom.c */
        feature_params params[2];
        for (int p = 0; p < 2; p++)
            feature_params_preset(&params[p], presets[p]);
        char *wisdom = mel_frontend_measure_wisdom(params, 2);
        ADFD_CHECK(wisdom != NULL, "%s", adfd_error());
        fputs(wisdom, stdout);
        free(wisdom);
        return 0;
    }
    float *x;
    int64_t n;
    if (audio_load(argv[1], &x, &n) != 0) {
        fprintf(stderr, "%s\n", adfd_error());
        return 1;
    }
    int64_t clip = (int64_t)(atof(argv[2]) * ADFD_SAMPLE_RATE);
    double min_time = atof(argv[3]);
    for (int p = 0; p < 2; p++) {
        feature_params params;
        feature_params_preset(&params, presets[p]);
        mel_frontend *fe = mel_frontend_create(&params);
        double mel = bench(fe, x, n, clip, min_time, 0);
        double pipe = bench(fe, x, n, clip, min_time, 1);
        /* the first clip again and again: its samples stay in cache, where the 15 MB input of
         * the lines above comes from memory (extra line, not in the ratios) */
        double cached = bench(fe, x, clip, clip, min_time, 0);
        printf("c %s mel_spectrogram %.0f audio-s/s\n", presets[p], mel);
        printf("c %s clip_chunks %.0f audio-s/s\n", presets[p], pipe);
        printf("c %s mel_spectrogram_cached_clip %.0f audio-s/s\n", presets[p], cached);
        mel_frontend_free(fe);
    }
    free(x);
    return 0;
}
