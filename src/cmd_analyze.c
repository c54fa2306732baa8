/* adfd analyze: score audio files with a model — P(spoof) of the clip, the verdict, the windows
 * that most triggered the detector — as a table or JSON (docs/analyze.md), with optional WAV
 * export of the top windows and a timeline plot. One process; one bad file does not stop the
 * others, and the exit status is 1 when any failed. */
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "adfd/analyze.h"
#include "adfd/audio.h"
#include "adfd/cli.h"

static void print_usage(FILE *out) {
    fprintf(out,
            "Usage: adfd analyze [--model M] FILE... [--top K] [--hop SECONDS] [--json]\n"
            "                    [--export DIR] [--plot PNG] [--aggregate rms|mean|max]\n\n"
            "Scores audio files with a model: P(spoof) of every 1-second window on a sliding\n"
            "grid, the clip score, the verdict against the model's threshold and the windows\n"
            "that scored highest.\n\n"
            "  FILE              any audio libsndfile reads (any rate, any channels); a folder\n"
            "                    scores every audio file in it (sorted); '-' reads standard input\n"
            "  --model M         model file (default: models/demo.h5 of the adfd source tree)\n"
            "  --top K           windows listed (and exported) per file, best first (default 5)\n"
            "  --hop SECONDS     step between windows (default 0.5), rounded to whole frames\n"
            "  --aggregate A     clip score from the window scores: rms, mean or max\n"
            "                    (default: the model's own, rms for the seed model)\n"
            "  --json            one JSON document on stdout (schema: docs/analyze.schema.json)\n"
            "  --export DIR      write the top-K windows of each file as 16 kHz WAV into DIR\n"
            "  --plot PNG        waveform and window scores over time (gnuplot); with several\n"
            "                    files, one PNG per file named PNG-<file name>.png\n"
            "  --help            this text\n\n"
            "Exit status: 0 all files scored, 1 a runtime error or any file failed, 2 usage.\n");
}

typedef struct {
    const char *model_path;
    int top_k;
    double hop_seconds;
    const char *aggregate;
    int json;
    const char *export_dir;
    const char *plot_path;
} analyze_options;

/* One input to score; error is set when the argument could not even be listed. */
typedef struct {
    char *path;
    char *error;
    char *name; /* for output file names (assign_output_names) */
} input_file;

typedef struct {
    input_file *items;
    int n, cap;
} input_list;

static void input_push(input_list *l, const char *path, const char *error) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        input_file *grown = realloc(l->items, sizeof(input_file) * l->cap);
        if (!grown) adfd_die(__FILE__, __LINE__, "out of memory listing inputs");
        l->items = grown;
    }
    l->items[l->n].path = adfd_strdup(path);
    l->items[l->n].error = error ? adfd_strdup(error) : NULL;
    l->items[l->n].name = NULL;
    l->n++;
}

static void input_list_free(input_list *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->items[i].path);
        free(l->items[i].error);
        free(l->items[i].name);
    }
    free(l->items);
}

static int has_audio_extension(const char *name) {
    static const char *const extensions[] = {"wav", "wave", "flac", "ogg",  "oga", "opus",
                                             "mp3", "aif",  "aiff", "aifc", "au",  "snd",
                                             "caf", "w64",  "rf64", "voc"};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (!strcasecmp(dot + 1, extensions[i])) return 1;
    return 0;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every audio file directly inside dir, sorted by name (hidden files skipped). */
static void expand_folder(input_list *l, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        char message[4200];
        snprintf(message, sizeof message, "cannot open the folder");
        input_push(l, dir, message);
        return;
    }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_audio_extension(e->d_name)) continue;
        char path[4096];
        path_join(path, sizeof path, dir, e->d_name);
        if (path_is_dir(path)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, sizeof(char *) * cap);
            if (!grown) adfd_die(__FILE__, __LINE__, "out of memory listing %s", dir);
            names = grown;
        }
        names[n++] = adfd_strdup(path);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), compare_strings);
    if (n == 0) input_push(l, dir, "the folder holds no audio file (wav, flac, ogg, mp3, ...)");
    for (int i = 0; i < n; i++) {
        input_push(l, names[i], NULL);
        free(names[i]);
    }
    free(names);
}

