/* preempt: Slurm preemption (SIGUSR1 from `#SBATCH --signal=USR1@120`, SIGTERM). The handler only
 * sets a flag; training polls preempt_agreed() once per step, a collective that tells every rank
 * of the communicator the same answer, so all ranks checkpoint at the same step. */
#ifndef ADFD_PREEMPT_H
#define ADFD_PREEMPT_H

#include <mpi.h>

/* Exit status of a command that stopped on a preemption signal after every rank checkpointed:
 * the jobs/ batch scripts requeue the job on it and the requeued run passes --resume. */
enum { ADFD_EXIT_PREEMPTED = 3 };

void preempt_install_handlers(void);
/* Collective over comm: 1 if any rank of comm received a preemption signal. */
int preempt_agreed(MPI_Comm comm);
/* This process received a signal (no communication). */
int preempt_signalled(void);
/* Under Slurm (SLURM_NTASKS set), refuses a world size that differs from SLURM_NTASKS: the
 * classic silent failure of N singletons instead of one world of N. Ranks that mpirun starts
 * through its daemons on other nodes see the daemons' step, not the job, and are not checked.
 * Collective over MPI_COMM_WORLD: every rank returns the same status, 0 or -1 + message. */
int slurm_check_world_size(void);

#endif
