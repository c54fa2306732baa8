#!/usr/bin/env bash
# Runs a job of jobs/ on this machine without Slurm: the same scripts, the same environment
# variables, mpirun -n ADFD_NP (default 2) instead of the allocation.
#
#   jobs/run-local.sh prepare    [adfd prepare options]    (DATA=..., HOLDOUT=..., see prepare.sbatch)
#   jobs/run-local.sh grid       [adfd grid options]       (FEATURES=..., CONFIG=...)
#   jobs/run-local.sh grid-array [adfd grid options]       (TASKS slices one after another, then the merge)
#   jobs/run-local.sh retrain    [adfd eval options]       (FEATURES=..., FROM_RUN=...)
#
# RUN_NAME defaults to <job>_<date-time>. A preempted local run (Ctrl-C is not preemption; send
# SIGUSR1 to this script) exits 3; run it again with RESUME=1 and the same RUN_NAME.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
job="${1:-}"
[ $# -gt 0 ] && shift
# Inside an allocation (salloc) the SLURM_* variables would make the scripts act as batch jobs.
for var in $(compgen -e | grep '^SLURM_'); do unset "$var"; done
export ADFD_JOBS_DIR="$here"
export RUN_NAME="${RUN_NAME:-adfd-${job}_$(date +%Y%m%d-%H%M%S)}"

case "$job" in
    prepare | grid | retrain)
        exec bash "$here/$job.sbatch" "$@"
        ;;
    grid-array)
        tasks="${TASKS:-4}"
        export SLURM_ARRAY_TASK_COUNT="$tasks" SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=$((tasks - 1))
        for ((task = 0; task < tasks; task++)); do
            SLURM_ARRAY_TASK_ID=$task bash "$here/grid-array.sbatch" "$@" || exit $?
        done
        unset SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_MAX
        exec bash "$here/grid-merge.sbatch" "$@"
        ;;
    *)
        echo "usage: $0 prepare|grid|grid-array|retrain [adfd options]   (see the top of jobs/*.sbatch)" >&2
        exit 2
        ;;
esac
