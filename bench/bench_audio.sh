#!/usr/bin/env bash
# Audio loading speed, adfd vs torchaudio on the same files in the same run, one thread each.
# Usage: bench/bench_audio.sh BUILD_DIR   (needs bench_audio built, sox, Debian's python3)
set -euo pipefail
build="${1:-build}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# 4 s clips in the formats a data set mixes: 16 kHz wav, 44.1 kHz stereo flac, 22.05 kHz ogg,
# 48 kHz float wav.
for i in 0 1 2 3 4; do
    sox -r 16000 -n -b 16 "$work/a$i.wav" synth 4 pinknoise vol 0.3
    sox -r 44100 -n -c 2 "$work/b$i.flac" synth 4 pinknoise vol 0.3
    sox -r 22050 -n "$work/c$i.ogg" synth 4 pinknoise vol 0.3
    sox -r 48000 -n -b 32 -e float "$work/d$i.wav" synth 4 pinknoise vol 0.3
done
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
for set in "a*.wav" "b*.flac" "c*.ogg" "d*.wav"; do
    echo "== $set"
    ours=$("$build/bench/bench_audio" 20 $work/$set)
    ref=$(/usr/bin/python3 "$here/bench_audio_ref.py" 20 $work/$set)
    echo "$ours"; echo "$ref"
    a=$(echo "$ours" | sed 's/.*= \([0-9.]*\) x.*/\1/'); b=$(echo "$ref" | sed 's/.*= \([0-9.]*\) x.*/\1/')
    echo "ratio adfd / torchaudio: $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", a/b}')"
done
