#!/usr/bin/env bash
# Submits jobs/grid-array.sbatch as an array of TASKS tasks and jobs/grid-merge.sbatch after it
# (--dependency=afterok: the merge runs only when every task succeeded, requeues included).
#
#   FEATURES=features.h5 CONFIG=configs/seed-grid.ini TASKS=8 jobs/submit-grid-array.sh \
#       [sbatch options for the array tasks] [-- adfd grid options for the tasks and the merge]
#
# FEATURES, CONFIG  as in jobs/grid-array.sbatch; TASKS array size (default 4); RUNS, ADFD, ...
# pass through the environment. sbatch options (e.g. --ntasks=4 --partition=long) go to the
# array tasks only. Prints "<array job id> <merge job id>"; the run folder is
# $RUNS/<array job name>_<array job id>.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${FEATURES:?set FEATURES=features.h5}" "${CONFIG:?set CONFIG=configs/NAME.ini}"
tasks="${TASKS:-4}"
sbatch_opts=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    sbatch_opts+=("$1")
    shift
done
[ $# -gt 0 ] && shift # the --
array_id=$(sbatch --parsable --array=0-$((tasks - 1)) --export=ALL "${sbatch_opts[@]}" \
    "$here/grid-array.sbatch" "$@")
array_id="${array_id%%;*}" # --parsable prints "id;cluster" on multi-cluster setups
job_name=$(scontrol show job "$array_id" | sed -n 's/.*JobName=\([^ ]*\).*/\1/p' | head -n 1)
merge_id=$(sbatch --parsable --dependency=afterok:"$array_id" \
    --export=ALL,RUN_NAME="${job_name}_${array_id}" "$here/grid-merge.sbatch" "$@")
echo "$array_id ${merge_id%%;*}"
