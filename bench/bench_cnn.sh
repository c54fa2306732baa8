#!/usr/bin/env bash
# CNN speed vs PyTorch 1.13 in the same run, one thread each:
#   bench/bench_cnn.sh BUILD_DIR [SECONDS_PER_POINT]     (or: cmake --build BUILD --target bench_cnn)
# Prints adfd and PyTorch samples/s, the speed-up, and adfd's nominal GFLOP/s vs SGEMM peak.
set -euo pipefail
build=$1 seconds=${2:-2}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
ours=$(mktemp) theirs=$(mktemp)
"$build/bench/bench_cnn" "$seconds" >"$ours"
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 /usr/bin/python3 "$here/bench_cnn.py" "$seconds" >"$theirs"
peak=$(awk '/^sgemm_gflops/ {print $2}' "$ours")
echo "OpenBLAS SGEMM 1024^3, 1 thread: $peak GFLOP/s"
printf "%-6s %4s %5s %12s %12s %8s %9s %7s\n" what C B adfd/s torch/s speedup GFLOP/s %peak
while read -r what c b _ sps _ gf _ frac; do
    key="$what $c $b"
    ref=$(awk -v k="$key" '($1" "$2" "$3)==k {print $5}' "$theirs")
    printf "%-6s %4s %5s %12.0f %12.0f %7.1fx %9.2f %6.1f%%\n" "$what" "${c#C=}" "${b#B=}" "$sps" \
        "$ref" "$(echo "$sps / $ref" | bc -l)" "$gf" "$(echo "$frac * 100" | bc -l)"
done < <(grep -E '^(train|infer)' "$ours")
rm -f "$ours" "$theirs"
