/* audio: libsndfile decoding to mono float32 at 16 kHz (soxr), 16-bit WAV writing. */
#include "adfd/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adfd/util.h"

/* A whole file held in memory, read through libsndfile's virtual I/O. Standard input cannot
 * seek, and libsndfile needs to seek to parse headers, so "-" is read into memory first. */
typedef struct {
    unsigned char *bytes;
    sf_count_t size;
    sf_count_t pos;
} memory_file;

static sf_count_t memory_get_filelen(void *user) {
    return ((memory_file *)user)->size;
}

static sf_count_t memory_seek(sf_count_t offset, int whence, void *user) {
    memory_file *m = user;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->size;
    sf_count_t pos = base + offset;
    if (pos < 0) pos = 0;
    if (pos > m->size) pos = m->size;
    m->pos = pos;
    return pos;
}

static sf_count_t memory_read(void *ptr, sf_count_t count, void *user) {
    memory_file *m = user;
    sf_count_t n = m->size - m->pos < count ? m->size - m->pos : count;
    memcpy(ptr, m->bytes + m->pos, (size_t)n);
    m->pos += n;
    return n;
}

static sf_count_t memory_write(const void *ptr, sf_count_t count, void *user) {
    (void)ptr, (void)count, (void)user;
    return 0;
}

static sf_count_t memory_tell(void *user) {
    return ((memory_file *)user)->pos;
}

static int read_stdin(memory_file *m) {
    size_t capacity = 1 << 16, size = 0;
    unsigned char *bytes = mallocCheck(capacity);
    for (;;) {
        if (size == capacity) {
            capacity *= 2;
            unsigned char *grown = realloc(bytes, capacity);
            if (!grown) {
                free(bytes);
                return adfd_fail("-: out of memory reading standard input");
            }
            bytes = grown;
        }
        size_t n = fread(bytes + size, 1, capacity - size, stdin);
        size += n;
        if (n == 0) break;
    }
    if (ferror(stdin)) {
        free(bytes);
        return adfd_fail("-: cannot read standard input: %s", strerror(errno));
    }
    m->bytes = bytes;
    m->size = (sf_count_t)size;
    m->pos = 0;
    return 0;
}

/* Reads a regular file of `size` bytes whole into m. */
static int read_file(const char *path, off_t size, memory_file *m) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return adfd_fail("%s: cannot open: %s", path, strerror(errno));
    unsigned char *bytes = mallocCheck((size_t)size);
    off_t got = 0;
    ssize_t n = 1;
    while (got < size && n > 0) {
        n = read(fd, bytes + got, (size_t)(size - got));
        if (n > 0) got += n;
        if (n < 0 && errno == EINTR) n = 1;
    }
    int e = errno;
    close(fd);
    if (got < size) {
        free(bytes);
        if (n < 0) return adfd_fail("%s: cannot read: %s", path, strerror(e));
        return adfd_fail("%s: the file shrank while it was read", path);
    }
    *m = (memory_file){bytes, (sf_count_t)size, 0};
    return 0;
}

/* Files up to this size are decoded from memory: libsndfile reads a file in small pieces
 * (about 30 reads and 20 seeks for a 2 s WAV), and those system calls cost more than the
 * decoding; one read of the whole file does not. Longer recordings are streamed. */
enum { WHOLE_FILE_MAX_BYTES = 64 << 20 };

/* An open input: libsndfile handle plus, for standard input and small files read whole, the
 * bytes it reads from. */
typedef struct {
    SNDFILE *sf;
    SF_INFO info;
    memory_file memory;
    SF_VIRTUAL_IO vio;
} audio_input;

static void audio_input_close(audio_input *in) {
    if (in->sf) sf_close(in->sf);
    free(in->memory.bytes);
    memset(in, 0, sizeof *in);
}

/* libsndfile shortens the frame count of a WAV/AIFF whose data chunk claims more bytes than the
 * file holds and only notes it in its log ("data : 8820 (should be 2956)"): that is a truncated
 * file, not a short one. Streamed WAVs declare 0 or 0xFFFFFFFF bytes and are fine. */
static int log_says_truncated(const char *log) {
    for (const char *line = log; line && *line; line = strchr(line, '\n'), line += line != NULL) {
        while (*line == ' ')
            line++;
        if (strncmp(line, "data :", 6) && strncmp(line, "SSND :", 6)) continue;
        unsigned long long declared, actual;
        if (sscanf(line + 6, "%llu (should be %llu)", &declared, &actual) != 2) continue;
        if (declared != 0 && declared != 0xFFFFFFFFull && declared > actual) return 1;
    }
    return 0;
}

