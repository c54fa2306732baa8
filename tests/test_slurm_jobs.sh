#!/usr/bin/env bash
# The jobs/ batch scripts on a real Slurm on this machine (slurmctld + munge + two slurmd
# emulating two nodes, scripts/slurm-local.sh), on a tiny synthetic data set.
#  1. The world-size check under Slurm: mpirun and srun --mpi=pmix over the allocation pass;
#     a smaller world and a singleton are refused with a message naming both sizes.
#  2. prepare.sbatch (split + prepare): the feature file's shape, clips and splits (h5py).
#  3. grid.sbatch preempted with USR1 (to the batch shell under mpirun, on 2 emulated nodes; to
#     every process under srun --mpi=pmix): the job must checkpoint, requeue itself, resume, and end with the same
#     best.h5 (every tensor and attribute, read with h5py) and grid.tsv (timings aside) as an
#     uninterrupted run. scancel: no requeue; RESUME=1 continues to the same result.
#  4. submit-grid-array.sh: 2 array tasks (one preempted) + the afterok merge = the grid job.
#  5. retrain.sbatch retrains the best configuration on train + test on 2 ranks (its step count,
#     the copied threshold, = a 1-rank run) and evaluates the held-out split.
#  6. run-local.sh grid (no Slurm) = the grid job.
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
# Every wait ends by this time, so that the daemons are stopped before ctest's timeout (400 s)
# would kill the test without running its exit trap.
deadline=$((SECONDS + 330))

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
# Two emulated nodes (two slurmd on this host), so that jobs can span nodes.
export ADFD_SLURM_NODES=2
# Three free ports (slurmctld, 2 x slurmd) so that a Slurm someone else runs here is not disturbed.
for port in $(seq $((20000 + $$ % 20000 / 4 * 4)) 4 45000); do
    ss -Htln "( sport = :$port or sport = :$((port + 1)) or sport = :$((port + 2)) )" 2>/dev/null |
        grep -q . || break
done
export ADFD_SLURM_PORT=$port
cleanup() {
    if [ "$failures" -gt 0 ]; then
        echo "--- the last lines of the Slurm logs:"
        tail -n 15 "$ADFD_SLURM_DIR"/log/slurm*.log
    fi
    "$src/scripts/slurm-local.sh" stop >/dev/null || echo "test_slurm_jobs: stopping Slurm failed"
    rm -rf "$ADFD_SLURM_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # through the EXIT trap
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
# waits ~2 minutes before it may start again (Slurm's requeue delay); to keep the test short it
# is let go (scontrol update StartTime=now) as soon as its previous run's slurmstepd is gone
# (launched earlier, the new run can collide with the old one's clean-up and fail).
wait_job() {
    local id=$1 limit=$2 end=$((SECONDS + $2))
    [ "$end" -gt "$deadline" ] && end=$deadline
    [ -n "$id" ] || { echo "test_slurm_jobs: no job id (sbatch failed)"; return 1; }
    while [ "$SECONDS" -lt "$end" ]; do
        local queue
        # %A: the id of each element (array tasks have their own), %T state, %r reason
        queue="$(squeue -h -j "$id" -o '%A %T %r' 2>/dev/null)"
        [ -z "$queue" ] && return 0
        if grep -q 'DependencyNeverSatisfied' <<<"$queue"; then
            echo "test_slurm_jobs: job $id can never start (a job it depends on failed)"
            scancel "$id"
            return 1
        fi
        local element state reason
        while read -r element state reason; do
            if [ "$state $reason" = "PENDING BeginTime" ] &&
                ! pgrep -f "slurmstepd: \[$element\." >/dev/null; then
                scontrol update JobId="$element" StartTime=now 2>/dev/null || true
            fi
        done <<<"$queue"
        sleep 1
    done
    echo "test_slurm_jobs: job $id still queued (limit $limit s, or the test's deadline):"
    squeue -j "$id"
    scancel "$id"
    return 1
}

# expect_completed ID WHAT LOG...: every task of the job COMPLETED, else show the logs.
expect_completed() {
    local id=$1 what=$2
    shift 2
    [ -n "$id" ] || { fail "$what: not submitted"; return; }
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
# world.sbatch runs the launches named in $LAUNCHES and writes "<name> <exit status>" lines to
# world.status; each launch's output goes to <name>.stdout / <name>.stderr.
cat >world.sbatch <<'WORLD'
#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --output=world_%j.out
launch() {
    local name=$1
    shift
    "$@" >"$name.stdout" 2>"$name.stderr"
    echo "$name $?" >>world.status
}
for name in $LAUNCHES; do
    case $name in
        mpirun | mpirun_2nodes) launch "$name" mpirun "$ADFD" split --help ;;
        srun) launch srun srun --mpi=pmix "$ADFD" split --help ;;
        mpirun_n1) launch mpirun_n1 mpirun -n 1 "$ADFD" split --help ;;
        singleton) launch singleton "$ADFD" split --help ;;
    esac
