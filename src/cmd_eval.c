/* Placeholder until the 'eval' command lands: an honest error, not a fake result. */
#include "adfd/cli.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    adfd_fail("the 'eval' command is not implemented yet");
    return cli_runtime_error("eval");
}
