/* audio: decoding, channel mixing and resampling to 16 kHz, checked against the analytic signals
 * sox synthesised (sox's "synth sine F" is A*sin(2*pi*F*n/rate), phase 0) and against sox's own
 * resampler; bad files must fail naming the path; the WAV writer is checked byte by byte. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sndfile.h>

#include "adfd/audio.h"
#include "adfd/util.h"
#include "check.h"

#define DIR "test_audio_files"
#define PI 3.14159265358979323846
#define EDGE 256 /* output samples left out at each end of a resampled signal */

static void sh(const char *cmd) {
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: fixture command failed: %s\n", cmd);
        exit(1);
    }
}

static float *load(const char *path, int64_t *n) {
    float *x = NULL;
    if (audio_load(path, &x, n) != 0) {
        CHECK(0, "audio_load(%s): %s", path, adfd_error());
        *n = 0;
    }
    return x;
}

/* Largest |x[i] - A*sin(2*pi*f*i/16000)| over i in [skip, n-skip): the edges are left out
 * because a resampler's filter sees the signal's start and end as steps and rings there
 * (about 150 output samples for soxr's HQ filter). */
static double max_error_vs_sine(const float *x, int64_t n, double amplitude, double f, int skip) {
    double worst = 0;
    for (int64_t i = skip; i < n - skip; i++) {
        double want = amplitude * sin(2 * PI * f * (double)i / ADFD_SAMPLE_RATE);
        worst = fmax(worst, fabs(x[i] - want));
    }
    return worst;
}

static double rms(const float *x, int64_t n, int skip) {
    double s = 0;
    for (int64_t i = skip; i < n - skip; i++)
        s += (double)x[i] * x[i];
    return sqrt(s / (double)(n - 2 * skip));
}

static void test_decode_16k(void) {
    /* No resampling: int16, float32 and 24-bit files must decode to the sine itself. */
    sh("sox -r 16000 -n -b 16 -e signed -D " DIR "/s16.wav synth 8000s sine 1000 vol 0.5");
    sh("sox -r 16000 -n -b 32 -e float " DIR "/f32.wav synth 8000s sine 1000 vol 0.5");
    sh("sox -r 16000 -n -b 24 -D " DIR "/s24.wav synth 8000s sine 1000 vol 0.5");
    sh("sox " DIR "/s16.wav " DIR "/s16.flac");
    int64_t n16, nf, n24, nflac;
    float *s16 = load(DIR "/s16.wav", &n16), *f32 = load(DIR "/f32.wav", &nf);
    float *s24 = load(DIR "/s24.wav", &n24), *flac = load(DIR "/s16.flac", &nflac);
    CHECK(n16 == 8000 && nf == 8000 && n24 == 8000 && nflac == 8000, "lengths %lld %lld %lld %lld",
          (long long)n16, (long long)nf, (long long)n24, (long long)nflac);
    if (n16 == 8000 && nf == 8000 && n24 == 8000 && nflac == 8000) {
        CHECK_CLOSE(max_error_vs_sine(f32, nf, 0.5, 1000, 0), 0, 0, 1e-6);
        CHECK_CLOSE(max_error_vs_sine(s16, n16, 0.5, 1000, 0), 0, 0, 1.0 / 32768);
        CHECK_CLOSE(max_error_vs_sine(s24, n24, 0.5, 1000, 0), 0, 0, 1.0 / 8388608 * 2);
        double worst = 0; /* flac is lossless: identical to the int16 wav */
        for (int i = 0; i < 8000; i++)
            worst = fmax(worst, fabs(flac[i] - s16[i]));
        CHECK(worst == 0, "flac differs from wav by %g", worst);
    }
    free(s16), free(f32), free(s24), free(flac);
}

