#!/usr/bin/env bash
# Feature and prepare speed (issue 4). Prints, from one run:
#  1. feature computation from decoded PCM, adfd vs torchaudio, same presets, same 10 s clips of
#     espeak-ng speech, one thread each, audio-seconds per CPU-second, and the ratio;
#  2. adfd prepare end to end (decode + resample + features + parallel HDF5 write) on a corpus at
#     1 and 2 ranks: audio-seconds per second per rank, and the 1 -> 2 rank speed-up;
#  3. store_read_rows on random batches against h5py.
# Usage: bench/run_features.sh [BUILD_DIR] [CORPUS_DIR]
#   CORPUS_DIR: an In-the-Wild layout folder (meta.csv + audio); default /work/corpus when it
#   exists, otherwise a synthetic speech corpus made here (espeak-ng + sox, 16 and 22.05 kHz).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$(cd "${1:-$here/../build}" && pwd)"
corpus="${2:-}"
[ -n "$corpus" ] || { [ -s /work/corpus/meta.csv ] && corpus=/work/corpus; } || true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=/usr/bin/python3

sentences=(
  "The committee decided yesterday that the new bridge would open in spring."
  "Several engineers still had doubts about the design and about its cost."
  "Please leave a message after the tone and I will call you back soon."
  "It was the best of times, it was the worst of times, it was the age of wisdom."
  "Nobody expected the weather to turn so quickly on the last day of the trip."
  "Numbers such as four hundred and twelve are read out one digit at a time."
)
voices=(en-us en-gb en-us+f3 en-gb-scotland en-us+m7 en-gb+f2)

echo "== 1. features from decoded PCM, 1 thread (audio-s per CPU-s)"
for i in "${!sentences[@]}"; do
  espeak-ng -v "${voices[$i]}" -s 150 -w "$work/s$i.wav" "${sentences[$i]} ${sentences[$(( (i + 1) % 6 ))]}"
done
sox "$work"/s*.wav -r 16000 -b 16 "$work/speech.wav"
sox "$work/speech.wav" "$work/speech2.wav" repeat 3   # about a minute of speech
# adfd and torchaudio in one process, taking turns over the clips FEATURE_ROUNDS times (default
# 20): the ratio is of the same minutes of machine time (bench/bench_features_paired.py).
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 "$py" -W ignore \
  "$here/bench_features_paired.py" "$build/bench/libadfd_features_paired.so" "$work/speech2.wav" \
  10 "${FEATURE_ROUNDS:-20}"
# adfd alone, and on one clip again and again (input in cache: what streaming it from memory costs)
"$build/bench/bench_features" "$work/speech2.wav" 10 3

echo "== 2. adfd prepare end to end"
if [ -z "$corpus" ]; then
  corpus="$work/corpus"
  mkdir -p "$corpus"
  echo "file,speaker,label" > "$corpus/meta.csv"
  n=0
  for rep in 0 1 2 3 4 5 6 7; do
    for i in "${!sentences[@]}"; do
      for j in "${!voices[@]}"; do
        f="c$n.wav"
        rate=$([ $((n % 3)) = 0 ] && echo 22050 || echo 16000)
        if [ "$rep" = 0 ]; then
          espeak-ng -v "${voices[$j]}" -s $((130 + 10 * i)) -w "$work/raw.wav" "${sentences[$i]}"
          sox "$work/raw.wav" -r $rate -b 16 "$corpus/$f"
        else
          cp "$corpus/c$((n % 36)).wav" "$corpus/$f"
        fi
        echo "$f,speaker$j,$([ $((i % 2)) = 0 ] && echo bona-fide || echo spoof)" >> "$corpus/meta.csv"
        n=$((n + 1))
      done
    done
  done
  echo "synthetic corpus: $n clips"
fi
"$py" - "$corpus/meta.csv" "$work/split.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
speakers = list(dict.fromkeys(r["speaker"] for r in rows))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "speaker", "label", "split"])
    for r in rows:
        k = speakers.index(r["speaker"])
        w.writerow([r["file"], r["speaker"], r["label"],
                    "holdout" if k == 0 else ("test" if k % 5 == 1 else "train")])
