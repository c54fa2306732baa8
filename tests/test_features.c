/* Compares the C front end with torchaudio 0.13 (tests/ref/mel_ref.bin, made by
 * tests/ref/make_mel_ref.py): both filterbanks, the seed chunks (relative 1e-4 on every value
 * above 1e-6 of the clip's maximum) and the default chunks (log-mel dB: 1e-3 dB absolute where
 * the power is above 1e-6 of the maximum, i.e. within 60 dB of the peak; 0.05 dB elsewhere down
 * to the 1e-10 floor), plus chunk counts and offsets; and both presets on short and odd-length
 * signals against a direct DFT in double. */
#include <stdlib.h>
#include <string.h>

#include "adfd/features.h"
#include "adfd/util.h"
#include "check.h"

static FILE *ref;

static void read_exact(void *dst, size_t size) {
    if (fread(dst, 1, size, ref) != size) {
        fprintf(stderr, "test_features: tests/ref/mel_ref.bin is truncated\n");
        exit(1);
    }
}

static int32_t read_i32(void) {
    int32_t v;
    read_exact(&v, sizeof v);
    return v;
}

static void compare_filterbank(const char *preset) {
    int32_t n_freq = read_i32(), n_mels = read_i32();
    float *want = mallocCheck((size_t)n_freq * n_mels * sizeof(float));
    float *got = mallocCheck((size_t)n_freq * n_mels * sizeof(float));
    read_exact(want, (size_t)n_freq * n_mels * sizeof(float));
    feature_params p;
    feature_params_preset(&p, preset);
    mel_frontend *fe = mel_frontend_create(&p);
    CHECK(n_freq == p.n_fft / 2 + 1 && n_mels == p.n_mels, "%s filterbank shape", preset);
    mel_frontend_filterbank(fe, got);
    double worst = 0.0;
    for (int i = 0; i < n_freq * n_mels; i++)
        worst = fmax(worst, fabs(got[i] - want[i]));
    CHECK(worst == 0.0, "%s filterbank differs by %g", preset, worst);
    mel_frontend_free(fe);
    free(want);
    free(got);
}

/* Seed: relative error on values above 1e-6 of the maximum. */
static double seed_error(const float *got, const float *want, size_t n) {
    float peak = 0.0f;
    for (size_t i = 0; i < n; i++)
        peak = fmaxf(peak, want[i]);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        if (want[i] > 1e-6f * peak)
            worst = fmax(worst, fabs(got[i] - want[i]) / want[i]);
        else
            CHECK(fabs(got[i] - want[i]) <= 1e-6 * peak, "tiny seed value %zu", i);
    return worst;
}

/* Default (dB): absolute error within 60 dB of the peak; looser below, where float32 FFT noise
 * of the loudest bins dominates both implementations. */
static double default_error(const float *got, const float *want, size_t n, double *worst_quiet) {
    float peak = -1000.0f;
    for (size_t i = 0; i < n; i++)
        peak = fmaxf(peak, want[i]);
    double worst = 0.0;
    *worst_quiet = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]);
        if (want[i] > peak - 60.0f)
            worst = fmax(worst, e);
        else
            *worst_quiet = fmax(*worst_quiet, e);
    }
    return worst;
}

/* The portable kernels give the same bits as the AVX2 ones (when the CPU has AVX2), on the whole
 * clip and on a cut that leaves a last group of fewer than 8 frames. */
static void compare_kernels(int clip, mel_frontend *fe, const float *x, int64_t n) {
    if (!mel_frontend_use_avx2(fe, 1)) {
        printf("clip %d: no AVX2 on this CPU, portable kernels only\n", clip);
        return;
    }
    int64_t lengths[2] = {n, n > 2001 ? n - 2001 : n};
    for (int i = 0; i < 2; i++) {
        int64_t frames = mel_frontend_frames(fe, lengths[i]);
        size_t values = (size_t)ADFD_N_MELS * frames;
        float *fast = mallocCheck(values * sizeof(float)),
              *plain = mallocCheck(values * sizeof(float));
        mel_spectrogram(fe, x, lengths[i], fast);
        mel_frontend_use_avx2(fe, 0);
        mel_spectrogram(fe, x, lengths[i], plain);
        mel_frontend_use_avx2(fe, 1);
        CHECK(!memcmp(fast, plain, values * sizeof(float)),
              "clip %d %s, %lld frames: AVX2 and portable kernels differ", clip,
              mel_frontend_params(fe)->preset, (long long)frames);
        free(fast);
        free(plain);
    }
}