static void test_resample(void) {
    /* 12345 samples at 44.1 kHz: round(12345 * 16000 / 44100) = round(4478.91) = 4479. */
    sh("sox -r 44100 -n -b 16 -D " DIR "/s16_44k.wav synth 12345s sine 1000 vol 0.5");
    sh("sox -r 44100 -n -b 32 -e float " DIR "/f32_44k.wav synth 12345s sine 1000 vol 0.5");
    int64_t n, nf;
    float *x = load(DIR "/s16_44k.wav", &n), *xf = load(DIR "/f32_44k.wav", &nf);
    CHECK(n == 4479 && nf == 4479, "44.1k -> 16k length %lld %lld, want 4479", (long long)n,
          (long long)nf);
    if (n == 4479) CHECK_CLOSE(max_error_vs_sine(x, n, 0.5, 1000, EDGE), 0, 0, 2e-4);
    if (nf == 4479) CHECK_CLOSE(max_error_vs_sine(xf, nf, 0.5, 1000, EDGE), 0, 0, 1e-4);
    double seconds = 0;
    CHECK(audio_duration_seconds(DIR "/s16_44k.wav", &seconds) == 0, "%s", adfd_error());
    CHECK_CLOSE(seconds, 12345.0 / 44100.0, 1e-12, 0);

    /* sox's resampler on the same float file: the two must agree in the interior. */
    sh("sox " DIR "/f32_44k.wav -b 32 -e float -r 16000 " DIR "/sox_16k.wav");
    int64_t ns;
    float *sx = load(DIR "/sox_16k.wav", &ns);
    CHECK(ns == 4479, "sox gives %lld samples", (long long)ns);
    if (ns == 4479 && nf == 4479) {
        double worst = 0;
        for (int i = EDGE; i < 4479 - EDGE; i++)
            worst = fmax(worst, fabs(xf[i] - sx[i]));
        CHECK_CLOSE(worst, 0, 0, 1e-4);
    }
    free(x), free(xf), free(sx);

    /* Upsampling 8 kHz -> 16 kHz: 1001 samples -> 2002, a 1 kHz sine stays the same sine. */
    sh("sox -r 8000 -n -b 16 -D " DIR "/s16_8k.wav synth 1001s sine 1000 vol 0.5");
    x = load(DIR "/s16_8k.wav", &n);
    CHECK(n == 2002, "8k -> 16k length %lld", (long long)n);
    if (n == 2002) CHECK_CLOSE(max_error_vs_sine(x, n, 0.5, 1000, EDGE), 0, 0, 2e-4);
    free(x);

    /* High quality: a 7 kHz tone (inside the 8 kHz band) keeps its amplitude; a 10 kHz tone
     * (above it) is removed instead of folding down to 6 kHz. */
    sh("sox -r 44100 -n -b 32 -e float " DIR "/f7k.wav synth 22050s sine 7000 vol 0.5");
    sh("sox -r 44100 -n -b 32 -e float " DIR "/f10k.wav synth 22050s sine 10000 vol 0.5");
    x = load(DIR "/f7k.wav", &n);
    if (x) CHECK_CLOSE(max_error_vs_sine(x, n, 0.5, 7000, EDGE), 0, 0, 5e-3);
    free(x);
    x = load(DIR "/f10k.wav", &n);
    if (x) CHECK(rms(x, n, EDGE) < 1e-3, "10 kHz leaks through: rms %g", rms(x, n, EDGE));
    free(x);
}

static void test_channels_and_formats(void) {
    /* Stereo (440 Hz left, 1320 Hz right, each 0.5): mono = 0.25*(sin 440 + sin 1320). */
    sh("sox -r 16000 -n -c 2 -b 32 -e float " DIR "/st.wav synth 4000s sine 440 sine 1320 vol 0.5");
    int64_t n;
    float *x = load(DIR "/st.wav", &n);
    CHECK(n == 4000, "stereo length %lld", (long long)n);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double t = (double)i / 16000;
        double want = 0.25 * (sin(2 * PI * 440 * t) + sin(2 * PI * 1320 * t));
        worst = fmax(worst, fabs(x[i] - want));
    }
    CHECK_CLOSE(worst, 0, 0, 1e-6);
    free(x);

    /* Three channels at 22.05 kHz, int16: the mean of 0.6, 0.3, 0 times the same 500 Hz sine is
     * 0.3*sin, resampled. 2205 samples -> 1600. */
    sh("sox -r 22050 -n -c 3 -b 16 -D " DIR "/c3.wav synth 2205s sine 500 sine 500 sine 500 "
       "remix 1v0.6 2v0.3 3v0");
    x = load(DIR "/c3.wav", &n);
    CHECK(n == 1600, "3-channel length %lld", (long long)n);
    if (n == 1600) CHECK_CLOSE(max_error_vs_sine(x, n, 0.3, 500, EDGE), 0, 0, 3e-4);
    free(x);

    /* Ogg Vorbis is lossy: the 1 kHz tone's amplitude (its projection on the sine) within 3%
     * and the residual small. */
    sh("sox -r 16000 -n " DIR "/tone.ogg synth 16000s sine 1000 vol 0.5");
    x = load(DIR "/tone.ogg", &n);
    CHECK(n == 16000, "ogg length %lld", (long long)n);
    if (n == 16000) {
        double s = 0, c = 0;
        for (int i = 0; i < n; i++) {
            s += x[i] * sin(2 * PI * 1000 * i / 16000.0);
            c += x[i] * cos(2 * PI * 1000 * i / 16000.0);
        }
        double amplitude = 2 * sqrt(s * s + c * c) / (double)n;
        CHECK_CLOSE(amplitude, 0.5, 0.03, 0);
        CHECK(max_error_vs_sine(x, n, 0.5, 1000, 400) < 0.1, "ogg residual %g",
              max_error_vs_sine(x, n, 0.5, 1000, 400));
    }
    free(x);

    /* "-" reads standard input (not seekable), here a flac file. */
    sh("sox -r 16000 -n -b 16 -D " DIR "/stdin.flac synth 3000s sine 1000 vol 0.5");
    if (!freopen(DIR "/stdin.flac", "rb", stdin)) exit(1);
    x = load("-", &n);
    CHECK(n == 3000, "stdin length %lld", (long long)n);
    if (n == 3000) CHECK_CLOSE(max_error_vs_sine(x, n, 0.5, 1000, 0), 0, 0, 1.0 / 32768);
    free(x);
}