/* models/demo.h5 of the source tree, else next to the executable or one folder above it. */
static int find_default_model(char *out, size_t out_size) {
    char exe[PATH_MAX] = "", candidates[3][PATH_MAX + 32];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(candidates[0], sizeof candidates[0], "%s/models/demo.h5", ADFD_SOURCE_DIR);
    snprintf(candidates[1], sizeof candidates[1], "%s/models/demo.h5", exe);
    snprintf(candidates[2], sizeof candidates[2], "%s/../models/demo.h5", exe);
    for (int i = 0; i < 3; i++) {
        if (path_exists(candidates[i]) && strlen(candidates[i]) < out_size) {
            memcpy(out, candidates[i], strlen(candidates[i]) + 1);
            return 0;
        }
    }
    return adfd_fail("no --model given and the default model models/demo.h5 was not found "
                     "(looked in %s and %s): pass --model M, or train one (adfd grid, see "
                     "README.md)",
                     candidates[0], candidates[1]);
}

/* The file name without folder and extension ("stdin" for "-"), malloc'ed. */
static char *file_stem(const char *path) {
    if (!strcmp(path, "-")) return adfd_strdup("stdin");
    const char *slash = strrchr(path, '/');
    char *stem = adfd_strdup(slash ? slash + 1 : path);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = '\0';
    return stem;
}

static int compare_by_name_then_position(const void *a, const void *b) {
    const input_file *x = *(input_file *const *)a, *y = *(input_file *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x > y) - (x < y);
}

/* Names for the outputs of each input (exports, plots): its stem, made unique by appending its
 * position (1-based) when an earlier input has the same stem (a/x.wav and b/x.wav). Sorting keeps
 * this O(n log n) for folders of thousands of files. */
static void assign_output_names(input_list *l) {
    input_file **order = mallocCheck(sizeof(input_file *) * (l->n ? l->n : 1));
    for (int i = 0; i < l->n; i++) {
        l->items[i].name = file_stem(l->items[i].path);
        order[i] = &l->items[i];
    }
    qsort(order, l->n, sizeof *order, compare_by_name_then_position);
    const char *group = l->n ? order[0]->name : NULL; /* the first input of a run of equal stems */
    for (int i = 1; i < l->n; i++) {
        if (strcmp(order[i]->name, group) != 0) {
            group = order[i]->name;
            continue;
        }
        char *unique = mallocCheck(strlen(order[i]->name) + 16);
        sprintf(unique, "%s-%d", order[i]->name, (int)(order[i] - l->items) + 1);
        free(order[i]->name);
        order[i]->name = unique;
    }
    free(order);
}

static void plot_path_for(const analyze_options *o, const input_list *l, int i, char *out,
                          size_t out_size) {
    if (l->n == 1) {
        snprintf(out, out_size, "%s", o->plot_path);
        return;
    }
    char base[4096];
    snprintf(base, sizeof base, "%s", o->plot_path);
    size_t len = strlen(base);
    if (len > 4 && !strcasecmp(base + len - 4, ".png")) base[len - 4] = '\0';
    snprintf(out, out_size, "%s-%s.png", base, l->items[i].name);
}

/* Everything a run needs besides the options. */
typedef struct {
    const analyze_options *opt;
    const input_list *inputs;
    const char *model_path;
    analyzer az;
    int files_reported;
} analyze_run;

static void report_error(analyze_run *run, const char *path, const char *error) {
    char message[4600];
    size_t len = strlen(path);
    if (!strncmp(error, path, len) && error[len] == ':')
        snprintf(message, sizeof message, "%s", error);
    else
        snprintf(message, sizeof message, "%s: %s", path, error);
    fprintf(stderr, "adfd analyze: %s\n", message);
    if (run->opt->json) analyze_print_json_error(stdout, path, message, run->files_reported == 0);
    run->files_reported++;
}

