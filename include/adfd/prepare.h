/* prepare: the MPI engine of `adfd prepare` — deal the clips to the ranks balanced by duration,
 * decode them, compute their chunks and write them collectively into one feature file, in clip
 * order, so that any number of ranks writes the same /features, /clip and /offset.
 *
 * The clips are processed in rounds of consecutive clips (about round_seconds_per_rank of audio
 * per rank) so that memory does not grow with the data set. In each round:
 *  1. the round's clips are cut into `size` runs of consecutive clips with nearly equal audio
 *     (from the header durations, read by all ranks and summed); run r goes to rank r. Every rank
 *     computes the same deal, and each rank's rows are one contiguous block of the round.
 *     (A longest-first deal balances no better once a round holds many clips, and it scatters a
 *     rank's rows: they then had to be exchanged (MPI_Alltoallv) before a regular collective
 *     write, which cost more than it saved; writing the scattered rows directly as a union of
 *     hyperslabs makes HDF5 1.10 walk the selection element by element, 10x slower.)
 *  2. each rank decodes its clips in clip order and cuts them into chunks;
 *  3. the per-clip row counts (-1 = unreadable, skipped) and durations are summed over the
 *     ranks (every clip has exactly one owner, so the sum is exact), which gives every clip its
 *     row in the clip table;
 *  4. one collective write per dataset appends the round's rows, each rank's block at the offset
 *     of an exclusive scan of the row counts (store_writer_append).
 * Steps 1-2 of round k+1 run on a compute thread while the main thread does steps 3-4 of round k
 * (the main thread alone calls MPI and HDF5: MPI_THREAD_FUNNELED). Writing a file costs CPU
 * time that does not shrink with more ranks (the kernel copies every byte into the page cache,
 * one writer at a time per file); overlapped, it fills the time a rank would otherwise spend
 * waiting, so two rounds of rows are held per rank. Without thread support the steps alternate.
 * Normalisation (default preset): per-clip sums of x and x^2 per band over the clip's rows, in
 * double, reduced to rank 0 (exact, one owner per clip) and added in clip order there, so the
 * mean/std do not depend on the rank count. */
#ifndef ADFD_PREPARE_H
#define ADFD_PREPARE_H

#include <stdint.h>

#include "adfd/dataset.h"
#include "adfd/features.h"

typedef struct {
    feature_params params;
    const char *tmp_path;          /* the file written (same name on every rank) */
    int skip_bad;                  /* unreadable clips are skipped and listed instead of fatal */
    int progress;                  /* rank 0 redraws a progress line on stderr */
    double round_seconds_per_rank; /* audio per rank per round (memory bound) */
} prepare_options;

typedef struct {
    int n_clips;   /* written */
    int n_skipped; /* unreadable, with skip_bad */
    int64_t n_rows;
    double audio_seconds; /* decoded audio of the written clips */
    double wall_seconds;
    /* where rank 0's time went: header durations; on the compute thread, decoding + resampling
     * and features; on the main thread, the collective steps (sums, writes, waiting for the
     * slowest rank) and waiting for the compute thread to finish the next round */
    double header_seconds, decode_seconds, feature_seconds, collective_seconds, wait_seconds;
} prepare_summary;

/* Collective over MPI_COMM_WORLD. An unreadable clip without skip_bad removes tmp_path and
 * aborts every rank with a message naming the clip (adfd_die). */
void prepare_run(const dataset *ds, const prepare_options *o, prepare_summary *summary);

#endif
