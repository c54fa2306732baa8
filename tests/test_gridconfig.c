/* Grid configuration files: expansion of configs/seed-grid.ini, every kind of error with its
 * file:line, and the dealing of configurations to groups (hand-worked example + invariants). */
#include <stdlib.h>
#include <string.h>

#include "adfd/gridconfig.h"
#include "adfd/util.h"
#include "check.h"

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
}

static void expect_error(const char *text, const char *where, const char *what) {
    const char *path = "gridconfig_scratch/bad.ini";
    write_file(path, text);
    grid_config g;
    int rc = grid_config_load(&g, path);
    CHECK(rc == -1, "accepted: %s", text);
    CHECK(strstr(adfd_error(), where) && strstr(adfd_error(), what), "message '%s' lacks '%s' '%s'",
          adfd_error(), where, what);
}

static void seed_grid(void) {
    grid_config g;
    CHECK(grid_config_load(&g, ADFD_SOURCE_DIR "/configs/seed-grid.ini") == 0, "%s", adfd_error());
    CHECK(g.n == 105, "n = %d", g.n);
    if (g.n != 105) return;
    /* channels slowest (15 each), then lr (5 each), batch fastest. */
    const train_config *c = g.configs;
    CHECK(c[0].channels == 1 && c[0].lr == 1e-3 && c[0].batch == 8, "c000");
    CHECK(c[1].channels == 1 && c[1].lr == 1e-3 && c[1].batch == 16, "c001");
    CHECK(c[5].channels == 1 && c[5].lr == 5e-4 && c[5].batch == 8, "c005");
    CHECK(c[15].channels == 2 && c[15].lr == 1e-3 && c[15].batch == 8, "c015");
    CHECK(c[104].channels == 64 && c[104].lr == 1e-4 && c[104].batch == 128, "c104");
    for (int i = 0; i < g.n; i++)
        CHECK(c[i].max_epochs == 20 && c[i].patience == 3 && c[i].seed == 1 && c[i].dropout == 0.5,
              "c%03d fixed values", i);
    char id[16];
    grid_config_id(7, id, sizeof id);
    CHECK(!strcmp(id, "c007"), "id %s", id);

    /* Two groups: loads within one configuration's cost of each other; slices partition. */
    int owner[105], slice0[105], slice1[105];
    grid_deal(g.configs, g.n, 2, owner);
    double load[2] = {0, 0}, max_cost = 0;
    for (int i = 0; i < g.n; i++) {
        double cost = grid_config_cost(&c[i], 1);
        load[owner[i]] += cost;
        if (cost > max_cost) max_cost = cost;
    }
    CHECK(fabs(load[0] - load[1]) <= max_cost, "loads %g %g", load[0], load[1]);
    int n0 = grid_task_slice(g.configs, g.n, 0, 2, slice0);
    int n1 = grid_task_slice(g.configs, g.n, 1, 2, slice1);
    CHECK(n0 + n1 == 105, "slices %d + %d", n0, n1);
    for (int j = 0; j < n0; j++)
        CHECK(owner[slice0[j]] == 0, "slice 0 = group 0");
    for (int j = 0; j < n1; j++)
        CHECK(owner[slice1[j]] == 1, "slice 1 = group 1");
    grid_config_free(&g);
}

