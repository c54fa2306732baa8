/* preempt: the SLURM_NTASKS world-size check and the collective preemption flag.
 * Run under mpiexec with 2 or more ranks; the expected answers are worked out by hand below. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/preempt.h"
#include "adfd/util.h"
#include "check.h"

static void set_ntasks(const char *value) {
    if (value)
        setenv("SLURM_NTASKS", value, 1);
    else
        unsetenv("SLURM_NTASKS");
}

static void test_world_size(int rank, int size) {
    char text[32];

    set_ntasks(NULL); /* not under Slurm: nothing to check */
    CHECK(slurm_check_world_size() == 0, "no SLURM_NTASKS: %s", adfd_error());

    snprintf(text, sizeof text, "%d", size);
    set_ntasks(text);
    CHECK(slurm_check_world_size() == 0, "SLURM_NTASKS=%s = world size: %s", text, adfd_error());

    /* N singletons instead of one world: each sees a world of 1 and SLURM_NTASKS=N. */
    snprintf(text, sizeof text, "%d", size + 1);
    set_ntasks(text);
    CHECK(slurm_check_world_size() == -1, "SLURM_NTASKS=%s, world %d must be refused", text, size);
    char want[96];
    snprintf(want, sizeof want, "MPI world size is %d but SLURM_NTASKS is %d", size, size + 1);
    CHECK(strstr(adfd_error(), want) != NULL, "message '%s' lacks '%s'", adfd_error(), want);

    set_ntasks("two");
    CHECK(slurm_check_world_size() == -1, "SLURM_NTASKS=two must be refused");
    CHECK(strstr(adfd_error(), "SLURM_NTASKS is 'two'") != NULL, "message '%s'", adfd_error());

    /* Ranks that disagree: only the last rank sees a wrong value, yet every rank must refuse
     * (a rank that went on alone would wait forever in the command's first collective). */
    snprintf(text, sizeof text, "%d", rank == size - 1 ? size + 5 : size);
    set_ntasks(text);
    CHECK(slurm_check_world_size() == -1, "rank %d: a disagreeing rank must make all refuse", rank);
    if (rank != size - 1)
        CHECK(strstr(adfd_error(), "another rank") != NULL, "rank %d message '%s'", rank,
              adfd_error());

    /* A rank that Open MPI's daemon started inside a Slurm step (mpirun's ranks on other nodes)
     * sees the SLURM_NTASKS of the daemons' step: it is not checked. */
    if (rank == size - 1) {
        setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
        setenv("SLURM_STEP_ID", "0", 1);
    }
    CHECK(slurm_check_world_size() == 0, "rank %d: daemon-started rank not checked: %s", rank,
          adfd_error());
    /* ... but a rank that mpirun started itself (no Slurm step) is. */
    if (rank == size - 1) unsetenv("SLURM_STEP_ID");
    CHECK(slurm_check_world_size() == -1, "rank %d: mpirun-started rank is checked", rank);
    if (rank == size - 1) unsetenv("OMPI_COMM_WORLD_SIZE");
    set_ntasks(NULL);
}

static void test_preempt_flag(int rank, int size) {
    preempt_install_handlers();
    CHECK(!preempt_signalled(), "no signal yet");
    CHECK(preempt_agreed(MPI_COMM_WORLD) == 0, "no rank was signalled");
    /* Only the last rank is signalled (as when Slurm signals one node); all must agree on 1. */
    if (rank == size - 1) raise(SIGUSR1);
    CHECK(preempt_signalled() == (rank == size - 1), "rank %d local flag", rank);
    CHECK(preempt_agreed(MPI_COMM_WORLD) == 1, "rank %d must see the other rank's signal", rank);
    /* SIGTERM counts too (Slurm's preemption/cancel signal). */
    if (rank == 0) raise(SIGTERM);
    CHECK(preempt_signalled() == (rank == 0 || rank == size - 1), "rank %d after SIGTERM", rank);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size >= 2, "run with 2 or more ranks, got %d", size);
    if (size >= 2) {
        test_world_size(rank, size);
        test_preempt_flag(rank, size);
    }
    int failed = check_exit_status("test_preempt") != 0, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any_failed;
}
