/* gridrun: the run folder of `adfd grid` (docs/grid.md) and what rank 0 makes of it.
 *
 *   runs/NAME/grid.ini            copy of the configuration (--resume refuses another one)
 *   runs/NAME/epochs/GROUP.tsv     one file per group leader (and Slurm task); every epoch of
 *                                 every configuration appended as one line when it ends
 *   runs/NAME/models/cNNN.h5      best-epoch model of a finished configuration
 *   runs/NAME/checkpoints/cNNN/   train_run checkpoints (weights, Adam state, epoch)
 *   runs/NAME/grid.tsv            all epochs merged, sorted by configuration and epoch
 *   runs/NAME/summary.txt         readable summary, ranking and per-epoch log
 * Several processes append to epochs/ files while rank 0 reads them: a line is written with one
 * write(2) in append mode and a line without its newline is not read. */
#ifndef ADFD_GRIDRUN_H
#define ADFD_GRIDRUN_H

#include "adfd/gridconfig.h"
#include "adfd/report.h"

/* Appends one epoch of configuration `config` to the epoch file (created if missing). */
int gridrun_append_epoch(const char *epoch_file, int config, const epoch_result *r);

typedef struct {
    grid_epoch_row *rows; /* sorted by configuration then epoch; one row per (config, epoch) */
    int n_rows;
    int *done; /* [n configs]: the configuration's model file exists */
    int n_done;
    int best; /* best finished configuration by its lowest test loss (-1: none yet) */
    int best_epoch;
    double best_loss, best_auc;
} grid_state;

/* Reads every DIR/epochs/GROUP.tsv (the last line wins for a repeated (config, epoch)). */
int gridrun_collect(const char *dir, const grid_config *g, grid_state *st);
void grid_state_free(grid_state *st);
/* DIR/grid.tsv and DIR/summary.txt from the state. */
int gridrun_write_tables(const char *dir, const grid_config *g, const grid_state *st);
void gridrun_model_path(const char *dir, int config, char *out, size_t out_size);
void gridrun_checkpoint_dir(const char *dir, int config, char *out, size_t out_size);

#endif
