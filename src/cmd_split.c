/* Placeholder until the 'split' command lands: an honest error, not a fake result. */
#include "adfd/cli.h"

int cmd_split(int argc, char **argv) {
    (void)argc;
    (void)argv;
    adfd_fail("the 'split' command is not implemented yet");
    return cli_runtime_error("split");
}