done
WORLD
# On the node named after this host: mpirun there starts its ranks itself, as on a real cluster
# (on the emulated node2 it would start them through a daemon, which is not checked).
id=$(sbatch --parsable --nodelist="$(hostname -s)" \
    --export=ALL,LAUNCHES="mpirun srun mpirun_n1 singleton" world.sbatch)
# On 2 nodes the rank on the second node is started by mpirun's daemon there and sees the
# SLURM_NTASKS of the daemons' step (1): the check must not refuse it.
id2=$(sbatch --parsable --nodes=2 --ntasks-per-node=1 --export=ALL,LAUNCHES=mpirun_2nodes world.sbatch)
wait_job "$id" 60
wait_job "$id2" 60
expect_completed "$id" "world-size job on 1 node" "world_$id.out"
expect_completed "$id2" "world-size job on 2 nodes" "world_$id2.out"
status_of() { awk -v n="$1" '$1 == n { print $2 }' world.status; }
check "mpirun over the 2-task allocation runs the command" [ "$(status_of mpirun)" = 0 ]
check "the help is printed once (rank 0), not once per rank" \
    [ "$(grep -c '^Usage: adfd split' mpirun.stdout)" = 1 ]
check "mpirun over 2 nodes x 1 task runs the command" [ "$(status_of mpirun_2nodes)" = 0 ]
check "srun --mpi=pmix over the allocation runs the command" [ "$(status_of srun)" = 0 ]
check "mpirun -n 1 in a 2-task allocation exits 1" [ "$(status_of mpirun_n1)" = 1 ]
check "its message names both sizes" \
    grep -q 'MPI world size is 1 but SLURM_NTASKS is 2' mpirun_n1.stderr
check "a singleton under a 2-task allocation exits 1" [ "$(status_of singleton)" = 1 ]
check "its message names both sizes" \
    grep -q 'MPI world size is 1 but SLURM_NTASKS is 2' singleton.stderr

# --- 2. prepare.sbatch: adfd split + adfd prepare on 2 tasks ----------------------------------
"$ADFD_PYTHON" "$src/tests/slurm_make_corpus.py" corpus || exit 1
compare() { "$ADFD_PYTHON" "$src/tests/slurm_compare_runs.py" "$@"; }
id=$(sbatch --parsable --export=ALL,DATA=corpus,HOLDOUT=Fay,SPLIT=split.csv,OUT=features.h5 \
    "$src/jobs/prepare.sbatch")
wait_job "$id" 120
expect_completed "$id" "prepare.sbatch" "adfd-prepare_$id.out"
check "split.csv holds Fay's 4 clips as holdout" \
    [ "$(grep -c ',Fay,.*,holdout$' split.csv 2>/dev/null)" = 4 ]
# 24 clips of 2 s: 1 + 32000/200 = 161 frames, padded to 240 = 3 chunks of 80 frames each.
check "features.h5: 24 clips x 3 chunks, three splits (h5py)" compare features features.h5 24 3
if [ ! -f features.h5 ]; then
    echo "test_slurm_jobs: no features, the grid jobs cannot run"
    exit 1