static int audio_input_open(audio_input *in, const char *path, int whole) {
    memset(in, 0, sizeof *in);
    const char *name = strcmp(path, "-") ? path : "- (standard input)";
    off_t size;
    if (!strcmp(path, "-")) {
        if (read_stdin(&in->memory) != 0) return -1;
        size = (off_t)in->memory.size;
    } else {
        struct stat st;
        if (stat(path, &st) != 0) return adfd_fail("%s: cannot open: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode)) return adfd_fail("%s: not a regular file", path);
        size = st.st_size;
        if (whole && size > 0 && size <= WHOLE_FILE_MAX_BYTES &&
            read_file(path, size, &in->memory) != 0)
            return -1;
    }
    if (size == 0) {
        audio_input_close(in);
        return adfd_fail("%s: empty file (0 bytes)", name);
    }
    if (in->memory.bytes) {
        in->vio = (SF_VIRTUAL_IO){memory_get_filelen, memory_seek, memory_read, memory_write,
                                  memory_tell};
        in->sf = sf_open_virtual(&in->vio, SFM_READ, &in->info, &in->memory);
    } else {
        in->sf = sf_open(path, SFM_READ, &in->info);
    }
    if (!in->sf) {
        int rc = adfd_fail("%s: not a readable audio file (%s)", name, sf_strerror(NULL));
        audio_input_close(in);
        return rc;
    }
    if (in->info.channels < 1 || in->info.samplerate < 1) {
        audio_input_close(in);
        return adfd_fail("%s: bad header (%d channels, %d Hz)", name, in->info.channels,
                         in->info.samplerate);
    }
    char log[8192];
    sf_command(in->sf, SFC_GET_LOG_INFO, log, sizeof log);
    if (log_says_truncated(log)) {
        audio_input_close(in);
        return adfd_fail("%s: truncated file (the header promises more audio than it holds)", name);
    }
    if (in->info.frames == 0) {
        audio_input_close(in);
        return adfd_fail("%s: no samples (0 frames)", name);
    }
    return 0;
}

/* Converts one block of decoded frames to mono: mono[i] = mean over c of frame[i][c]. PCM16 comes
 * in as shorts and is scaled here by 1/32768 (exact), which is libsndfile's own float conversion
 * bit for bit, in a loop the compiler vectorises; mono float input is already in place. */
static void block_to_mono(const void *block, int is_short, int channels, int64_t got, float *mono) {
    if (is_short) {
        const short *s = block;
        if (channels == 1) {
            for (int64_t i = 0; i < got; i++)
                mono[i] = (float)s[i] * (1.0f / 32768.0f);
            return;
        }
        for (int64_t i = 0; i < got; i++) {
            float sum = 0.0f;
            for (int c = 0; c < channels; c++)
                sum += (float)s[i * channels + c] * (1.0f / 32768.0f);
            mono[i] = sum / (float)channels;
        }
        return;
    }
    const float *f = block;
    if (channels == 1) return; /* read straight into mono */
    for (int64_t i = 0; i < got; i++) {
        float sum = 0.0f;
        for (int c = 0; c < channels; c++)
            sum += f[i * channels + c];
        mono[i] = sum / (float)channels;
    }
}

/* Reads every frame and averages the channels. The buffer grows as frames arrive rather than
 * trusting the header's frame count, so a corrupt header claiming 2^40 frames is reported as a
 * bad file instead of exhausting memory. Mono float frames are read straight into the result;
 * 16-bit PCM (most speech corpora) is read as shorts: libsndfile's per-sample float conversion
 * and our copy were half of the decoding time. */
static int decode_mono(audio_input *in, const char *name, float **mono_out, int64_t *n_out) {
    int channels = in->info.channels;
    int is_short = (in->info.format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16;
    int direct = channels == 1 && !is_short;
    int64_t expected = in->info.frames;
    enum { BLOCK_FRAMES = 4096 };
    int64_t capacity = expected < (1 << 22) ? expected : (1 << 22);
    float *mono = mallocCheck((size_t)capacity * sizeof(float));
    void *block = direct ? NULL
                         : mallocCheck((size_t)BLOCK_FRAMES * (size_t)channels *
                                       (is_short ? sizeof(short) : sizeof(float)));
    int64_t done = 0;
    while (done < expected) {
        sf_count_t want = expected - done < BLOCK_FRAMES ? expected - done : BLOCK_FRAMES;
        if (done + want > capacity) {
            capacity = 2 * capacity < expected ? 2 * capacity : expected;
            float *grown = realloc(mono, (size_t)capacity * sizeof(float));
            if (!grown) adfd_die(__FILE__, __LINE__, "%s: out of memory decoding", name);
            mono = grown;
        }
        sf_count_t got = direct     ? sf_readf_float(in->sf, mono + done, want)
                         : is_short ? sf_readf_short(in->sf, block, want)
                                    : sf_readf_float(in->sf, block, want);
        if (got <= 0) break;
        block_to_mono(block, is_short, channels, got, mono + done);
        done += got;
    }
    free(block);
    int decoder_error = sf_error(in->sf);
    if (done < expected || decoder_error != SF_ERR_NO_ERROR) {
        free(mono);
        return adfd_fail("%s: truncated or corrupt audio: decoded %lld of the %lld frames the "
                         "header announces%s%s",
                         name, (long long)done, (long long)expected, decoder_error ? ": " : "",
                         decoder_error ? sf_strerror(in->sf) : "");
    }
    *mono_out = mono;
    *n_out = done;
    return 0;
}

int audio_resample(const float *in, int64_t n_in, double rate_in, double rate_out, float **out,
                   int64_t *n_out) {
    if (rate_in <= 0 || rate_out <= 0)
        return adfd_fail("resample: bad rates %g -> %g", rate_in, rate_out);
    /* The output has the input's duration: round(n_in * rate_out / rate_in) samples. */
    int64_t want = llround((double)n_in * rate_out / rate_in);
    float *y = callocCheck((size_t)(want > 0 ? want : 1), sizeof(float));
    if (rate_in == rate_out) {
        memcpy(y, in, (size_t)n_in * sizeof(float));
        *out = y;
        *n_out = n_in;
        return 0;
    }
    soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    size_t produced = 0;
    soxr_error_t err = soxr_oneshot(rate_in, rate_out, 1, in, (size_t)n_in, NULL, y, (size_t)want,
                                    &produced, &io, &quality, NULL);
    if (err) {
        free(y);
        return adfd_fail("resample %g -> %g Hz failed: %s", rate_in, rate_out, err);
    }
    /* soxr_oneshot flushes its filter and gives exactly `want` samples (checked for many rates and
     * lengths); should it give fewer, the zeroed tail is the signal's value past its end. */
    *out = y;
    *n_out = want;
    return 0;
}

int audio_load(const char *path, float **samples, int64_t *n_samples) {
    const char *name = strcmp(path, "-") ? path : "- (standard input)";
    audio_input in;
    if (audio_input_open(&in, path, 1) != 0) return -1;
    float *mono = NULL;
    int64_t n = 0;
    int rc = decode_mono(&in, name, &mono, &n);
    int rate = in.info.samplerate;
    audio_input_close(&in);
    if (rc != 0) return -1;
    if (rate == ADFD_SAMPLE_RATE) {
        *samples = mono;
        *n_samples = n;
        return 0;
    }
    float *resampled;
    int64_t n_resampled;
    rc = audio_resample(mono, n, rate, ADFD_SAMPLE_RATE, &resampled, &n_resampled);
    free(mono);
    if (rc != 0) return adfd_fail("%s: %s", name, adfd_error());
    if (n_resampled == 0) {
        free(resampled);
        return adfd_fail("%s: too short: %lld frames at %d Hz give no sample at %d Hz", name,
                         (long long)n, rate, ADFD_SAMPLE_RATE);
    }
    *samples = resampled;
    *n_samples = n_resampled;
    return 0;
}

int audio_duration_seconds(const char *path, double *seconds) {
    audio_input in;
    if (audio_input_open(&in, path, 0) != 0) return -1;
    *seconds = (double)in.info.frames / (double)in.info.samplerate;
    audio_input_close(&in);
    return 0;
}

int audio_write_wav16(const char *path, const float *samples, int64_t n_samples, int rate) {
    char tmp[4096 + 32];
    atomic_tmp_name(tmp, sizeof tmp, path);
    SF_INFO info = {.samplerate = rate, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(tmp, SFM_WRITE, &info);
    if (!sf) return adfd_fail("%s: cannot create: %s", tmp, sf_strerror(NULL));
    /* Our own float -> int16 conversion (clip, scale by 32767, round) so the result does not
     * depend on libsndfile's normalisation settings. */
    enum { BLOCK = 4096 };
    short block[BLOCK];
    int64_t done = 0;
    int bad = 0;
    while (done < n_samples && !bad) {
        int64_t n = n_samples - done < BLOCK ? n_samples - done : BLOCK;
        for (int64_t i = 0; i < n; i++) {
            float x = samples[done + i];
            if (!isfinite(x)) bad = 2;
            x = x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
            if (bad == 2) x = 0.0f;
            block[i] = (short)lrintf(x * 32767.0f);
        }
        if (!bad && sf_write_short(sf, block, n) != n) bad = 1;
        done += n;
    }
    if (sf_close(sf) != 0 && !bad) bad = 1;
    if (bad) {
        unlink(tmp);
        if (bad == 2) return adfd_fail("%s: not written: a sample is NaN or infinite", path);
        return adfd_fail("%s: write failed (disk full?)", path);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return adfd_fail("%s: cannot rename from %s: %s", path, tmp, strerror(e));
    }
    return 0;
}
