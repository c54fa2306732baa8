/* Placeholder until the 'prepare' command lands: an honest error, not a fake result. */
#include "adfd/cli.h"

int cmd_prepare(int argc, char **argv) {
    (void)argc;
    (void)argv;
    adfd_fail("the 'prepare' command is not implemented yet");
    return cli_runtime_error("prepare");
}
