/* prepare: rounds of clips dealt to the ranks by duration, decoded, cut into chunks and written
 * collectively in clip order (see include/adfd/prepare.h for the scheme). */
#include "adfd/prepare.h"

#include <math.h>
#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adfd/audio.h"
#include "adfd/store.h"
#include "adfd/util.h"

enum { ROW_VALUES = ADFD_N_MELS * ADFD_CHUNK_FRAMES, BAND_STATS = 2 * ADFD_N_MELS };

/* This rank's rows of the current round, in clip order. */
typedef struct {
    float *features; /* [rows][128][80] */
    int32_t *offset; /* [rows] first frame of each row in its clip */
    int64_t rows, capacity;
} row_buffer;

static void row_buffer_reserve(row_buffer *b, int64_t rows) {
    if (rows <= b->capacity) return;
    int64_t cap = b->capacity ? b->capacity : 256;
    while (cap < rows)
        cap *= 2;
    b->features = realloc(b->features, (size_t)cap * ROW_VALUES * sizeof(float));
    b->offset = realloc(b->offset, (size_t)cap * sizeof(int32_t));
    ADFD_CHECK(b->features && b->offset, "out of memory for %lld feature rows", (long long)cap);
    b->capacity = cap;
}

/* Room for a clip's chunks right after the rows so far (features_clip_chunks_into computes them
 * there, no copy); they count as rows once the clip has succeeded. */
static chunk_storage row_buffer_room(void *buffer, int n) {
    row_buffer *b = buffer;
    row_buffer_reserve(b, b->rows + n);
    return (chunk_storage){b->features + (size_t)b->rows * ROW_VALUES, b->offset + b->rows};
}

/* /clip and /offset of every row written so far, built the same on every rank. */
typedef struct {
    int32_t *clip;   /* [rows] the clip's row in the clip table */
    int32_t *offset; /* [rows] first frame of the row in its clip */
    int64_t rows, capacity;
} row_index;

/* Lists the rows of one clip: n rows at frames 0, hop, 2 hop, ..., the last at last_offset. */
static void row_index_add_clip(row_index *ix, int32_t table_row, int64_t n, int32_t last_offset,
                               int hop) {
    if (ix->rows + n > ix->capacity) {
        int64_t cap = ix->capacity ? 2 * ix->capacity : 4096;
        while (cap < ix->rows + n)
            cap *= 2;
        ix->clip = realloc(ix->clip, (size_t)cap * sizeof *ix->clip);
        ix->offset = realloc(ix->offset, (size_t)cap * sizeof *ix->offset);
        ADFD_CHECK(ix->clip && ix->offset, "out of memory for a %lld-row index", (long long)cap);
        ix->capacity = cap;
    }
    for (int64_t i = 0; i < n; i++) {
        ix->clip[ix->rows + i] = table_row;
        ix->offset[ix->rows + i] = i == n - 1 ? last_offset : (int32_t)(i * hop);
    }
    ix->rows += n;
}

static _Noreturn void fatal_clip(const char *tmp_path, const char *message) {
    unlink(tmp_path); /* nothing half-written is left behind; the other ranks are aborted */
    adfd_die(__FILE__, __LINE__, "%s (run with --skip-bad to skip unreadable clips)", message);
}

/* Waits until every rank has arrived, sleeping between checks. Open MPI's blocking calls poll in
 * a loop, and a rank that arrives first would spend its core polling while its compute thread,
 * on the same core, has the next round to compute. After this the round's collectives find
 * every rank there and return at once. */
static void barrier_sleeping(MPI_Comm comm) {
    MPI_Request request;
    ADFD_MPI_CHECK(MPI_Ibarrier(comm, &request));
    for (int done = 0;;) {
        ADFD_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
        if (done) return;
        nanosleep(&(struct timespec){0, 100000}, NULL); /* 0.1 ms */
    }
}

