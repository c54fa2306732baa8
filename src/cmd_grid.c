/* Placeholder until the 'grid' command lands: an honest error, not a fake result. */
#include "adfd/cli.h"

int cmd_grid(int argc, char **argv) {
    (void)argc;
    (void)argv;
    adfd_fail("the 'grid' command is not implemented yet");
    return cli_runtime_error("grid");
}