/* Writes the exports and the plot of one scored file; -1 + message on the first failure. */
static int write_file_outputs(analyze_run *run, int i, const float *x, int64_t n,
                              const analyze_result *r, const int *top, int n_top,
                              char (*exports)[ADFD_ANALYZE_PATH_MAX], char *plot,
                              size_t plot_size) {
    const analyze_options *o = run->opt;
    const char *name = run->inputs->items[i].name;
    for (int k = 0; exports && k < n_top; k++) {
        const analyze_window *w = &r->windows[top[k]];
        char file[ADFD_ANALYZE_PATH_MAX];
        snprintf(file, sizeof file, "%s_top%d_%.2f-%.2fs.wav", name, k + 1, w->start_seconds,
                 w->end_seconds);
        path_join(exports[k], ADFD_ANALYZE_PATH_MAX, o->export_dir, file);
        if (analyze_export_window(exports[k], x, n, w, run->az.window_params.hop_length) != 0)
            return -1;
    }
    if (o->plot_path) {
        char title[ADFD_ANALYZE_PATH_MAX];
        plot_path_for(o, run->inputs, i, plot, plot_size);
        snprintf(title, sizeof title, "%s: clip score %.3f (%s)", run->inputs->items[i].path,
                 r->clip_score, r->is_spoof ? "spoof" : "bona fide");
        if (analyze_plot(plot, title, x, n, r, top, n_top, run->az.model->threshold) != 0)
            return -1;
    }
    return 0;
}

/* Scores input i and reports it; -1 when it failed (already reported). */
static int analyze_input(analyze_run *run, int i) {
    const input_file *in = &run->inputs->items[i];
    if (in->error) {
        report_error(run, in->path, in->error);
        return -1;
    }
    float *x = NULL;
    int64_t n = 0;
    if (audio_load(in->path, &x, &n) != 0) {
        report_error(run, in->path, adfd_error());
        return -1;
    }
    analyze_result r;
    if (analyze_clip(&run->az, x, n, &r) != 0) {
        report_error(run, in->path, adfd_error());
        free(x);
        return -1;
    }
    int k = run->opt->top_k;
    int *top = mallocCheck(sizeof(int) * (k > 0 ? k : 1));
    int n_top = analyze_top_windows(&r, k, top);
    char(*exports)[ADFD_ANALYZE_PATH_MAX] =
        run->opt->export_dir ? mallocCheck(ADFD_ANALYZE_PATH_MAX * (size_t)(k > 0 ? k : 1)) : NULL;
    char plot[ADFD_ANALYZE_PATH_MAX];
    int status = write_file_outputs(run, i, x, n, &r, top, n_top, exports, plot, sizeof plot);
    analyze_report report = {.file = in->path,
                             .result = &r,
                             .top = top,
                             .n_top = n_top,
                             .exports = exports,
                             .plot = run->opt->plot_path ? plot : NULL};
    if (status != 0) {
        report_error(run, in->path, adfd_error());
    } else {
        if (run->opt->json)
            analyze_print_json_file(stdout, &report, run->files_reported == 0);
        else
            analyze_print_text_file(stdout, &run->az, &report);
        run->files_reported++;
    }
    fflush(stdout);
    free(exports);
    free(top);
    analyze_result_free(&r);
    free(x);
    return status;
}

static int parse_options(int argc, char **argv, analyze_options *o, int *help) {
    static const struct option long_options[] = {{"model", required_argument, NULL, 'm'},
                                                 {"top", required_argument, NULL, 'k'},
                                                 {"hop", required_argument, NULL, 'H'},
                                                 {"json", no_argument, NULL, 'j'},
                                                 {"export", required_argument, NULL, 'e'},
                                                 {"plot", required_argument, NULL, 'p'},
                                                 {"aggregate", required_argument, NULL, 'a'},
                                                 {"help", no_argument, NULL, 'h'},
                                                 {NULL, 0, NULL, 0}};
    *o = (analyze_options){.top_k = 5, .hop_seconds = 0.5};
    *help = 0;
    opterr = 0;
    int c;
    /* ':' first: a missing value is reported as ':', an unknown option as '?'. Options and FILE
     * arguments may come in any order (GNU permutation); '-' is a FILE. */
    while ((c = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model_path = optarg;
            break;
        case 'k':
            if (cli_parse_int(optarg, &o->top_k) != 0 || o->top_k < 0)
                return cli_usage_error("analyze", "--top wants a whole number >= 0, not '%s'",
                                       optarg);
            break;
        case 'H':
            if (cli_parse_double(optarg, &o->hop_seconds) != 0 || !(o->hop_seconds > 0) ||
                !isfinite(o->hop_seconds))
                return cli_usage_error("analyze", "--hop wants a number of seconds > 0, not '%s'",
                                       optarg);
            break;
        case 'j':
            o->json = 1;
            break;
        case 'e':
            o->export_dir = optarg;
            break;
        case 'p':
            o->plot_path = optarg;
            break;
        case 'a':
            if (strcmp(optarg, "rms") && strcmp(optarg, "mean") && strcmp(optarg, "max"))
                return cli_usage_error("analyze", "--aggregate is rms, mean or max, not '%s'",
                                       optarg);
            o->aggregate = optarg;
            break;
        case 'h':
            *help = 1;
            return 0;
        case ':':
            return cli_usage_error("analyze", "option '%s' wants a value", argv[optind - 1]);
        default:
            return cli_usage_error("analyze", "unknown option '%s'", argv[optind - 1]);
        }
    }
    return 0;
}