/* Header durations of every clip, read by rank i % size and summed; -1 marks unreadable. */
static double *header_durations(const dataset *ds, const prepare_options *o, int rank, int size) {
    double *dur = callocCheck((size_t)ds->n_clips, sizeof *dur);
    char path[8192];
    for (int c = rank; c < ds->n_clips; c += size) {
        dataset_clip_path(ds, c, path, sizeof path);
        if (audio_duration_seconds(path, &dur[c]) == 0) continue;
        if (!o->skip_bad) fatal_clip(o->tmp_path, adfd_error());
        log_all("adfd prepare: skipping %s\n", adfd_error());
        dur[c] = -1.0;
    }
    ADFD_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, dur, ds->n_clips, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    return dur;
}

/* owner[c - c0] for the clips of [c0, c1): consecutive clips to each rank, cut where the
 * running audio duration crosses k/size of the round's total (a clip goes to the rank whose
 * share holds its midpoint); -1 for clips already known to be unreadable. Every rank computes
 * the same deal, and each rank's rows are then one contiguous block of the round in clip order,
 * written at the offset an exclusive scan of the row counts gives: no rows change hands. */
static void deal_round(const double *dur, int c0, int c1, int size, int *owner) {
    double total = 0.0, before = 0.0;
    for (int c = c0; c < c1; c++)
        if (dur[c] >= 0) total += dur[c];
    for (int c = c0; c < c1; c++) {
        owner[c - c0] = -1;
        if (dur[c] < 0) continue;
        int r = total > 0 ? (int)((before + 0.5 * dur[c]) / total * size) : 0;
        owner[c - c0] = r < size ? r : size - 1;
        before += dur[c];
    }
}

/* Adds the per-band sums of x and x^2 over one clip's chunks into stats[256] (double). */
static void add_band_sums(const float *chunks, int n_chunks, double *stats) {
    for (int c = 0; c < n_chunks; c++)
        for (int b = 0; b < ADFD_N_MELS; b++) {
            const float *row = chunks + (size_t)c * ROW_VALUES + (size_t)b * ADFD_CHUNK_FRAMES;
            double s = 0.0, q = 0.0;
            for (int t = 0; t < ADFD_CHUNK_FRAMES; t++) {
                s += row[t];
                q += (double)row[t] * row[t];
            }
            stats[b] += s;
            stats[ADFD_N_MELS + b] += q;
        }
}