static void expect_load_error(const char *path, const char *want) {
    float *x = NULL;
    int64_t n = 0;
    int rc = audio_load(path, &x, &n);
    CHECK(rc == -1, "%s: accepted (%lld samples), want '%s'", path, (long long)n, want);
    CHECK(strstr(adfd_error(), want) != NULL, "'%s' lacks '%s'", adfd_error(), want);
    if (rc == 0) free(x);
}

static void test_bad_files(void) {
    sh(": > " DIR "/empty.wav");
    sh("head -c 3000 " DIR "/s16.wav > " DIR "/cut.wav");
    sh("head -c 30 " DIR "/s16.wav > " DIR "/cut_header.wav");
    sh("head -c $(( $(stat -c %s " DIR "/s16.flac) / 2 )) " DIR "/s16.flac > " DIR "/cut.flac");
    sh("echo 'file,speaker,label' > " DIR "/text.wav");
    sh("sox -r 16000 -n " DIR "/zero.wav trim 0 0");
    /* A FLAC header announcing 2^35 samples (STREAMINFO's 36-bit count, bytes 18..25) over 8000
     * real ones: an error, not a 128 GiB allocation. */
    FILE *fp = fopen(DIR "/s16.flac", "rb");
    unsigned char flac[65536];
    size_t size = fp ? fread(flac, 1, sizeof flac, fp) : 0;
    if (fp) fclose(fp);
    CHECK(size > 26 && !memcmp(flac, "fLaC", 4), "flac fixture");
    uint64_t fields = 0;
    for (int i = 18; i < 26; i++)
        fields = fields << 8 | flac[i];
    CHECK((fields & ((1ull << 36) - 1)) == 8000, "STREAMINFO total samples");
    fields = (fields & ~((1ull << 36) - 1)) | (1ull << 35);
    for (int i = 25; i >= 18; i--, fields >>= 8)
        flac[i] = (unsigned char)(fields & 0xFF);
    fp = fopen(DIR "/huge.flac", "wb");
    if (fp) fwrite(flac, 1, size, fp), fclose(fp);
    expect_load_error(DIR "/huge.flac", DIR
                      "/huge.flac: truncated or corrupt audio: decoded 8000 of the 34359738368");
    expect_load_error(DIR "/empty.wav", DIR "/empty.wav: empty file");
    expect_load_error(DIR "/cut.wav", DIR "/cut.wav: truncated file");
    expect_load_error(DIR "/cut_header.wav", DIR "/cut_header.wav: not a readable audio file");
    expect_load_error(DIR "/cut.flac", DIR "/cut.flac: truncated or corrupt audio");
    expect_load_error(DIR "/text.wav", DIR "/text.wav: not a readable audio file");
    expect_load_error(DIR "/zero.wav", DIR "/zero.wav: no samples");
    expect_load_error(DIR "/missing.wav", DIR "/missing.wav: cannot open");
    expect_load_error(DIR, DIR ": not a regular file");
    double seconds;
    CHECK(audio_duration_seconds(DIR "/cut.wav", &seconds) == -1, "duration of a cut file");
}

