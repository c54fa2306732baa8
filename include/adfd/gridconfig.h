/* gridconfig: the grid-search configuration file (configs/NAME.ini) expanded into the list of
 * train_config it describes, and the dealing of those configurations to MPI groups or to the
 * tasks of a Slurm job array (the same dealing for both).
 *
 * File format (one section, comments start with '#' or ';'):
 *     [grid]
 *     channels   = 1, 2, 4        # required, integers > 0
 *     lr         = 1e-3, 5e-4     # required, > 0
 *     batch      = 8, 16          # required, global batch, integers > 0
 *     max_epochs = 20             # default 20, integers > 0
 *     dropout    = 0.5            # default 0.5, in [0, 1)
 *     seed       = 1              # default 1, integers >= 0
 *     patience   = 3              # default 3, integers >= 0 (0: no early stopping)
 * Expansion order: the cartesian product with channels varying slowest, then lr, batch,
 * max_epochs, dropout, seed, and patience fastest; values in the order written. Configuration i
 * is named grid_config_id(i) ("c000", "c001", ...). */
#ifndef ADFD_GRIDCONFIG_H
#define ADFD_GRIDCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "adfd/train.h"

typedef struct {
    train_config *configs; /* [n] in expansion order */
    int n;
} grid_config;

/* -1 + a message naming path:line for any error (unknown key or section, a key outside [grid],
 * a repeated key or value, an empty value list, a value out of range). */
int grid_config_load(grid_config *g, const char *path);
void grid_config_free(grid_config *g);
void grid_config_id(int index, char *out, size_t out_size);
/* Expected cost, proportional to channels x epochs x training samples. */
double grid_config_cost(const train_config *c, int64_t train_samples);
/* owner[i] = the group (0..groups-1) that trains configuration i: greedy longest processing
 * time (most expensive first, ties by index, each to the least loaded group, ties by group). */
void grid_deal(const train_config *configs, int n, int groups, int *owner);
/* The configurations of task task_id out of num_tasks (the same dealing), ascending indices.
 * Returns how many were written to indices (which has room for n). */
int grid_task_slice(const train_config *configs, int n, int task_id, int num_tasks, int *indices);

#endif