static void print_progress(int done, int total, double audio_seconds, double elapsed) {
    double rate = elapsed > 0 ? audio_seconds / elapsed : 0.0;
    double eta = done > 0 ? elapsed * (total - done) / done : 0.0;
    fprintf(stderr, "\radfd prepare: %d/%d clips, %.2f h of audio, %.2f audio-h/s, ETA %d:%02d   ",
            done, total, audio_seconds / 3600.0, rate / 3600.0, (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

/* What this rank computes for one round of consecutive clips [c0, c1): its rows in clip order
 * and, per clip of the round, its row count (-1: unreadable), decoded seconds and band sums. */
typedef struct {
    int c0, c1;
    row_buffer buf;
    double *stats; /* [c1 - c0][256] per-clip band sums (default preset), else NULL */
    double decode_seconds, feature_seconds;
    int failed; /* a clip could not be read and skip_bad is off: message says which */
    char message[2048];
} round_work;

/* What every rank learns of each clip once a round is settled: the per-clip facts are summed
 * over the ranks in one MPI_Allreduce (each clip has one owner, the others add zeros, so the
 * sums are exact). Row counts and offsets are small integers, exact in double. A clip's rows
 * start at frames 0, chunk_hop, 2 chunk_hop, ... except the last, which may be moved back to end
 * flush with the clip (features_clip_chunks), so its offset is all /offset needs. */
enum { FACT_ROWS, FACT_SECONDS, FACT_LAST_OFFSET, N_FACTS };

/* The inputs of compute_round. It writes only the facts of its own round's clips, so the main
 * thread may sum and write the previous round's entries at the same time. */
typedef struct {
    const dataset *ds;
    const prepare_options *o;
    mel_frontend *fe;
    const int *owner; /* [n_clips] rank of each clip, -1: unreadable header */
    int rank;
    double *facts; /* [n_clips][N_FACTS]; FACT_ROWS -1: unreadable */
    round_work *work;
} round_job;

/* Decodes and cuts this rank's clips of one round. Runs on the compute thread: no MPI and no
 * HDF5 here (the main thread owns both); a fatal clip is reported back in work->message. */
static void *compute_round(void *arg) {
    const round_job *j = arg;
    round_work *w = j->work;
    char path[8192];
    w->buf.rows = 0;
    w->failed = 0;
    if (w->stats) memset(w->stats, 0, (size_t)(w->c1 - w->c0) * BAND_STATS * sizeof(double));
    for (int c = w->c0; c < w->c1; c++) {
        double *facts = j->facts + (size_t)c * N_FACTS;
        for (int f = 0; f < N_FACTS; f++)
            facts[f] = 0.0;
        if (j->owner[c] != j->rank) continue;
        dataset_clip_path(j->ds, c, path, sizeof path);
        float *x = NULL;
        int64_t n_samples = 0;
        int n_chunks = 0;
        double t0 = adfd_seconds();
        int ok = audio_load(path, &x, &n_samples) == 0;
        double t1 = adfd_seconds();
        ok = ok && features_clip_chunks_into(j->fe, x, n_samples, row_buffer_room, &w->buf,
                                             &n_chunks) == 0;
        w->decode_seconds += t1 - t0;
        w->feature_seconds += adfd_seconds() - t1;
        if (!ok && !j->o->skip_bad) {
            snprintf(w->message, sizeof w->message, "%s", adfd_error());
            w->failed = 1;
        } else if (!ok) {
            log_all("adfd prepare: skipping %s\n", adfd_error());
            facts[FACT_ROWS] = -1;
        } else {
            facts[FACT_ROWS] = n_chunks;
            facts[FACT_SECONDS] = (double)n_samples / ADFD_SAMPLE_RATE;
            const float *chunks = w->buf.features + (size_t)w->buf.rows * ROW_VALUES;
            facts[FACT_LAST_OFFSET] = w->buf.offset[w->buf.rows + n_chunks - 1];
            if (w->stats && j->ds->clips[c].split == SPLIT_TRAIN)
                add_band_sums(chunks, n_chunks, w->stats + (size_t)(c - w->c0) * BAND_STATS);
            w->buf.rows += n_chunks;
        }
        free(x);
        if (w->failed) break;
    }
    return NULL;
}

/* Starts one round's computation: on a thread of its own when MPI allows threads (then the
 * main thread writes the previous round meanwhile), else here and now. */
static void start_round(round_job *j, int threaded, pthread_t *thread) {
    if (threaded)
        ADFD_CHECK(pthread_create(thread, NULL, compute_round, j) == 0,
                   "cannot start the compute thread");
    else
        compute_round(j);
}

/* Round boundaries: consecutive clips holding about round_seconds_per_rank * size seconds of
 * audio each (at least one clip); returns the count, starts[0..count] (starts[count] = n). */
static int plan_rounds(const double *dur, int n, double budget, int **starts_out) {
    int *starts = mallocCheck((size_t)(n + 1) * sizeof *starts);
    int count = 0;
    for (int c0 = 0, c1; c0 < n; c0 = c1) {
        double sum = 0.0;
        for (c1 = c0; c1 < n && (c1 == c0 || sum < budget); c1++)
            sum += dur[c1] > 0 ? dur[c1] : 0;
        starts[count++] = c0;
    }
    starts[count] = n;
    *starts_out = starts;
    return count;
}

void prepare_run(const dataset *ds, const prepare_options *o, prepare_summary *summary) {
    int rank, size, thread_level;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Query_thread(&thread_level);
    int threaded = thread_level >= MPI_THREAD_FUNNELED;
    double t_start = adfd_seconds();
    char checksum[17] = "";
    if (rank == 0 && file_fnv1a64_hex(ds->source_path, checksum) != 0)
        adfd_die(__FILE__, __LINE__, "%s", adfd_error());
    ADFD_MPI_CHECK(MPI_Bcast(checksum, sizeof checksum, MPI_CHAR, 0, MPI_COMM_WORLD));
    store_writer *w =
        store_writer_create(MPI_COMM_WORLD, o->tmp_path, &o->params, ds->source_path, checksum);
    mel_frontend *fe = mel_frontend_create(&o->params);
    ADFD_CHECK(fe != NULL, "%s", adfd_error());
    double t_phase = adfd_seconds();
    double *dur = header_durations(ds, o, rank, size);
    double header_seconds = adfd_seconds() - t_phase;
    double collective_seconds = 0.0, wait_seconds = 0.0;
    int normalise = o->params.log_db; /* the seed preset is fed raw (mean 0, std 1) */

    int n = ds->n_clips;
    int *round_start;
    int n_rounds = plan_rounds(dur, n, o->round_seconds_per_rank * size, &round_start);
    int *owner = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *owner);
    int max_round = 1;
    for (int r = 0; r < n_rounds; r++) {
        deal_round(dur, round_start[r], round_start[r + 1], size, owner + round_start[r]);
        if (round_start[r + 1] - round_start[r] > max_round)
            max_round = round_start[r + 1] - round_start[r];
    }
    double *facts = callocCheck((size_t)(n > 0 ? n : 1) * N_FACTS, sizeof *facts);
    row_index index = {0};
    int32_t *table_row = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *table_row);
    double totals[BAND_STATS] = {0}, train_values = 0.0;
    /* two rounds in flight: the compute thread fills one while the main thread writes the other */
    round_work work[2] = {{0}};
    round_job jobs[2];
    for (int i = 0; i < 2; i++) {
        if (normalise) work[i].stats = mallocCheck((size_t)max_round * BAND_STATS * sizeof(double));
        jobs[i] = (round_job){ds, o, fe, owner, rank, facts, &work[i]};
    }
    pthread_t thread;
    int n_good = 0;
    double audio_done = 0.0;
    if (n_rounds > 0) {
        work[0].c0 = round_start[0];
        work[0].c1 = round_start[1];
        start_round(&jobs[0], threaded, &thread);
    }
    for (int r = 0; r < n_rounds; r++) {
        round_work *cur = &work[r % 2];
        t_phase = adfd_seconds();
        if (threaded) ADFD_CHECK(pthread_join(thread, NULL) == 0, "cannot join the compute thread");
        wait_seconds += adfd_seconds() - t_phase;
        if (cur->failed) fatal_clip(o->tmp_path, cur->message);
        if (r + 1 < n_rounds) {
            work[(r + 1) % 2].c0 = round_start[r + 1];
            work[(r + 1) % 2].c1 = round_start[r + 2];
            start_round(&jobs[(r + 1) % 2], threaded, &thread);
        }
        int c0 = cur->c0, c1 = cur->c1, k = c1 - c0;
        t_phase = adfd_seconds();
        /* settle the round: every rank learns every clip's facts, hence the clip table rows,
         * the round's rows and where its own block starts (the exclusive scan of the ranks' row
         * counts, read off the summed facts: the clips before a rank's first are the lower
         * ranks'); then one collective write */
        if (size > 1) barrier_sleeping(MPI_COMM_WORLD);
        ADFD_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, facts + (size_t)c0 * N_FACTS, k * N_FACTS,
                                     MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
        int64_t round_first = index.rows, local_first = 0, local_rows = 0;
        for (int c = c0; c < c1; c++) {
            double *f = facts + (size_t)c * N_FACTS;
            if (owner[c] < 0) f[FACT_ROWS] = -1; /* unreadable header */
            if (f[FACT_ROWS] < 0) continue;
            int64_t rows = (int64_t)f[FACT_ROWS];
            if (owner[c] < rank) local_first += rows; /* the lower ranks' clips come first */
            if (owner[c] == rank) local_rows += rows;
            table_row[c] = n_good++;
            audio_done += f[FACT_SECONDS];
            row_index_add_clip(&index, table_row[c], rows, (int32_t)f[FACT_LAST_OFFSET],
                               o->params.chunk_hop);
            if (normalise && ds->clips[c].split == SPLIT_TRAIN)
                train_values += (double)rows * ADFD_CHUNK_FRAMES;
        }
        /* the offsets listed for this rank's clips are the ones its chunks came with */
        ADFD_CHECK(
            local_rows == cur->buf.rows &&
                (local_rows == 0 || !memcmp(index.offset + round_first + local_first,
                                            cur->buf.offset, (size_t)local_rows * sizeof(int32_t))),
            "rank %d: the row index of clips %d..%d does not match its rows", rank, c0, c1 - 1);
        store_writer_append_features(w, index.rows - round_first, local_first, local_rows,
                                     cur->buf.features);
        if (normalise) {
            double *stats = cur->stats;
            ADFD_MPI_CHECK(MPI_Reduce(rank == 0 ? MPI_IN_PLACE : stats, stats, k * BAND_STATS,
                                      MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD));
            if (rank == 0)
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < BAND_STATS; j++)
                        totals[j] += stats[(size_t)i * BAND_STATS + j];
        }
        collective_seconds += adfd_seconds() - t_phase;
        if (o->progress && rank == 0) print_progress(c1, n, audio_done, adfd_seconds() - t_start);
    }
    if (o->progress && rank == 0) fprintf(stderr, "\n");

    /* the clip table, speakers, normalisation and skipped list; identical on every rank */
    float mean[ADFD_N_MELS], stdev[ADFD_N_MELS];
    for (int b = 0; b < ADFD_N_MELS; b++) {
        mean[b] = 0.0f;
        stdev[b] = 1.0f;
        if (normalise && train_values > 0) {
            double m = totals[b] / train_values;
            double var = totals[ADFD_N_MELS + b] / train_values - m * m;
            mean[b] = (float)m;
            /* a constant band is left unscaled rather than divided by ~0 */
            stdev[b] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
        }
    }
    if (normalise && train_values == 0)
        log0("adfd prepare: warning: no train rows; normalisation left at mean 0, std 1\n");
    ADFD_MPI_CHECK(MPI_Bcast(mean, ADFD_N_MELS, MPI_FLOAT, 0, MPI_COMM_WORLD));
    ADFD_MPI_CHECK(MPI_Bcast(stdev, ADFD_N_MELS, MPI_FLOAT, 0, MPI_COMM_WORLD));
    const char **files = mallocCheck((size_t)n * sizeof *files);
    const char **skipped = mallocCheck((size_t)n * sizeof *skipped);
    int32_t *speaker = mallocCheck((size_t)n * sizeof *speaker);
    int32_t *label = mallocCheck((size_t)n * sizeof *label);
    int32_t *split = mallocCheck((size_t)n * sizeof *split);
    float *seconds = mallocCheck((size_t)n * sizeof *seconds);
    int n_skipped = 0;
    for (int c = 0; c < n; c++) {
        if (facts[(size_t)c * N_FACTS + FACT_ROWS] < 0) {
            skipped[n_skipped++] = ds->clips[c].file;
            continue;
        }
        int t = table_row[c];
        files[t] = ds->clips[c].file;
        speaker[t] = ds->clips[c].speaker;
        label[t] = ds->clips[c].label;
        split[t] = ds->clips[c].split;
        seconds[t] = (float)facts[(size_t)c * N_FACTS + FACT_SECONDS];
    }
    store_tables tables = {
        n_good,     files,       speaker,        label,
        split,      seconds,     ds->n_speakers, (const char *const *)ds->speakers,
        mean,       stdev,       n_skipped,      skipped,
        index.clip, index.offset};
    store_writer_finish(w, &tables);
    *summary = (prepare_summary){n_good,
                                 n_skipped,
                                 index.rows,
                                 audio_done,
                                 adfd_seconds() - t_start,
                                 header_seconds,
                                 work[0].decode_seconds + work[1].decode_seconds,
                                 work[0].feature_seconds + work[1].feature_seconds,
                                 collective_seconds,
                                 wait_seconds};
    free(files);
    free(skipped);
    free(speaker);
    free(label);
    free(split);
    free(seconds);
    for (int i = 0; i < 2; i++) {
        free(work[i].buf.features);
        free(work[i].buf.offset);
        free(work[i].stats);
    }
    free(round_start);
    free(facts);
    free(index.clip);
    free(index.offset);
    free(owner);
    free(table_row);
    free(dur);
    mel_frontend_free(fe);
}
