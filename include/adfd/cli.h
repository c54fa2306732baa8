/* cli: the sub-commands of the adfd program and the helpers they share for parsing options.
 * Exit status contract (DESIGN.md section 9): 0 success, 1 runtime error, 2 usage error. */
#ifndef ADFD_CLI_H
#define ADFD_CLI_H

#include "adfd/util.h"

enum { ADFD_EXIT_OK = 0, ADFD_EXIT_FAILURE = 1, ADFD_EXIT_USAGE = 2 };

/* Each command is called after MPI_Init with argv[0] = command name; it returns the exit status.
 * A command that runs on several ranks must not return different statuses on different ranks
 * while others wait in a collective: a rank-local failure there goes through adfd_die. */
int cmd_split(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_grid(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_analyze(int argc, char **argv);

/* Prints "adfd CMD: message" and "Try 'adfd CMD --help'." to stderr (rank 0), returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) ADFD_PRINTF(2, 3);
/* Prints "adfd CMD: <adfd_error()>" to stderr (rank 0), returns 1. */
int cli_runtime_error(const char *cmd);
/* Strict number parsing of an option value: the whole string must be a number. 0 ok, -1 not. */
int cli_parse_int(const char *text, int *out);
int cli_parse_double(const char *text, double *out);

#endif
