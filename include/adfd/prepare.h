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
 *  3. the per-clip facts (row count, -1 = unreadable and skipped; decoded seconds; offset of the
 *     last row) are summed over the ranks in one allreduce (every clip has exactly one owner, so
 *     the sums are exact). Every rank then knows every clip's row in the clip table, the round's
 *     row count, where its own block starts, and /clip and /offset of every row;
 *  4. one collective write appends the round's /features rows, each rank's block at its place
 *     (store_writer_append_features); /clip and /offset are written once, at the end.
 * Steps 1-2 of round k+1 run on a compute thread while the main thread does steps 3-4 of round k
 * (the main thread alone calls MPI and HDF5: MPI_THREAD_FUNNELED), so writing the file, which
 * costs CPU time in the kernel, overlaps computing; two rounds of rows are held per rank. A rank
 * that reaches step 3 first waits in a sleeping barrier rather than in Open MPI's polling loop,
 * which would take the core from its compute thread. Without thread support the steps
 * alternate.
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
