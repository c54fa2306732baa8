/* Minimal test assertions for C tests: every failure is printed with file:line and counted, and
 * check_exit_status() makes the test program exit non-zero when anything failed. */
#ifndef ADFD_TEST_CHECK_H
#define ADFD_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_CLOSE(a, b, rtol, atol)                                                              \
    do {                                                                                           \
        double check_a_ = (a), check_b_ = (b);                                                     \
        CHECK(fabs(check_a_ - check_b_) <= (atol) + (rtol)*fabs(check_b_), "%s = %.9g, %s = %.9g", \
              #a, check_a_, #b, check_b_);                                                         \
    } while (0)

static inline int check_exit_status(const char *name) {
    if (check_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, check_failures, check_count);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, check_count);
    return check_count > 0 ? 0 : 1;
}

#endif
