/* util: errors, fatal checks that abort every MPI rank, rank-0 logging, checked allocation and
 * files written under a temporary name and renamed when complete.
 *
 * Two kinds of failure:
 *  - recoverable (bad input): a function calls adfd_fail("...") which records the message and
 *    returns -1; the caller passes -1 up; the CLI prints adfd_error() and exits 1.
 *  - fatal (a broken invariant, an MPI/HDF5 call failing inside a collective): ADFD_CHECK prints
 *    file:line and the message and calls MPI_Abort so that no rank is left waiting. */
#ifndef ADFD_UTIL_H
#define ADFD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define ADFD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ADFD_PRINTF(a, b)
#endif

/* Records a message for the user (no trailing newline) and returns -1. */
int adfd_fail(const char *fmt, ...) ADFD_PRINTF(1, 2);
/* The last message recorded by adfd_fail on this thread ("" if none). */
const char *adfd_error(void);

/* Prints "adfd: FATAL at file:line: message" and aborts all ranks (exit 1 without MPI). */
_Noreturn void adfd_die(const char *file, int line, const char *fmt, ...) ADFD_PRINTF(3, 4);
#define ADFD_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) adfd_die(__FILE__, __LINE__, __VA_ARGS__);                                    \
    } while (0)
/* For calls returning an MPI error code. */
#define ADFD_MPI_CHECK(call)                                                                       \
    do {                                                                                           \
        int adfd_mpi_rc_ = (call);                                                                 \
        if (adfd_mpi_rc_ != 0) adfd_die(__FILE__, __LINE__, "MPI call failed: %s", #call);         \
    } while (0)
/* For HDF5 calls returning a negative value on failure (herr_t, hid_t). */
#define ADFD_H5_CHECK(call)                                                                        \
    do {                                                                                           \
        if ((call) < 0) adfd_die(__FILE__, __LINE__, "HDF5 call failed: %s", #call);               \
    } while (0)

void *adfd_malloc_check(size_t size, const char *file, int line);
void *adfd_calloc_check(size_t count, size_t size, const char *file, int line);
#define mallocCheck(size) adfd_malloc_check((size), __FILE__, __LINE__)
#define callocCheck(count, size) adfd_calloc_check((count), (size), __FILE__, __LINE__)
char *adfd_strdup(const char *s);

/* MPI rank in MPI_COMM_WORLD (0 when MPI is not initialised). */
int adfd_rank(void);
int adfd_world_size(void);
/* Logging to stderr from rank 0 only; log_all prefixes the rank. */
void log0(const char *fmt, ...) ADFD_PRINTF(1, 2);
void log_all(const char *fmt, ...) ADFD_PRINTF(1, 2);
/* Seconds from a monotonic clock. */
double adfd_seconds(void);

/* Output written to "<path>.tmp.<pid>" and renamed to <path> on commit; abandoned on discard,
 * so a crash or an error never leaves a half-written file where a good one was. */
typedef struct {
    char path[4096];
    char tmp_path[4096 + 32];
    FILE *fp;
} atomic_file;
int atomic_file_open(atomic_file *af, const char *path); /* -1 + adfd_fail on error */
int atomic_file_commit(atomic_file *af);                 /* fclose + rename */
void atomic_file_discard(atomic_file *af);               /* fclose + unlink */
/* Temporary name for an output written by another library (HDF5): "<path>.tmp.<pid>". */
void atomic_tmp_name(char *out, size_t out_size, const char *path);

int path_exists(const char *path);
int path_is_dir(const char *path);
/* Joins dir and name into out ("name" alone when dir is empty or name is absolute). */
void path_join(char *out, size_t out_size, const char *dir, const char *name);
/* Creates a directory and its parents (mkdir -p); -1 + adfd_fail on error. */
int make_dirs(const char *path);

/* Whether this CPU runs the AVX2 + FMA kernels (layers, features); probed once. */
int cpu_has_avx2_fma(void);

/* s as a JSON string literal (quoted, escaped); bytes that are not UTF-8 become U+FFFD, so a
 * file name in another encoding still gives valid JSON. */
void json_write_string(FILE *out, const char *s);

/* 64-bit FNV-1a of a file's bytes as 16 hex digits (used as the source meta checksum). */
int file_fnv1a64_hex(const char *path, char out[17]);

/* Counter-based RNG: a value that depends only on its inputs, so data order and dropout masks
 * are a function of (seed, epoch, sample) and not of the number of ranks. */
uint64_t rng_hash64(uint64_t seed, uint64_t a, uint64_t b);
/* Uniform float in [0,1) from rng_hash64. */
float rng_uniform(uint64_t seed, uint64_t a, uint64_t b);
/* Fisher-Yates shuffle of idx[0..n) driven by (seed, stream). */
void rng_shuffle_int(int *idx, int n, uint64_t seed, uint64_t stream);

#endif