EOF
# Each rank is bound to one core (--bind-to core, Open MPI's own default for 2 ranks): a rank
# runs its compute thread and its writing main thread on that core, so 1 rank = 1 core and the
# 1 -> 2 rank speed-up is a per-core figure. The CPU time of every rank (user + system, from
# /usr/bin/time) is reported too: audio-seconds per CPU-second is the cost. Machines here are
# noisy, so each configuration runs REPS times (default 5), 1 and 2 ranks alternating, and the
# best wall time of each is used. The speed-up is only meaningful when both cores are free.
# Each run starts with no output file and the page cache flushed (sync): replacing an old 1 GB
# file (--force) frees its pages inside the timed run, and dirty pages of the previous run
# would be written back during this one.
reps="${REPS:-5}"
for preset in seed default; do
  best_1=""; best_2=""
  for rep in $(seq "$reps"); do
    for np in 1 2; do
      rm -f "$work/f.h5"
      sync
      rm -f "$work"/cpu.*
      # each rank's CPU time into a file of its own (lines on a shared stderr can interleave)
      mpiexec -n $np --bind-to core sh -c '/usr/bin/time -o "$0.$OMPI_COMM_WORLD_RANK" \
        -f "cpu %U %S" "$@"' "$work/cpu" "$build/adfd" prepare \
        --data "$corpus" --split "$work/split.csv" --preset $preset --out "$work/f.h5" --force \
        > "$work/log" 2>&1
      line=$(grep "^adfd prepare:" "$work/log")
      echo "$line"
      audio=$(echo "$line" | sed 's/.*rows, \([0-9.]*\) s (.*/\1/')
      wall=$(echo "$line" | sed 's/.* of audio in \([0-9.]*\) s.*/\1/')
      cpu=$(cat "$work"/cpu.* | awk '/^cpu / {s += $2 + $3} END {print s}')
      awk -v p=$preset -v n=$np -v a="$audio" -v w="$wall" -v c="$cpu" 'BEGIN {
        printf "prepare %s, %d rank(s): %.0f audio-s/s wall (%.0f per rank), %.0f audio-s per CPU-s (%.1f CPU-s for %.0f s of audio)\n", p, n, a / w, a / w / n, a / c, c, a }'
      eval "b=\${best_${np}}"
      if [ -z "$b" ] || awk -v w="$wall" -v b="$b" 'BEGIN {exit !(w < b)}'; then
        eval "best_${np}=$wall"
      fi
    done
  done
  awk -v p=$preset -v a="$best_1" -v b="$best_2" -v au="$audio" 'BEGIN {
    printf "prepare %s: best of '"$reps"' runs: 1 rank %.2f s (%.0f audio-s/s), 2 ranks %.2f s (%.0f audio-s/s per rank): speed-up %.2fx\n", p, a, au / a, b, au / b / 2, a / b}'
  # What the file system alone takes for the same bytes, from one process and from two
  # processes writing a half each at the same time (the kernel copies every byte into the page
  # cache; on this VM one process filling 1 GB of fresh page cache is often several times
  # slower than two filling half each, which favours the 2-rank runs above).
  bytes=$(stat -c %s "$work/f.h5")
  mb=$(( (bytes + 1048575) / 1048576 ))
  sync
  t0=$(date +%s.%N)
  head -c "$bytes" /dev/zero > "$work/dd.bin"
  t1=$(date +%s.%N)
  rm -f "$work/dd.bin"
  sync
  t2=$(date +%s.%N)
  dd if=/dev/zero of="$work/dd.bin" bs=1M count=$(( mb / 2 )) conv=notrunc status=none &
  dd if=/dev/zero of="$work/dd.bin" bs=1M seek=$(( mb / 2 )) count=$(( mb - mb / 2 )) \
    conv=notrunc status=none
  wait
  t3=$(date +%s.%N)
  rm -f "$work/dd.bin"
  awk -v p=$preset -v b="$bytes" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" \
    'BEGIN {printf "prepare %s: writing the same %.0f MB takes %.2f s from one process, %.2f s from two writing a half each\n", p, b / 1e6, t1 - t0, t3 - t2}'
done
echo "== 3. reading random batches of 64 rows from the default-preset file (warm page cache)"
"$build/bench/bench_store" "$work/f.h5" 64 300
"$py" "$here/bench_store.py" "$work/f.h5" 64 300
echo "(machine load while measuring: $(cut -d' ' -f1-3 /proc/loadavg) on $(getconf _NPROCESSORS_ONLN) cores)"