static int collect_inputs(int argc, char **argv, input_list *inputs) {
    int stdin_seen = 0;
    for (int i = optind; i < argc; i++) {
        if (!strcmp(argv[i], "-")) {
            if (stdin_seen++)
                return cli_usage_error("analyze", "'-' (standard input) can be given only once");
            input_push(inputs, "-", NULL);
        } else if (path_is_dir(argv[i])) {
            expand_folder(inputs, argv[i]);
        } else {
            input_push(inputs, argv[i], NULL);
        }
    }
    return 0;
}

/* Loads the model and prepares the analyzer; -1 + message. */
static int prepare_run(analyze_run *run, cnn_model *model, char *model_path, size_t path_size) {
    const analyze_options *o = run->opt;
    if (o->model_path)
        snprintf(model_path, path_size, "%s", o->model_path);
    else if (find_default_model(model_path, path_size) != 0)
        return -1;
    run->model_path = model_path;
    if (model_load(model, model_path) != 0) return -1;
    int hop_frames = analyze_hop_frames(&model->features, o->hop_seconds);
    if (analyzer_init(&run->az, model, hop_frames, o->aggregate) != 0) return -1;
    double hop_seconds = analyzer_hop_seconds(&run->az);
    if (fabs(hop_seconds - o->hop_seconds) > 1e-9)
        fprintf(stderr, "adfd analyze: note: --hop %g s rounded to %d frames (%g s)\n",
                o->hop_seconds, hop_frames, hop_seconds);
    if (o->export_dir && make_dirs(o->export_dir) != 0) return -1;
    return 0;
}

int cmd_analyze(int argc, char **argv) {
    analyze_options opt;
    int help;
    int status = parse_options(argc, argv, &opt, &help);
    if (status != 0) return status;
    if (help) {
        print_usage(stdout);
        return ADFD_EXIT_OK;
    }
    if (optind >= argc) return cli_usage_error("analyze", "no FILE to analyze");
    if (adfd_world_size() > 1)
        return cli_usage_error("analyze", "runs as one process, not under mpiexec with %d ranks",
                               adfd_world_size());
    input_list inputs = {0};
    if ((status = collect_inputs(argc, argv, &inputs)) != 0) {
        input_list_free(&inputs);
        return status;
    }
    assign_output_names(&inputs);
    analyze_run run = {.opt = &opt, .inputs = &inputs};
    cnn_model model = {0};
    char model_path[PATH_MAX + 64];
    if (prepare_run(&run, &model, model_path, sizeof model_path) != 0) {
        status = cli_runtime_error("analyze");
    } else {
        if (opt.json)
            analyze_print_json_header(stdout, &run.az, run.model_path, opt.top_k);
        else
            analyze_print_text_header(stdout, &run.az, run.model_path);
        int failed = 0;
        for (int i = 0; i < inputs.n; i++)
            failed += analyze_input(&run, i) != 0;
        if (opt.json) analyze_print_json_footer(stdout, failed);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "adfd analyze: cannot write the results to standard output\n");
            failed++;
        }
        if (failed) fprintf(stderr, "adfd analyze: %d of %d files failed\n", failed, inputs.n);
        status = failed ? ADFD_EXIT_FAILURE : ADFD_EXIT_OK;
    }
    analyzer_free(&run.az);
    model_free(&model);
    input_list_free(&inputs);
    return status;
}