/* Reads little-endian integers from a byte buffer. */
static uint32_t le32(const unsigned char *p) {
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_write_wav16(void) {
    /* Expected int16 values by hand: clip to [-1,1], then round(x * 32767). */
    const float x[] = {0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 1.7f, -3.0f, 1e-5f, 0.25f};
    const int16_t want[] = {0, 16384, -16384, 32767, -32767, 32767, -32767, 0, 8192};
    const int n = 9;
    CHECK(audio_write_wav16(DIR "/out.wav", x, n, 22050) == 0, "%s", adfd_error());
    FILE *fp = fopen(DIR "/out.wav", "rb");
    unsigned char bytes[4096];
    size_t size = fp ? fread(bytes, 1, sizeof bytes, fp) : 0;
    if (fp) fclose(fp);
    CHECK(size > 44 && !memcmp(bytes, "RIFF", 4) && !memcmp(bytes + 8, "WAVE", 4), "RIFF/WAVE");
    const unsigned char *fmt = NULL, *data = NULL;
    uint32_t data_size = 0;
    for (size_t pos = 12; pos + 8 <= size;) { /* walk the chunks */
        uint32_t chunk = le32(bytes + pos + 4);
        if (!memcmp(bytes + pos, "fmt ", 4)) fmt = bytes + pos + 8;
        if (!memcmp(bytes + pos, "data", 4)) data = bytes + pos + 8, data_size = chunk;
        pos += 8 + chunk + (chunk & 1);
    }
    CHECK(fmt && data, "fmt and data chunks");
    if (fmt && data) {
        CHECK(fmt[0] == 1 && fmt[2] == 1, "PCM mono");
        CHECK(le32(fmt + 4) == 22050, "rate %u", le32(fmt + 4));
        CHECK(fmt[14] == 16, "%d bits", fmt[14]);
        CHECK(data_size == 2u * (uint32_t)n, "data bytes %u", data_size);
        for (int i = 0; i < n && data_size == 2 * (uint32_t)n; i++) {
            int16_t v = (int16_t)(data[2 * i] | data[2 * i + 1] << 8);
            CHECK(v == want[i], "sample %d = %d, want %d", i, v, want[i]);
        }
    }
    char tmp[4200];
    atomic_tmp_name(tmp, sizeof tmp, DIR "/out.wav");
    CHECK(!path_exists(tmp), "temporary file left behind");
    /* A NaN sample is refused and leaves neither the file nor its temporary. */
    const float bad[] = {0.1f, NAN};
    CHECK(audio_write_wav16(DIR "/nan.wav", bad, 2, 16000) == -1, "NaN accepted");
    CHECK(!path_exists(DIR "/nan.wav") && !path_exists(tmp), "NaN output left behind");
    CHECK(audio_write_wav16(DIR "/no/such/dir/x.wav", x, n, 16000) == -1, "bad dir accepted");
}

/* 16-bit PCM is read as shorts and scaled by us; the result must be libsndfile's own float
 * decoding (then the channel mean) bit for bit, for 1, 2 and 3 channels and a length that is
 * not a multiple of the decoding block. */
static void test_pcm16_same_bits_as_libsndfile_float(void) {
    const char *files[] = {DIR "/p1.wav", DIR "/p2.wav", DIR "/p3.wav"};
    sh("sox -r 16000 -n -c 1 -b 16 " DIR "/p1.wav synth 9001s pinknoise vol 0.7");
    sh("sox -r 16000 -n -c 2 -b 16 " DIR "/p2.wav synth 9001s pinknoise vol 0.7");
    sh("sox -r 16000 -n -c 3 -b 16 " DIR "/p3.wav synth 9001s pinknoise vol 0.7");
    for (int f = 0; f < 3; f++) {
        SF_INFO info = {0};
        SNDFILE *sf = sf_open(files[f], SFM_READ, &info);
        CHECK(sf != NULL, "sf_open %s", files[f]);
        if (!sf) continue;
        float *frames = malloc((size_t)info.frames * info.channels * sizeof(float));
        sf_count_t got = sf_readf_float(sf, frames, info.frames);
        sf_close(sf);
        int64_t n;
        float *x = load(files[f], &n);
        CHECK(got == 9001 && n == 9001, "%s: %lld and %lld frames", files[f], (long long)got,
              (long long)n);
        int differ = 0;
        for (int64_t i = 0; i < n && i < got; i++) {
            float sum = 0.0f;
            for (int c = 0; c < info.channels; c++)
                sum += frames[i * info.channels + c];
            float want = sum / (float)info.channels;
            differ += memcmp(&want, &x[i], sizeof want) != 0;
        }
        CHECK(differ == 0, "%s: %d samples differ from libsndfile's float decoding", files[f],
              differ);
        free(frames);
        free(x);
    }
}

int main(void) {
    mkdir(DIR, 0777);
    test_decode_16k();
    test_resample();
    test_channels_and_formats();
    test_pcm16_same_bits_as_libsndfile_float();
    test_bad_files();
    test_write_wav16();
    return check_exit_status("test_audio");
}
