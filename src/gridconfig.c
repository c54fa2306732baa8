#include "adfd/gridconfig.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/util.h"

enum {
    KEY_CHANNELS,
    KEY_LR,
    KEY_BATCH,
    KEY_MAX_EPOCHS,
    KEY_DROPOUT,
    KEY_SEED,
    KEY_PATIENCE,
    N_KEYS
};
static const char *const key_names[N_KEYS] = {"channels", "lr",   "batch",   "max_epochs",
                                              "dropout",  "seed", "patience"};
static const double key_defaults[N_KEYS] = {0, 0, 0, 20, 0.5, 1, 3};
static const int key_required[N_KEYS] = {1, 1, 1, 0, 0, 0, 0};
enum { MAX_VALUES = 64 };

typedef struct {
    double values[MAX_VALUES];
    int n;
    int line; /* where the key was set, 0 if not set */
} value_list;

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = 0;
    return s;
}

/* Range check of one value of a key; the message completes "path:line: key: ". */
static const char *value_problem(int key, double v) {
    int is_integer = key != KEY_LR && key != KEY_DROPOUT;
    if (is_integer && v != floor(v)) return "must be an integer";
    switch (key) {
    case KEY_CHANNELS:
    case KEY_BATCH:
    case KEY_MAX_EPOCHS:
        return v > 0 && v <= 1e6 ? NULL : "must be a positive integer";
    case KEY_LR:
        return v > 0 && isfinite(v) ? NULL : "the learning rate must be > 0";
    case KEY_DROPOUT:
        return v >= 0 && v < 1 ? NULL : "dropout must be in [0, 1)";
    case KEY_SEED:
        return v >= 0 && v < 9007199254740992.0 ? NULL : "must be an integer >= 0";
    default:
        return v >= 0 && v <= 1e6 ? NULL : "must be an integer >= 0";
    }
}

static int parse_values(const char *path, int line, int key, char *text, value_list *out) {
    out->n = 0;
    out->line = line;
    if (!*trim(text)) return adfd_fail("%s:%d: %s: empty value list", path, line, key_names[key]);
    for (char *item = text;;) {
        char *comma = strchr(item, ',');
        if (comma) *comma = 0;
        char *v = trim(item), *end;
        if (!*v) return adfd_fail("%s:%d: %s: empty value in the list", path, line, key_names[key]);
        errno = 0;
        double x = strtod(v, &end);
        if (errno || *end)
            return adfd_fail("%s:%d: %s: '%s' is not a number", path, line, key_names[key], v);
        const char *problem = value_problem(key, x);
        if (problem)
            return adfd_fail("%s:%d: %s: %s (got %s)", path, line, key_names[key], problem, v);
        for (int i = 0; i < out->n; i++)
            if (out->values[i] == x)
                return adfd_fail("%s:%d: %s: value %s is listed twice", path, line, key_names[key],
                                 v);
        if (out->n == MAX_VALUES)
            return adfd_fail("%s:%d: %s: more than %d values", path, line, key_names[key],
                             MAX_VALUES);
        out->values[out->n++] = x;
        if (!comma) break;
        item = comma + 1;
    }
    return 0;
}

