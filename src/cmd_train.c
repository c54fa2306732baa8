/* Placeholder until the 'train' command lands: an honest error, not a fake result. */
#include "adfd/cli.h"

int cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    adfd_fail("the 'train' command is not implemented yet");
    return cli_runtime_error("train");
}
