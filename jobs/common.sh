# Sourced by jobs/*.sbatch (under Slurm) and jobs/run-local.sh (without Slurm): the adfd binary,
# the MPI launcher, forwarding of the preemption signal to every rank, and the requeue.
#
# Environment (all optional):
#   ADFD           the adfd binary (default: adfd on the PATH)
#   ADFD_LAUNCHER  mpirun (default) or srun (srun --mpi=pmix): how ranks are started under Slurm
#   ADFD_NP        ranks when not under Slurm (default 2); under Slurm the allocation decides
#   RUNS           folder of the run folders (default: runs, relative to the submit directory)

ADFD="${ADFD:-adfd}"
ADFD_LAUNCHER="${ADFD_LAUNCHER:-mpirun}"
RUNS="${RUNS:-runs}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" # one BLAS thread per rank
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

# Must match ADFD_EXIT_PREEMPTED in include/adfd/preempt.h.
ADFD_EXIT_PREEMPTED=3

job_die() {
    echo "$(job_tag): $*" >&2
    exit 1
}

job_tag() { echo "${SLURM_JOB_NAME:-local}[${SLURM_JOB_ID:-$$}]"; }

under_slurm() { [ -n "${SLURM_JOB_ID:-}" ]; }

# A requeued job (SLURM_RESTART_COUNT > 0) continues from its checkpoints.
job_is_restart() { [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; }

require_vars() {
    local name
    for name in "$@"; do
        [ -n "${!name:-}" ] || job_die "set $name (sbatch --export=ALL,$name=...; see the top of the script)"
    done
}

job_banner() {
    echo "$(job_tag): $(date -u +%FT%TZ) on $(hostname -s), restart ${SLURM_RESTART_COUNT:-0}," \
        "nodes ${SLURM_JOB_NUM_NODES:-1}, tasks ${SLURM_NTASKS:-${ADFD_NP:-2}}, launcher $ADFD_LAUNCHER"
}

# Runs "$ADFD" "$@" on every rank of the allocation and returns its exit status.
# Slurm signals the batch shell only (#SBATCH --signal=B:USR1@...; scancel --batch): bash runs
# no trap while a foreground command runs, so the launcher runs in the background and the trap
# passes the signal on; mpirun and srun both forward SIGUSR1 to every rank on every node.
# SIGTERM (scancel, or a cluster preempting with PreemptMode=REQUEUE) is passed on as SIGUSR1 so
# the ranks checkpoint, and remembered: such a job ends for good (or Slurm requeues it itself),
# it must not requeue itself.
job_got_sigterm=0
run_mpi() {
    local launcher=()
    if under_slurm; then
        case "$ADFD_LAUNCHER" in
            mpirun) launcher=(mpirun) ;; # one rank per Slurm task, from the allocation
            srun) launcher=(srun --mpi=pmix) ;;
            *) job_die "ADFD_LAUNCHER must be mpirun or srun, not '$ADFD_LAUNCHER'" ;;
        esac
    else
        launcher=(mpirun -n "${ADFD_NP:-2}" --oversubscribe)
    fi
    echo "$(job_tag): ${launcher[*]} $ADFD $*"
    "${launcher[@]}" "$ADFD" "$@" &
    local pid=$! status
    trap 'echo "$(job_tag): preemption signal, passing it to the ranks"; kill -USR1 '"$pid"' 2>/dev/null' USR1
    trap 'job_got_sigterm=1; echo "$(job_tag): SIGTERM, passing SIGUSR1 to the ranks"; kill -USR1 '"$pid"' 2>/dev/null' TERM
    while :; do
        wait "$pid"
        status=$?
        # wait returns >128 when a trapped signal interrupted it: the launcher still runs.
        if [ "$status" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
        break
    done
    trap - USR1 TERM
    return "$status"
}

# Runs "$ADFD" "$@" as one process (split, eval). It declares itself one task: adfd refuses a
# world size that differs from SLURM_NTASKS, and the allocation may hold more tasks.
run_serial() {
    echo "$(job_tag): $ADFD $*"
    SLURM_NTASKS=1 "$ADFD" "$@"
}

# After run_mpi: success, requeue on preemption, or fail with the command's status.
finish_or_requeue() {
    local status=$1
    if [ "$status" -eq 0 ]; then
        echo "$(job_tag): done $(date -u +%FT%TZ)"
        return 0
    fi
    if [ "$status" -eq "$ADFD_EXIT_PREEMPTED" ]; then
        if [ "$job_got_sigterm" = 1 ]; then
            echo "$(job_tag): checkpointed after SIGTERM; not requeueing (resume with RESUME=1)" >&2
            exit "$ADFD_EXIT_PREEMPTED"
        fi
        if under_slurm; then
            echo "$(job_tag): checkpointed after the preemption signal; requeueing $SLURM_JOB_ID"
            # The requeue ends this script; the job returns with SLURM_RESTART_COUNT+1 and --resume.
            scontrol requeue "$SLURM_JOB_ID" || job_die "scontrol requeue $SLURM_JOB_ID failed"
            sleep 60
            exit "$ADFD_EXIT_PREEMPTED"
        fi
        echo "$(job_tag): preempted and checkpointed; run again with RESUME=1 to continue" >&2
        exit "$ADFD_EXIT_PREEMPTED"
    fi
    job_die "adfd failed with exit status $status"
}