static void small_grid_and_dealing(void) {
    write_file("gridconfig_scratch/small.ini", "; a comment\n[grid]\nchannels = 1, 2,4 ,8 # four\n"
                                               "lr=0.01\nbatch = 4\nmax_epochs = 2\n"
                                               "dropout = 0, 0.25\nseed = 3\npatience = 0\n");
    grid_config g;
    CHECK(grid_config_load(&g, "gridconfig_scratch/small.ini") == 0, "%s", adfd_error());
    CHECK(g.n == 8, "n = %d", g.n);
    if (g.n != 8) return;
    CHECK(g.configs[1].channels == 1 && g.configs[1].dropout == 0.25, "dropout fastest");
    CHECK(g.configs[7].channels == 8 && g.configs[7].seed == 3 && g.configs[7].patience == 0,
          "c007");
    /* LPT, cost = channels x 2 epochs: c6 c7 16, c4 c5 8, c2 c3 4, c0 c1 2 (ties by index).
     * 2 groups, loads (g0,g1): c6->g0 (16,0), c7->g1 (16,16), c4->g0 (tie: lower group) (24,16),
     * c5->g1 (24,24), c2->g0, c3->g1, c0->g0, c1->g1: every pair splits. */
    int owner[8];
    grid_deal(g.configs, g.n, 2, owner);
    const int want[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    for (int i = 0; i < 8; i++)
        CHECK(owner[i] == want[i], "owner[%d] = %d", i, owner[i]);
    /* 3 groups: c6->g0 (16,0,0), c7->g1 (16,16,0), c4->g2 (16,16,8), c5->g2 (16,16,16),
     * c2->g0 (20,16,16), c3->g1 (20,20,16), c0->g2 (20,20,18), c1->g2 (20,20,20). */
    int owner3[8];
    grid_deal(g.configs, g.n, 3, owner3);
    const int want3[8] = {2, 2, 0, 1, 2, 2, 0, 1};
    for (int i = 0; i < 8; i++)
        CHECK(owner3[i] == want3[i], "owner3[%d] = %d", i, owner3[i]);
    grid_config_free(&g);
}

int main(void) {
    make_dirs("gridconfig_scratch");
    seed_grid();
    small_grid_and_dealing();
    const char *ok_rest = "lr = 1e-3\nbatch = 8\n";
    char text[512];
    snprintf(text, sizeof text, "[grid]\nchannels = 1\nwidth = 3\n%s", ok_rest);
    expect_error(text, "bad.ini:3:", "unknown key 'width'");
    snprintf(text, sizeof text, "[grid]\nchannels =\n%s", ok_rest);
    expect_error(text, "bad.ini:2:", "empty value list");
    snprintf(text, sizeof text, "[grid]\nchannels = 1,,2\n%s", ok_rest);
    expect_error(text, "bad.ini:2:", "empty value");
    expect_error("[grid]\nchannels = 1\nlr = 1e-3, -1e-4\nbatch = 8\n",
                 "bad.ini:3:", "learning rate must be > 0");
    expect_error("[grid]\nchannels = 1\nlr = 0\nbatch = 8\n", "bad.ini:3:", "learning rate");
    snprintf(text, sizeof text, "[grid]\nchannels = 0\n%s", ok_rest);
    expect_error(text, "bad.ini:2:", "positive integer");
    snprintf(text, sizeof text, "[grid]\nchannels = 2.5\n%s", ok_rest);
    expect_error(text, "bad.ini:2:", "integer");
    expect_error("[grid]\nchannels = 1\nlr = 1e-3\nbatch = -8\n", "bad.ini:4:", "positive");
    snprintf(text, sizeof text, "[grid]\nchannels = 1\n%smax_epochs = 0\n", ok_rest);
    expect_error(text, "bad.ini:5:", "positive");
    snprintf(text, sizeof text, "[grid]\nchannels = 1\n%sdropout = 1\n", ok_rest);
    expect_error(text, "bad.ini:5:", "dropout must be in [0, 1)");
    snprintf(text, sizeof text, "[grid]\nchannels = 1\n%sdropout = -0.1\n", ok_rest);
    expect_error(text, "bad.ini:5:", "dropout");
    snprintf(text, sizeof text, "[grid]\nchannels = one\n%s", ok_rest);
    expect_error(text, "bad.ini:2:", "'one' is not a number");
    snprintf(text, sizeof text, "[grid]\nchannels = 1, 1\n%s", ok_rest);
    expect_error(text, "bad.ini:2:", "listed twice");
    snprintf(text, sizeof text, "[grid]\nchannels = 1\nchannels = 2\n%s", ok_rest);
    expect_error(text, "bad.ini:3:", "already set on line 2");
    snprintf(text, sizeof text, "channels = 1\n[grid]\n%s", ok_rest);
    expect_error(text, "bad.ini:1:", "outside the [grid] section");
    snprintf(text, sizeof text, "[train]\nchannels = 1\n%s", ok_rest);
    expect_error(text, "bad.ini:1:", "unknown section [train]");
    expect_error("[grid]\nchannels = 1\nlr = 1e-3\n", "bad.ini", "missing key 'batch'");
    snprintf(text, sizeof text, "[grid]\nchannels 1\n%s", ok_rest);
    expect_error(text, "bad.ini:2:", "expected 'key = value");
    grid_config g;
    CHECK(grid_config_load(&g, "gridconfig_scratch/missing.ini") == -1 &&
              strstr(adfd_error(), "missing.ini"),
          "missing file");
    return check_exit_status("test_gridconfig");
}
