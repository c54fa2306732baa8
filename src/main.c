/* adfd: one program, one sub-command per stage of the pipeline (DESIGN.md section 1). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/cli.h"
#include "adfd/preempt.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"split", cmd_split, "speaker-disjoint train/test/holdout split of a data set"},
    {"prepare", cmd_prepare, "compute features into one HDF5 file (MPI-parallel)"},
    {"train", cmd_train, "train one CNN configuration (data-parallel under MPI)"},
    {"grid", cmd_grid, "MPI grid search with early stopping, then held-out evaluation"},
    {"eval", cmd_eval, "score a split with a model: metrics, scores, plots"},
    {"analyze", cmd_analyze, "score audio files and show which seconds look fake"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void print_usage(FILE *out) {
    fprintf(out, "adfd %s: audio deepfake detector trainer\n\n", ADFD_VERSION);
    fprintf(out, "Usage: adfd COMMAND [OPTIONS]   (run MPI commands under mpiexec -n P)\n\n");
    fprintf(out, "Commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'adfd COMMAND --help' describes a command's options.\n");
    fprintf(out, "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return ADFD_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return ADFD_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("adfd %s\n", ADFD_VERSION);
        return ADFD_EXIT_OK;
    }
    const command *cmd = NULL;
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "adfd: unknown command '%s'\n\n", argv[1]);
        print_usage(stderr);
        return ADFD_EXIT_USAGE;
    }
    /* funneled: prepare decodes on a second thread, but only the main thread calls MPI. While
     * the main thread waits in a collective, a spinning wait would take the rank's core from
     * that thread: ask Open MPI to yield instead (a user's own setting wins). */
    if (!strcmp(cmd->name, "prepare")) setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int thread_level;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &thread_level);
    int status =
        slurm_check_world_size() == 0 ? cmd->run(argc - 1, argv + 1) : cli_runtime_error(cmd->name);
    MPI_Finalize();
    return status;
}
