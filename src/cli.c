#include "adfd/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    if (adfd_rank() == 0) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "adfd %s: ", cmd);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\nTry 'adfd %s --help'.\n", cmd);
        va_end(ap);
    }
    return ADFD_EXIT_USAGE;
}

int cli_runtime_error(const char *cmd) {
    if (adfd_rank() == 0) fprintf(stderr, "adfd %s: %s\n", cmd, adfd_error());
    return ADFD_EXIT_FAILURE;
}

int cli_parse_int(const char *text, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < INT_MIN || v > INT_MAX) return -1;
    *out = (int)v;
    return 0;
}

int cli_parse_double(const char *text, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end) return -1;
    *out = v;
    return 0;
}
