#include "adfd/util.h"

#include <errno.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char error_message[2048];

int adfd_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return -1;
}

const char *adfd_error(void) {
    return error_message;
}

static int mpi_is_running(void) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    return initialized && !finalized;
}

void adfd_die(const char *file, int line, const char *fmt, ...) {
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (mpi_is_running() && adfd_world_size() > 1)
        fprintf(stderr, "adfd: rank %d: FATAL at %s:%d: %s\n", adfd_rank(), file, line, message);
    else
        fprintf(stderr, "adfd: FATAL at %s:%d: %s\n", file, line, message);
    fflush(stderr);
    if (mpi_is_running()) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void *adfd_malloc_check(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) adfd_die(file, line, "out of memory allocating %zu bytes", size);
    return p;
}

void *adfd_calloc_check(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) adfd_die(file, line, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

char *adfd_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = mallocCheck(n);
    memcpy(d, s, n);
    return d;
}

int adfd_rank(void) {
    int rank = 0;
    if (mpi_is_running()) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

int adfd_world_size(void) {
    int size = 1;
    if (mpi_is_running()) MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size;
}

void log0(const char *fmt, ...) {
    if (adfd_rank() != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

void log_all(const char *fmt, ...) {
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[rank %d] %s", adfd_rank(), message);
    fflush(stderr);
}

double adfd_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void atomic_tmp_name(char *out, size_t out_size, const char *path) {
    snprintf(out, out_size, "%s.tmp.%ld", path, (long)getpid());
}

int atomic_file_open(atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return adfd_fail("%s: path too long", path);
    strcpy(af->path, path);
    atomic_tmp_name(af->tmp_path, sizeof af->tmp_path, path);
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) return adfd_fail("%s: cannot create: %s", af->tmp_path, strerror(errno));
    return 0;
}

int atomic_file_commit(atomic_file *af) {
    int bad = ferror(af->fp);
    if (fclose(af->fp) != 0) bad = 1;
    af->fp = NULL;
    if (bad) {
        unlink(af->tmp_path);
        return adfd_fail("%s: write failed (disk full?)", af->path);
    }
    if (rename(af->tmp_path, af->path) != 0) {
        int e = errno;
        unlink(af->tmp_path);
        return adfd_fail("%s: cannot rename from %s: %s", af->path, af->tmp_path, strerror(e));
    }
    return 0;
}

void atomic_file_discard(atomic_file *af) {
    if (af->fp) fclose(af->fp);
    af->fp = NULL;
    unlink(af->tmp_path);
}

int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void path_join(char *out, size_t out_size, const char *dir, const char *name) {
    if (!dir || !dir[0] || name[0] == '/')
        snprintf(out, out_size, "%s", name);
    else if (dir[strlen(dir) - 1] == '/')
        snprintf(out, out_size, "%s%s", dir, name);
    else
        snprintf(out, out_size, "%s/%s", dir, name);
}

int make_dirs(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return adfd_fail("%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return adfd_fail("%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return adfd_fail("%s: cannot create directory: %s", buf, strerror(errno));
    if (!path_is_dir(buf)) return adfd_fail("%s: exists and is not a directory", buf);
    return 0;
}

int file_fnv1a64_hex(const char *path, char out[17]) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return adfd_fail("%s: cannot open: %s", path, strerror(errno));
    uint64_t h = 14695981039346656037ULL;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ULL;
    int bad = ferror(fp);
    fclose(fp);
    if (bad) return adfd_fail("%s: read error", path);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}

/* splitmix64 finaliser: a strong 64-bit mix, cheap enough to call per sample. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_hash64(uint64_t seed, uint64_t a, uint64_t b) {
    return mix64(mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ a) + b * 0x9e3779b97f4a7c15ULL);
}

float rng_uniform(uint64_t seed, uint64_t a, uint64_t b) {
    return (float)(rng_hash64(seed, a, b) >> 40) * (1.0f / 16777216.0f);
}

void rng_shuffle_int(int *idx, int n, uint64_t seed, uint64_t stream) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_hash64(seed, stream, (uint64_t)i) % (uint64_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* Length of the valid UTF-8 sequence at c (1-4), or 0 when it is not one. */
static int utf8_sequence_length(const unsigned char *c) {
    int n = c[0] < 0x80             ? 1
            : (c[0] & 0xE0) == 0xC0 ? 2
            : (c[0] & 0xF0) == 0xE0 ? 3
            : (c[0] & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 2 && c[0] < 0xC2) return 0; /* overlong */
    for (int i = 1; i < n; i++)
        if ((c[i] & 0xC0) != 0x80) return 0;
    return n;
}

void json_write_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        int n = utf8_sequence_length(c);
        if (n == 0) {
            fputs("\\ufffd", out); /* a file name that is not UTF-8 still gives valid JSON */
            c++;
            continue;
        }
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", out);
        else if (*c == '\t')
            fputs("\\t", out);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else
            fwrite(c, 1, n, out);
        c += n;
    }
    fputc('"', out);
}

int cpu_has_avx2_fma(void) {
#if defined(__GNUC__) && defined(__x86_64__)
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return known;
#else
    return 0;
#endif
}