static void compare_clip(int clip, mel_frontend *seed, mel_frontend *def) {
    int64_t n;
    read_exact(&n, sizeof n);
    int16_t *pcm = mallocCheck((size_t)n * sizeof *pcm);
    read_exact(pcm, (size_t)n * sizeof *pcm);
    float *x = mallocCheck((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)pcm[i] / 32768.0f;
    mel_frontend *fes[2] = {seed, def};
    for (int k = 0; k < 2; k++) {
        compare_kernels(clip, fes[k], x, n);
        int32_t n_want = read_i32();
        int32_t *off_want = mallocCheck((size_t)n_want * sizeof(int32_t));
        read_exact(off_want, (size_t)n_want * sizeof(int32_t));
        size_t values = (size_t)n_want * ADFD_N_MELS * ADFD_CHUNK_FRAMES;
        float *want = mallocCheck(values * sizeof(float));
        read_exact(want, values * sizeof(float));
        float *got;
        int32_t *off_got;
        int n_got;
        CHECK(features_clip_chunks(fes[k], x, n, &got, &off_got, &n_got) == 0, "%s", adfd_error());
        CHECK(n_got == n_want, "clip %d %s: %d chunks, torchaudio %d", clip, k ? "default" : "seed",
              n_got, n_want);
        if (n_got == n_want) {
            for (int c = 0; c < n_got; c++)
                CHECK(off_got[c] == off_want[c], "clip %d chunk %d offset %d vs %d", clip, c,
                      off_got[c], off_want[c]);
            if (k == 0) {
                double e = seed_error(got, want, values);
                printf("clip %d seed: %d chunks, max relative error %.3g\n", clip, n_got, e);
                CHECK(e < 1e-4, "clip %d seed relative error %g", clip, e);
            } else {
                double quiet, e = default_error(got, want, values, &quiet);
                printf("clip %d default: %d chunks, max error %.3g dB (%.3g dB below -60 dB)\n",
                       clip, n_got, e, quiet);
                CHECK(e < 1e-3, "clip %d default error %g dB", clip, e);
                CHECK(quiet < 0.05, "clip %d default error %g dB on quiet bins", clip, quiet);
            }
        }
        free(got);
        free(off_got);
        free(want);
        free(off_want);
    }
    free(pcm);
    free(x);
}

/* Position i of the reflect-padded signal x[0..n) (torch "reflect", folded again and again for
 * clips shorter than the padding), written here from the definition. */
static double reflected(const float *x, int64_t n, int64_t i) {
    if (n == 1) return x[0];
    int64_t period = 2 * (n - 1), j = ((i % period) + period) % period;
    return x[j < n ? j : period - j];
}

/* mel_spectrogram against the textbook in double: each frame of the padded signal times the
 * periodic Hann window, its DFT summed directly (no FFT), |X|^2, times the filterbank. Short and
 * odd lengths: frames that read the padding, groups of fewer than 8 frames, a frame pair whose
 * second frame is past the end (seed). Same limits as against torchaudio. */
static void compare_direct_dft(mel_frontend *fe) {
    const feature_params *p = mel_frontend_params(fe);
    int n_fft = p->n_fft, n_freq = n_fft / 2 + 1;
    float *fb = mallocCheck((size_t)n_freq * p->n_mels * sizeof(float));
    mel_frontend_filterbank(fe, fb);
    const int64_t lengths[] = {1, 150, 401, 1999, 7001};
    for (int l = 0; l < 5; l++) {
        int64_t n = lengths[l], frames = mel_frontend_frames(fe, n);
        float *x = mallocCheck((size_t)n * sizeof(float));
        uint32_t state = 12345u + (uint32_t)l;
        for (int64_t i = 0; i < n; i++) { /* noise under a slow swell: loud and quiet frames */
            state = state * 1664525u + 1013904223u;
            x[i] = (float)(((double)(state >> 8) / 16777216.0 - 0.5) * (0.05 + sin(i * 0.003)));
        }
        float *got = mallocCheck((size_t)p->n_mels * frames * sizeof(float));
        float *want = mallocCheck((size_t)p->n_mels * frames * sizeof(float));
        mel_spectrogram(fe, x, n, got);
        double *power = mallocCheck((size_t)n_freq * sizeof(double));
        for (int64_t t = 0; t < frames; t++) {
            int64_t start = t * p->hop_length - n_fft / 2;
            for (int k = 0; k < n_freq; k++) {
                double re = 0.0, im = 0.0;
                for (int i = 0; i < n_fft; i++) {
                    double v = reflected(x, n, start + i) *
                               (0.5 - 0.5 * cos(2.0 * 3.14159265358979323846 * i / n_fft));
                    double angle =
                        2.0 * 3.14159265358979323846 * (double)((int64_t)k * i % n_fft) / n_fft;
                    re += v * cos(angle);
                    im -= v * sin(angle);
                }
                power[k] = re * re + im * im;
            }
            for (int m = 0; m < p->n_mels; m++) {
                double sum = 0.0;
                for (int k = 0; k < n_freq; k++)
                    sum += (double)fb[(size_t)k * p->n_mels + m] * power[k];
                want[(size_t)m * frames + t] =
                    (float)(p->log_db ? 10.0 * log10(fmax(sum, 1e-10)) : sum);
            }
        }
        size_t values = (size_t)p->n_mels * frames;
        if (p->log_db) {
            double quiet, e = default_error(got, want, values, &quiet);
            printf("direct DFT, %s, %lld samples: max error %.3g dB (%.3g below -60 dB)\n",
                   p->preset, (long long)n, e, quiet);
            CHECK(e < 1e-3 && quiet < 0.05,
                  "%s, %lld samples: %g dB from the direct DFT (%g quiet)", p->preset, (long long)n,
                  e, quiet);
        } else {
            double e = seed_error(got, want, values);
            printf("direct DFT, %s, %lld samples: max relative error %.3g\n", p->preset,
                   (long long)n, e);
            CHECK(e < 1e-4, "%s, %lld samples: relative error %g against the direct DFT", p->preset,
                  (long long)n, e);
        }
        free(power);
        free(got);
        free(want);
        free(x);
    }
    free(fb);
}

/* Hand-checked facts that do not need torchaudio. */
static void check_shapes(mel_frontend *seed) {
    CHECK(mel_frontend_frames(seed, 16000) == 81, "1 s at hop 200 with centering is 81 frames");
    CHECK(mel_frontend_frames(seed, 1) == 1, "one sample still gives one frame");
    float one = 0.25f, *chunks;
    int32_t *off;
    int n;
    CHECK(features_clip_chunks(seed, &one, 1, &chunks, &off, &n) == 0 && n == 1, "1-sample clip");
    free(chunks);
    free(off);
    CHECK(features_clip_chunks(seed, &one, 0, &chunks, &off, &n) == -1, "empty clip refused");
    feature_params p;
    CHECK(feature_params_preset(&p, "nope") == -1, "unknown preset refused");
}

int main(void) {
    ref = fopen(ADFD_SOURCE_DIR "/tests/ref/mel_ref.bin", "rb");
    if (!ref) {
        fprintf(stderr, "test_features: cannot open tests/ref/mel_ref.bin\n");
        return 1;
    }
    char magic[8];
    read_exact(magic, 8);
    CHECK(!memcmp(magic, "ADFDMEL1", 8), "bad magic");
    CHECK(read_i32() == 2, "two filterbanks");
    compare_filterbank("seed");
    compare_filterbank("default");
    feature_params ps, pd;
    feature_params_preset(&ps, "seed");
    feature_params_preset(&pd, "default");
    mel_frontend *seed = mel_frontend_create(&ps), *def = mel_frontend_create(&pd);
    int32_t n_clips = read_i32();
    CHECK(n_clips >= 3, "at least 3 clips");
    for (int c = 0; c < n_clips; c++)
        compare_clip(c, seed, def);
    check_shapes(seed);
    compare_direct_dft(seed);
    compare_direct_dft(def);
    mel_frontend_free(seed);
    mel_frontend_free(def);
    fclose(ref);
    return check_exit_status("test_features");
}
