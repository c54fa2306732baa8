#!/usr/bin/env bash
# Grid throughput: the same 8-configuration grid (equal cost, so 2 groups can be balanced) on a
# synthetic feature file, at 1 rank, 2 ranks as 2 groups (grid parallelism) and 2 ranks as 1
# group (data parallelism); PyTorch trains one configuration-epoch of the same CNN on the same
# rows in the same run (1 thread) for the ratio.
# Usage: grid_bench.sh ADFD PYTHON SOURCE_DIR [MPIEXEC]
set -euo pipefail
adfd="$1" python="$2" src="$3" mpiexec="${4:-mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMP_NUM_THREADS=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
work="$PWD/grid_bench"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$python" "$src/tests/grid_make_features.py" features.h5 --size 29 20 4   # 2080 train, 160 test rows
cat > bench.ini <<'INI'
[grid]
channels   = 8
lr         = 1e-3, 7e-4, 5e-4, 3e-4, 2e-4, 1.5e-4, 1e-4, 7e-5
batch      = 32
max_epochs = 4
patience   = 0
INI
config_epochs=32

# run NAME NP GROUPS: prints "wall cpu" seconds (cpu = user + system of all ranks) of the
# repetition with the shorter wall time, of 2.
run() {
    local best="" best_cpu="" rep wall cpu
    for rep in 1 2; do
        rm -rf "run_$1"
        local TIMEFORMAT="%R %U %S"
        read -r wall user sys < <({ time "$mpiexec" -n "$2" --oversubscribe "$adfd" grid \
            --features features.h5 --config bench.ini --out "run_$1" --groups "$3" --no-plots \
            --bootstrap 10 >/dev/null 2>"run_$1.log"; } 2>&1)
        cpu=$(echo "$user + $sys" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc -l)" = 1 ]; then
            best=$wall best_cpu=$cpu
        fi
    done
    echo "$best $best_cpu"
}
load0=$(cut -d" " -f1-3 /proc/loadavg)
read -r t1 c1 < <(run np1 1 1)
read -r t2 c2 < <(run np2_grid 2 2)
read -r t2d c2d < <(run np2_data 2 1)
torch_s=$("$python" "$src/bench/grid_torch.py" features.h5 8 32)

# Training-only time of the last repetition: the busiest group's summed epoch seconds (excludes
# start-up and evaluation).
train_s() {
    "$python" -c 'import glob, sys
print(max(sum(float(l.split()[5]) for l in open(f)) for f in glob.glob(sys.argv[1] + "/epochs/*.tsv")))' "run_$1"
}
rate() { echo "$config_epochs * 3600 / $1" | bc -l; }
printf "grid bench: %d configuration-epochs (channels 8, batch 32, 2080 train + 160 test chunks)\n" $config_epochs
printf "  1 rank                    %7.1f s  %8.0f configuration-epochs/hour\n" "$t1" "$(rate "$t1")"
printf "  2 ranks, --groups 2       %7.1f s  %8.0f configuration-epochs/hour\n" "$t2" "$(rate "$t2")"
printf "  2 ranks, --groups 1       %7.1f s  %8.0f configuration-epochs/hour\n" "$t2d" "$(rate "$t2d")"
printf "  parallel efficiency at 2 ranks (wall): grid %.2f, data %.2f (target >= 0.9 for grid)\n" \
    "$(echo "$t1 / (2 * $t2)" | bc -l)" "$(echo "$t1 / (2 * $t2d)" | bc -l)"
s1=$(train_s np1) s2=$(train_s np2_grid) s2d=$(train_s np2_data)
printf "  training only (busiest group): 1 rank %.1f s, grid %.1f s, data %.1f s -> efficiency grid %.2f, data %.2f\n" \
    "$s1" "$s2" "$s2d" "$(echo "$s1 / (2 * $s2)" | bc -l)" "$(echo "$s1 / (2 * $s2d)" | bc -l)"
printf "  CPU seconds (all ranks): 1 rank %.1f, grid %.1f, data %.1f -> work efficiency grid %.2f, data %.2f\n" \
    "$c1" "$c2" "$c2d" "$(echo "$c1 / $c2" | bc -l)" "$(echo "$c1 / $c2d" | bc -l)"
printf "  PyTorch 1 thread: %.2f s per configuration-epoch; adfd 1 rank %.2f s (PyTorch/adfd %.2f)\n" \
    "$torch_s" "$(echo "$t1 / $config_epochs" | bc -l)" "$(echo "$torch_s * $config_epochs / $t1" | bc -l)"
echo "  (wall times include process start, the held-out evaluation and file I/O)"
echo "  machine: $(nproc --all) cores, load average before/after: $load0 / $(cut -d" " -f1-3 /proc/loadavg)"
