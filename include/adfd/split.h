/* split: the speaker-disjoint train / test / holdout assignment of a data set's clips, its
 * summary table and the split.csv file (file,speaker,label,split) that later stages read. */
#ifndef ADFD_SPLIT_H
#define ADFD_SPLIT_H

#include <stdint.h>
#include <stdio.h>

#include "adfd/dataset.h"

typedef struct {
    int clips, real, fake, speakers; /* real = bona fide, fake = spoof */
} split_counts;

/* Sets every clip's split. The named speakers are held out; every other speaker goes, with all
 * of its clips, to train or to test so that test clips / (train + test clips) is as close as
 * possible to test_fraction (an exact subset-sum search). Among equally close choices the seed
 * picks one, so the result is a function of (data set, holdout, fraction, seed) only.
 * -1 + adfd_fail if a held-out name is not a speaker of the data set or nothing is left. */
int split_assign(dataset *ds, const char *const *holdout, int n_holdout, double test_fraction,
                 uint64_t seed);
/* Per-split counts, indexed by SPLIT_TRAIN / SPLIT_TEST / SPLIT_HOLDOUT. */
void split_count(const dataset *ds, split_counts counts[3]);
/* The table: per split clips, real, fake, speakers, share of all clips; then a total row. */
void split_print_table(const dataset *ds, FILE *out);
/* split.csv: header "file,speaker,label,split", one row per clip in data set order, fields
 * quoted as RFC 4180 requires; written under a temporary name and renamed. */
int split_write_csv(const dataset *ds, const char *path);

#endif
