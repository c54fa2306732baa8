/* util: atomic files, paths, checksums and the counter-based RNG. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adfd/util.h"
#include "check.h"

static void test_atomic_file(void) {
    const char *path = "test_util_atomic.txt";
    unlink(path);
    atomic_file af;
    CHECK(atomic_file_open(&af, path) == 0, "%s", adfd_error());
    fputs("hello\n", af.fp);
    CHECK(!path_exists(path), "output must not appear before commit");
    CHECK(atomic_file_commit(&af) == 0, "%s", adfd_error());
    CHECK(path_exists(path), "output must exist after commit");
    CHECK(atomic_file_open(&af, path) == 0, "%s", adfd_error());
    fputs("partial", af.fp);
    atomic_file_discard(&af);
    FILE *fp = fopen(path, "r");
    char line[64] = {0};
    CHECK(fp && fgets(line, sizeof line, fp) && !strcmp(line, "hello\n"),
          "a discarded write must leave the old file intact, got '%s'", line);
    if (fp) fclose(fp);
    CHECK(!path_exists(af.tmp_path), "temporary file must be removed");
    unlink(path);
}

static void test_fnv(void) {
    /* FNV-1a 64 of "a" is af63dc4c8601ec8c (published test vector). */
    FILE *fp = fopen("test_util_fnv.txt", "wb");
    fputs("a", fp);
    fclose(fp);
    char hex[17];
    CHECK(file_fnv1a64_hex("test_util_fnv.txt", hex) == 0, "%s", adfd_error());
    CHECK(!strcmp(hex, "af63dc4c8601ec8c"), "got %s", hex);
    CHECK(file_fnv1a64_hex("no/such/file", hex) == -1, "missing file must fail");
    CHECK(strstr(adfd_error(), "no/such/file") != NULL, "message names the path: %s", adfd_error());
    unlink("test_util_fnv.txt");
}

static void test_rng(void) {
    int idx[1000], seen[1000] = {0};
    for (int i = 0; i < 1000; i++)
        idx[i] = i;
    rng_shuffle_int(idx, 1000, 42, 7);
    int fixed = 0;
    for (int i = 0; i < 1000; i++) {
        seen[idx[i]]++;
        fixed += idx[i] == i;
    }
    int perm = 1;
    for (int i = 0; i < 1000; i++)
        perm &= seen[i] == 1;
    CHECK(perm, "shuffle must be a permutation");
    CHECK(fixed < 10, "shuffle leaves %d of 1000 in place", fixed);
    double mean = 0;
    for (int i = 0; i < 100000; i++)
        mean += rng_uniform(1, 2, (uint64_t)i);
    mean /= 100000;
    CHECK_CLOSE(mean, 0.5, 0, 0.005);
    CHECK(rng_hash64(1, 2, 3) == rng_hash64(1, 2, 3), "deterministic");
    CHECK(rng_hash64(1, 2, 3) != rng_hash64(2, 2, 3), "seed matters");
}

static void test_paths(void) {
    char out[256];
    path_join(out, sizeof out, "dir", "a.wav");
    CHECK(!strcmp(out, "dir/a.wav"), "%s", out);
    path_join(out, sizeof out, "dir/", "a.wav");
    CHECK(!strcmp(out, "dir/a.wav"), "%s", out);
    path_join(out, sizeof out, "dir", "/abs.wav");
    CHECK(!strcmp(out, "/abs.wav"), "%s", out);
    CHECK(make_dirs("test_util_dir/a/b") == 0, "%s", adfd_error());
    CHECK(path_is_dir("test_util_dir/a/b"), "made");
}

int main(void) {
    test_atomic_file();
    test_fnv();
    test_rng();
    test_paths();
    return check_exit_status("test_util");
}