fi

# --- 3. grid.sbatch, uninterrupted and preempted ----------------------------------------------
# 4 configurations x 8 epochs: long enough (~10 s on 2 ranks) to be preempted in the middle.
printf '[grid]\nchannels = 2, 4\nlr = 1e-2, 1e-3\nbatch = 8\nmax_epochs = 8\npatience = 0\n' >grid.ini
export FEATURES=features.h5 CONFIG=grid.ini
grid_opts=(--no-plots --bootstrap 100)
whole=$(sbatch --parsable "$src/jobs/grid.sbatch" "${grid_opts[@]}")
wait_job "$whole" 120
expect_completed "$whole" "grid.sbatch, uninterrupted" "adfd-grid_$whole.out"
check "run folder named after the job, with best.h5 and grid.tsv" \
    [ -f "runs/adfd-grid_$whole/best.h5" -a -f "runs/adfd-grid_$whole/grid.tsv" ]

# On 2 nodes x 1 task: mpirun reaches the rank on the second node through its daemon there.
pre=$(sbatch --parsable --nodes=2 --ntasks-per-node=1 "$src/jobs/grid.sbatch" "${grid_opts[@]}")
# Preempt once the first epoch is recorded: the ranks have their handlers by then.
for _ in $(seq 1 600); do
    cat "runs/adfd-grid_$pre"/epochs/*.tsv 2>/dev/null | grep -q . && break
    sleep 0.1
done
scancel --signal=USR1 --batch "$pre"
wait_job "$pre" 180
log="adfd-grid_$pre.out"
expect_completed "$pre" "grid.sbatch on 2 nodes, preempted" "$log"
check "the job ran on 2 nodes" grep -q 'nodes 2, tasks 2, launcher mpirun' "$log"
check "the batch shell passed the signal on" grep -q 'preemption signal, passing it to the ranks' "$log"
check "the job requeued itself after the ranks checkpointed" \
    grep -q "checkpointed after the preemption signal; requeueing $pre" "$log"
check "Slurm counts one restart" grep -q 'Restarts=1' <(scontrol show job "$pre")
check "the requeued run resumed (--resume) in the same run folder" \
    grep -q -- "--out runs/adfd-grid_$pre --resume" "$log"
check "preempted + requeued run = uninterrupted run (grid.tsv, best.h5 via h5py)" \
    compare same "runs/adfd-grid_$whole" "runs/adfd-grid_$pre"

# The other launcher and the other way to signal: srun --mpi=pmix, and USR1 to every process
# of the job (batch shell, srun and the ranks themselves) rather than to the batch shell only.
pre=$(sbatch --parsable --export=ALL,ADFD_LAUNCHER=srun "$src/jobs/grid.sbatch" "${grid_opts[@]}")
for _ in $(seq 1 600); do
    cat "runs/adfd-grid_$pre"/epochs/*.tsv 2>/dev/null | grep -q . && break
    sleep 0.1
done
scancel --signal=USR1 --full "$pre"
wait_job "$pre" 180
log="adfd-grid_$pre.out"
expect_completed "$pre" "grid.sbatch under srun --mpi=pmix, preempted with scancel --full" "$log"
check "srun: the job requeued itself and resumed" \
    grep -q -- "srun --mpi=pmix .* --out runs/adfd-grid_$pre --resume" "$log"
check "srun, preempted + requeued run = uninterrupted run (grid.tsv, best.h5 via h5py)" \
    compare same "runs/adfd-grid_$whole" "runs/adfd-grid_$pre"

# scancel (SIGTERM to every process) is not preemption: the job stays cancelled; a new job with
# RESUME=1 and the run's name continues from the newest per-epoch checkpoint.
cancelled=$(sbatch --parsable "$src/jobs/grid.sbatch" "${grid_opts[@]}")
for _ in $(seq 1 600); do
    cat "runs/adfd-grid_$cancelled"/epochs/*.tsv 2>/dev/null | grep -q . && break
    sleep 0.1
done
scancel "$cancelled"
wait_job "$cancelled" 60
check "scancel: the job ends CANCELLED and is not requeued" \
    [ "$(job_state "$cancelled")" = CANCELLED -a -z "$(grep -l 'requeueing' "adfd-grid_$cancelled.out")" ]
id=$(sbatch --parsable --export=ALL,RESUME=1,RUN_NAME="adfd-grid_$cancelled" "$src/jobs/grid.sbatch" \
    "${grid_opts[@]}")
wait_job "$id" 120
expect_completed "$id" "grid.sbatch with RESUME=1 after scancel" "adfd-grid_$id.out"
check "cancelled + resumed run = uninterrupted run (grid.tsv, best.h5 via h5py)" \
    compare same "runs/adfd-grid_$whole" "runs/adfd-grid_$cancelled"

# --- 4. grid-array.sbatch (2 tasks, one preempted) + the afterok merge --------------------------
read -r array merge < <(TASKS=2 "$src/jobs/submit-grid-array.sh" -- "${grid_opts[@]}")
# Array task 0 is preempted after its first epoch: the merge must wait for its requeued run.
for _ in $(seq 1 600); do
    cat "runs/adfd-grid-array_$array"/epochs/task000-*.tsv 2>/dev/null | grep -q . && break
    sleep 0.1
done
scancel --signal=USR1 --batch "${array}_0"
wait_job "$array" 180
wait_job "$merge" 120
expect_completed "$array" "grid-array.sbatch, 2 tasks" "adfd-grid-array_${array}_0.out" \
    "adfd-grid-array_${array}_1.out"
check "one log per array task" \
    [ -f "adfd-grid-array_${array}_0.out" -a -f "adfd-grid-array_${array}_1.out" ]
check "array task 0 requeued itself and resumed its slice" \
    grep -q -- "--out runs/adfd-grid-array_$array --task-id 0 --num-tasks 2 --resume" \
    "adfd-grid-array_${array}_0.out"
expect_completed "$merge" "grid-merge.sbatch after the array" "adfd-grid-merge_$merge.out"
check "array + merge = one grid job (grid.tsv, best.h5 via h5py)" \
    compare same "runs/adfd-grid_$whole" "runs/adfd-grid-array_$array"
check "the merge evaluated the held-out split" \
    [ -f "runs/adfd-grid-array_$array/holdout/metrics.json" ]

# --- 5. retrain.sbatch: the best configuration on train + test, then the held-out split -------
id=$(sbatch --parsable --export=ALL,FROM_RUN="runs/adfd-grid_$whole" "$src/jobs/retrain.sbatch" \
    "${grid_opts[@]}")
wait_job "$id" 120
expect_completed "$id" "retrain.sbatch" "adfd-retrain_$id.out"
check "retrain trained on train+test and kept the last epoch" \
    grep -q 'training on train+test (.* samples), keeping the last epoch' "adfd-retrain_$id.out"
check "retrained.h5: train+test steps, best.h5's threshold, = 1 rank; held-out evaluation" \
    compare retrain "runs/adfd-grid_$whole" features.h5 retrained

# --- 6. jobs/run-local.sh: the same grid job without Slurm ------------------------------------
ADFD_NP=2 RUN_NAME=local-grid "$src/jobs/run-local.sh" grid "${grid_opts[@]}" >run-local.out 2>&1
check "run-local.sh grid exits 0" [ $? -eq 0 ]
check "run-local.sh grid = the Slurm grid job" compare same "runs/adfd-grid_$whole" runs/local-grid

echo "test_slurm_jobs: $((SECONDS - start_seconds)) s"
if [ "$failures" -eq 0 ]; then echo "test_slurm_jobs: passed"; else echo "test_slurm_jobs: $failures FAILED"; fi
[ "$failures" -eq 0 ]
