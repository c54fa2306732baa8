#include "adfd/preempt.h"

#include <signal.h>
#include <stdlib.h>

#include "adfd/cli.h"
#include "adfd/util.h"

static volatile sig_atomic_t preempt_flag = 0;

static void on_preempt_signal(int sig) {
    (void)sig;
    preempt_flag = 1;
}

void preempt_install_handlers(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_preempt_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int preempt_signalled(void) {
    return preempt_flag != 0;
}

int preempt_agreed(MPI_Comm comm) {
    int local = preempt_flag != 0, any = 0;
    ADFD_MPI_CHECK(MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, comm));
    return any;
}

/* The world size this process expects from Slurm: SLURM_NTASKS (the job's in a batch script and
 * for the ranks mpirun starts there, the step's under srun), or NULL when there is nothing to
 * check: not under Slurm, or started by an Open MPI daemon that runs in a Slurm step (mpirun's
 * ranks on other nodes), whose SLURM_NTASKS counts the daemons, not the ranks. */
static const char *expected_world_size(void) {
    const char *ntasks = getenv("SLURM_NTASKS");
    if (!ntasks || !ntasks[0]) return NULL;
    if (getenv("OMPI_COMM_WORLD_SIZE") && getenv("SLURM_STEP_ID")) return NULL;
    return ntasks;
}

static int check_local_world_size(void) {
    const char *ntasks = expected_world_size();
    if (!ntasks) return 0;
    int expected;
    if (cli_parse_int(ntasks, &expected) != 0 || expected < 1)
        return adfd_fail("SLURM_NTASKS is '%s', not a positive number", ntasks);
    int size = adfd_world_size();
    if (size != expected)
        return adfd_fail("MPI world size is %d but SLURM_NTASKS is %d: the ranks did not join one "
                         "MPI world (launch with srun --mpi=pmix or mpirun inside the allocation)",
                         size, expected);
    return 0;
}

int slurm_check_world_size(void) {
    int local_failed = check_local_world_size() != 0, any_failed = 0;
    ADFD_MPI_CHECK(MPI_Allreduce(&local_failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (!any_failed) return 0;
    /* Every rank returns -1 so that all exit together; the CLI prints rank 0's message only, so
     * another failing rank prints its own. */
    if (local_failed && adfd_rank() != 0) log_all("%s", adfd_error());
    if (!local_failed) return adfd_fail("another rank's SLURM_NTASKS differs from the world size");
    return -1;
}