static int parse_file(const char *path, FILE *fp, value_list lists[N_KEYS]) {
    char buf[4096];
    int line = 0, in_grid = 0;
    while (fgets(buf, sizeof buf, fp)) {
        line++;
        if (!strchr(buf, '\n') && !feof(fp)) return adfd_fail("%s:%d: line too long", path, line);
        buf[strcspn(buf, "#;\r\n")] = 0;
        char *s = trim(buf);
        if (!*s) continue;
        if (*s == '[') {
            if (strcmp(s, "[grid]"))
                return adfd_fail("%s:%d: unknown section %s (the only section is [grid])", path,
                                 line, s);
            in_grid = 1;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return adfd_fail("%s:%d: expected 'key = value, value, ...'", path, line);
        *eq = 0;
        char *name = trim(s);
        int key = -1;
        for (int k = 0; k < N_KEYS; k++)
            if (!strcmp(name, key_names[k])) key = k;
        if (key < 0)
            return adfd_fail("%s:%d: unknown key '%s' (known: channels, lr, batch, max_epochs, "
                             "dropout, seed, patience)",
                             path, line, name);
        if (!in_grid)
            return adfd_fail("%s:%d: key '%s' outside the [grid] section", path, line, name);
        if (lists[key].line)
            return adfd_fail("%s:%d: key '%s' already set on line %d", path, line, name,
                             lists[key].line);
        if (parse_values(path, line, key, eq + 1, &lists[key])) return -1;
    }
    if (ferror(fp)) return adfd_fail("%s: read error", path);
    if (!in_grid) return adfd_fail("%s: no [grid] section", path);
    for (int k = 0; k < N_KEYS; k++) {
        if (lists[k].line) continue;
        if (key_required[k]) return adfd_fail("%s: missing key '%s'", path, key_names[k]);
        lists[k].n = 1;
        lists[k].values[0] = key_defaults[k];
    }
    return 0;
}

int grid_config_load(grid_config *g, const char *path) {
    memset(g, 0, sizeof *g);
    FILE *fp = fopen(path, "r");
    if (!fp) return adfd_fail("%s: cannot open the grid configuration: %s", path, strerror(errno));
    value_list lists[N_KEYS];
    memset(lists, 0, sizeof lists);
    int rc = parse_file(path, fp, lists);
    fclose(fp);
    if (rc) return -1;
    long total = 1;
    for (int k = 0; k < N_KEYS; k++)
        total *= lists[k].n;
    if (total > 100000) return adfd_fail("%s: %ld configurations is too many", path, total);
    g->n = (int)total;
    g->configs = callocCheck((size_t)total, sizeof(train_config));
    for (int i = 0; i < g->n; i++) {
        int pick[N_KEYS], rest = i;
        for (int k = N_KEYS - 1; k >= 0; k--) { /* the last key varies fastest */
            pick[k] = rest % lists[k].n;
            rest /= lists[k].n;
        }
        train_config *c = &g->configs[i];
        c->channels = (int)lists[KEY_CHANNELS].values[pick[KEY_CHANNELS]];
        c->lr = lists[KEY_LR].values[pick[KEY_LR]];
        c->batch = (int)lists[KEY_BATCH].values[pick[KEY_BATCH]];
        c->max_epochs = (int)lists[KEY_MAX_EPOCHS].values[pick[KEY_MAX_EPOCHS]];
        c->dropout = lists[KEY_DROPOUT].values[pick[KEY_DROPOUT]];
        c->seed = (uint64_t)lists[KEY_SEED].values[pick[KEY_SEED]];
        c->patience = (int)lists[KEY_PATIENCE].values[pick[KEY_PATIENCE]];
    }
    return 0;
}

void grid_config_free(grid_config *g) {
    free(g->configs);
    memset(g, 0, sizeof *g);
}

void grid_config_id(int index, char *out, size_t out_size) {
    snprintf(out, out_size, "c%03d", index);
}

double grid_config_cost(const train_config *c, int64_t train_samples) {
    return (double)c->channels * c->max_epochs * (double)train_samples;
}

typedef struct {
    double cost;
    int index;
} costed_config;

static int compare_by_cost(const void *pa, const void *pb) {
    const costed_config *a = pa, *b = pb;
    if (a->cost != b->cost) return a->cost > b->cost ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

void grid_deal(const train_config *configs, int n, int groups, int *owner) {
    costed_config *order = mallocCheck(sizeof(costed_config) * (size_t)(n > 0 ? n : 1));
    double *load = callocCheck((size_t)groups, sizeof(double));
    for (int i = 0; i < n; i++)
        order[i] = (costed_config){grid_config_cost(&configs[i], 1), i};
    qsort(order, (size_t)n, sizeof *order, compare_by_cost);
    for (int j = 0; j < n; j++) {
        int least = 0;
        for (int g = 1; g < groups; g++)
            if (load[g] < load[least]) least = g;
        owner[order[j].index] = least;
        load[least] += order[j].cost;
    }
    free(order);
    free(load);
}

int grid_task_slice(const train_config *configs, int n, int task_id, int num_tasks, int *indices) {
    int *owner = mallocCheck(sizeof(int) * (size_t)(n > 0 ? n : 1));
    grid_deal(configs, n, num_tasks, owner);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (owner[i] == task_id) indices[m++] = i;
    free(owner);
    return m;
}
