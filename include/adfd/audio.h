/* audio: decoding any file libsndfile reads into mono float32 at 16 kHz (soxr resampling),
 * and writing 16-bit WAV. */
#ifndef ADFD_AUDIO_H
#define ADFD_AUDIO_H

#include <stdint.h>

#define ADFD_SAMPLE_RATE 16000

/* Decodes PATH ("-" = standard input) to mono (channel mean) float32 at 16 kHz.
 * *samples is malloc'ed (caller frees). Empty, truncated, non-audio and 0-sample files are
 * errors naming the path (-1 + adfd_fail). */
int audio_load(const char *path, float **samples, int64_t *n_samples);
/* Duration in seconds from the header only (for balancing work between ranks). */
int audio_duration_seconds(const char *path, double *seconds);
/* Resamples mono float32 from rate_in to rate_out; *out malloc'ed. */
int audio_resample(const float *in, int64_t n_in, double rate_in, double rate_out, float **out,
                   int64_t *n_out);
/* Writes mono 16-bit PCM WAV (clipped to [-1,1]) under a temporary name, then renames. */
int audio_write_wav16(const char *path, const float *samples, int64_t n_samples, int rate);

#endif
