/* Placeholder until the 'analyze' command lands: an honest error, not a fake result. */
#include "adfd/cli.h"

int cmd_analyze(int argc, char **argv) {
    (void)argc;
    (void)argv;
    adfd_fail("the 'analyze' command is not implemented yet");
    return cli_runtime_error("analyze");
}
