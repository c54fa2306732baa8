/* The run folder's epoch files merged by rank 0: a repeated (config, epoch) keeps the last line
 * (an epoch redone after a kill), a line still being written is ignored, finished = model file
 * exists, the best is the finished configuration with the lowest test loss (hand-made files). */
#include <stdlib.h>
#include <string.h>

#include "adfd/gridrun.h"
#include "adfd/util.h"
#include "check.h"

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
}

int main(void) {
    const char *dir = "gridrun_scratch";
    make_dirs("gridrun_scratch/epochs");
    make_dirs("gridrun_scratch/models");
    remove("gridrun_scratch/models/c000.h5");
    train_config configs[3] = {{.channels = 1, .lr = 1e-3, .batch = 8, .max_epochs = 3},
                               {.channels = 2, .lr = 1e-3, .batch = 8, .max_epochs = 3},
                               {.channels = 4, .lr = 1e-3, .batch = 8, .max_epochs = 3}};
    grid_config g = {configs, 3};
    /* group 0: c000 epochs 1-2 (epoch 2 twice: the second one wins); group 1: c001 epoch 1-3,
     * c002 epoch 1 and a half-written line. */
    write_text("gridrun_scratch/epochs/group000.tsv", "0\t1\t0.9\t0.8\t0.6\t1.5\t1\t0\n"
                                                      "0\t2\t0.7\t0.75\t0.65\t1.5\t1\t0\n"
                                                      "0\t2\t0.7\t0.70\t0.66\t1.6\t1\t0\n");
    write_text("gridrun_scratch/epochs/group001.tsv", "1\t1\t0.9\t0.9\t0.5\t1\t1\t0\n"
                                                      "1\t2\t0.8\t0.5\t0.7\t1\t1\t0\n"
                                                      "1\t3\t0.7\t0.6\t0.8\t1\t0\t0\n"
                                                      "2\t1\t0.9\t0.1\t0.9\t1\t1\t0\n"
                                                      "2\t2\t0.8\t0.0");
    epoch_result r = {.epoch = 3, .train_loss = 0.6, .test_loss = 0.72, .test_auc = 0.7};
    CHECK(gridrun_append_epoch("gridrun_scratch/epochs/group000.tsv", 0, &r) == 0, "append");
    write_text("gridrun_scratch/models/c001.h5", "x");
    grid_state st;
    CHECK(gridrun_collect(dir, &g, &st) == 0, "%s", adfd_error());
    CHECK(st.n_rows == 7, "rows %d (3 + 3 + 1)", st.n_rows);
    if (st.n_rows == 7) {
        CHECK(st.rows[1].config == 0 && st.rows[1].r.epoch == 2 && st.rows[1].r.test_loss == 0.70,
              "the later c000 epoch 2 line wins");
        CHECK(st.rows[2].config == 0 && st.rows[2].r.epoch == 3 && st.rows[2].r.test_loss == 0.72,
              "appended line");
        CHECK(st.rows[6].config == 2 && st.rows[6].r.epoch == 1, "half line ignored");
    }
    /* Only c001 is finished, so c002's 0.1 does not count yet: best c001 epoch 2 (0.5). */
    CHECK(st.n_done == 1 && st.done[1] && !st.done[0] && !st.done[2], "done flags");
    CHECK(st.best == 1 && st.best_epoch == 2 && st.best_loss == 0.5, "best c%03d epoch %d", st.best,
          st.best_epoch);
    CHECK(gridrun_write_tables(dir, &g, &st) == 0, "%s", adfd_error());
    grid_state_free(&st);
    FILE *fp = fopen("gridrun_scratch/grid.tsv", "r");
    char line[512];
    int lines = 0;
    while (fp && fgets(line, sizeof line, fp))
        lines++;
    if (fp) fclose(fp);
    CHECK(lines == 8, "grid.tsv has a header and 7 rows, got %d lines", lines);
    write_text("gridrun_scratch/epochs/group002.tsv", "7\t1\t0.9\t0.1\t0.9\t1\t1\t0\n");
    CHECK(gridrun_collect(dir, &g, &st) == -1 && strstr(adfd_error(), "group002.tsv:1"),
          "a configuration outside the grid is reported with file:line: %s", adfd_error());
    remove("gridrun_scratch/epochs/group002.tsv");
    remove("gridrun_scratch/models/c001.h5");
    return check_exit_status("test_gridrun");
}
