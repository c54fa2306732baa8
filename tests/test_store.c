/* store writer + reader round trip under MPI (run at 1 and 3 ranks): each rank appends a
 * contiguous share of the clips in several rounds (in one round rank 0 has every row and the
 * others none, which must still work), then
 * rank 0 reads rows back in random order with repeats and checks every value against the formula
 * that generated it, the clip table, the attributes and the normalisation. */
#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adfd/store.h"
#include "adfd/util.h"
#include "check.h"

enum { N_CLIPS = 23, ROUNDS = 3, ROW_VALUES = ADFD_N_MELS * ADFD_CHUNK_FRAMES };

static int clip_rows(int c) {
    return c % 5 == 3 ? 0 : 1 + (c * 7) % 4; /* a few clips contribute no rows */
}

static float value(int64_t row, int band, int frame) {
    return (float)row * 0.5f + (float)band * 0.001f - (float)frame * 1e-5f;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *path = "test_store.h5";
    feature_params p;
    feature_params_preset(&p, "default");
    store_writer *w =
        store_writer_create(MPI_COMM_WORLD, path, &p, "/data/meta.csv", "0123456789abcdef");
    /* clip c belongs to round c % ROUNDS' position in clip order; clips of a round are dealt to
     * ranks by (c / ROUNDS) % size, so ranks own interleaved, non-contiguous row runs */
    int64_t row_base = 0;
    int per_round = (N_CLIPS + ROUNDS - 1) / ROUNDS;
    int64_t first_row[N_CLIPS];
    for (int r = 0; r < ROUNDS; r++) {
        int c0 = r * per_round, c1 = c0 + per_round < N_CLIPS ? c0 + per_round : N_CLIPS;
        /* this rank's clips: a contiguous share of the round (empty for some ranks) */
        int mine0 = c0 + (c1 - c0) * rank / size, mine1 = c0 + (c1 - c0) * (rank + 1) / size;
        if (r == 1 && size > 1) mine0 = mine1 = rank == 0 ? c1 : c0; /* rank 0 alone, others 0 */
        if (r == 1 && size > 1 && rank == 0) mine0 = c0;
        float *feat = mallocCheck((size_t)64 * ROW_VALUES * sizeof(float));
        int32_t clip[64], offset[64];
        int64_t round_rows = 0, local = 0;
        for (int c = c0; c < c1; c++) {
            first_row[c] = row_base + round_rows;
            if (c >= mine0 && c < mine1)
                for (int k = 0; k < clip_rows(c); k++, local++) {
                    for (int b = 0; b < ADFD_N_MELS; b++)
                        for (int t = 0; t < ADFD_CHUNK_FRAMES; t++)
                            feat[(size_t)local * ROW_VALUES + b * ADFD_CHUNK_FRAMES + t] =
                                value(row_base + round_rows + k, b, t);
                    clip[local] = c;
                    offset[local] = 40 * k;
                }
            round_rows += clip_rows(c);
        }
        store_writer_append(w, local, feat, clip, offset);
        row_base += round_rows;
        free(feat);
    }
    char names[N_CLIPS][32];
    const char *files[N_CLIPS];
    int32_t speaker[N_CLIPS], label[N_CLIPS], split[N_CLIPS];
    float seconds[N_CLIPS], mean[ADFD_N_MELS], stdev[ADFD_N_MELS];
    for (int c = 0; c < N_CLIPS; c++) {
        snprintf(names[c], sizeof names[c], "dir/clip_%02d.wav", c);
        files[c] = names[c];
        speaker[c] = c % 2;
        label[c] = c % 3 == 0;
        split[c] = c % 3;
        seconds[c] = 1.5f * c;
    }
    for (int b = 0; b < ADFD_N_MELS; b++) {
        mean[b] = -50.0f + b;
        stdev[b] = 2.0f + 0.01f * b;
    }
    const char *speakers[2] = {"Alice", "Bob"}, *skipped[1] = {"bad.wav"};
    store_tables t = {N_CLIPS,  files, speaker, label, split,   seconds, 2,
                      speakers, mean,  stdev,   1,     skipped, NULL,    NULL};
    store_writer_finish(w, &t);
    MPI_Barrier(MPI_COMM_WORLD);

    if (rank == 0) {
        feature_store s;
        CHECK(store_open(&s, path) == 0, "store_open: %s", adfd_error());
        CHECK(s.n_rows == row_base, "%lld rows, wrote %lld", (long long)s.n_rows,
              (long long)row_base);
        CHECK(s.n_clips == N_CLIPS && s.n_speakers == 2, "table sizes");
        CHECK(!strcmp(s.params.preset, "default") && s.params.n_fft == 512 &&
                  s.params.chunk_hop == 40 && s.params.trim_db == 40.0f && s.params.log_db == 1,
              "params round trip");
        CHECK(!strcmp(s.source_meta, "/data/meta.csv") &&
                  !strcmp(s.source_checksum, "0123456789abcdef"),
              "source attributes");
        CHECK(!strcmp(s.clip_file[7], "dir/clip_07.wav") && !strcmp(s.speaker_name[1], "Bob"),
              "strings");
        CHECK(s.clip_label[9] == 1 && s.clip_split[8] == 2 && s.clip_seconds[4] == 6.0f &&
                  s.clip_speaker[5] == 1,
              "clip table");
        CHECK(s.band_mean[3] == -47.0f && s.band_std[100] == 3.0f, "normalisation");
        for (int c = 0; c < N_CLIPS; c++)
            for (int k = 0; k < clip_rows(c); k++) {
                CHECK(s.row_clip[first_row[c] + k] == c, "row %lld clip",
                      (long long)(first_row[c] + k));
                CHECK(s.row_offset[first_row[c] + k] == 40 * k, "row offset");
            }
        int64_t rows[40];
        for (int i = 0; i < 40; i++)
            rows[i] = (int64_t)((i * 37 + 11) % s.n_rows);
        rows[5] = rows[6]; /* repeat */
        rows[7] = s.n_rows - 1;
        float *out = mallocCheck(sizeof(float) * 40 * ROW_VALUES);
        CHECK(store_read_rows(&s, rows, 40, out) == 0, "read: %s", adfd_error());
        int bad = 0;
        for (int i = 0; i < 40; i++)
            for (int b = 0; b < ADFD_N_MELS; b++)
                for (int f = 0; f < ADFD_CHUNK_FRAMES; f++)
                    bad += out[(size_t)i * ROW_VALUES + b * ADFD_CHUNK_FRAMES + f] !=
                           value(rows[i], b, f);
        CHECK(bad == 0, "%d values differ", bad);
        int64_t outside = s.n_rows;
        CHECK(store_read_rows(&s, &outside, 1, out) == -1, "row out of range refused");
        free(out);
        store_close(&s);
        feature_store none;
        CHECK(store_open(&none, "no_such_file.h5") == -1 && strstr(adfd_error(), "no_such_file"),
              "missing file: %s", adfd_error());
        FILE *f = fopen("not_hdf5.h5", "w");
        fputs("hello", f);
        fclose(f);
        CHECK(store_open(&none, "not_hdf5.h5") == -1 && strstr(adfd_error(), "not an HDF5"),
              "not HDF5: %s", adfd_error());
        unlink("not_hdf5.h5");
        /* an HDF5 file with the right version but no datasets, then with another version */
        hid_t h = H5Fcreate("damaged.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(h, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        int version = ADFD_STORE_VERSION;
        H5Awrite(a, H5T_NATIVE_INT, &version);
        H5Aclose(a);
        H5Fclose(h);
        CHECK(store_open(&none, "damaged.h5") == -1 && strstr(adfd_error(), "damaged"),
              "damaged: %s", adfd_error());
        h = H5Fopen("damaged.h5", H5F_ACC_RDWR, H5P_DEFAULT);
        a = H5Aopen(h, "format_version", H5P_DEFAULT);
        version = ADFD_STORE_VERSION + 1;
        H5Awrite(a, H5T_NATIVE_INT, &version);
        H5Aclose(a);
        H5Sclose(sp);
        H5Fclose(h);
        CHECK(store_open(&none, "damaged.h5") == -1 && strstr(adfd_error(), "format version 2"),
              "version: %s", adfd_error());
        unlink("damaged.h5");
    }
    int status = rank == 0 ? check_exit_status("test_store") : 0;
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return status;
}
