#!/usr/bin/env bash
# Scores a one-hour recording with `adfd analyze` (1 process, 1 BLAS thread) and with the same
# pipeline in PyTorch + torchaudio (tests/analyze_torch_ref.py, torch.set_num_threads(1)), for a
# seed-preset and a default-preset model (and models/demo.h5 when present), and prints audio-seconds per second per core and the
# ratio. Both timings include reading the WAV file; adfd's also includes loading the model and
# process start-up.
#   analyze_bench.sh ADFD MAKE_MODEL PYTHON SOURCE_DIR [CHANNELS]
# The recording: the clips of $ADFD_BENCH_CORPUS (a folder of WAV files, e.g. the demo corpus)
# concatenated up to one hour, or else one minute of synthetic speech-like audio repeated.
set -euo pipefail
adfd=$1 make_model=$2 py=$3 src=$4 channels=${5:-8}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
work=bench_analyze
mkdir -p "$work" && cd "$work"

if [ ! -f hour.wav ]; then
    if [ -n "${ADFD_BENCH_CORPUS:-}" ] && [ -d "$ADFD_BENCH_CORPUS" ]; then
        "$py" - "$ADFD_BENCH_CORPUS" <<'PY'
import glob, sys, wave
clips = sorted(glob.glob(sys.argv[1] + "/*.wav"))
total, out = 0, wave.open("hour.wav", "wb")
out.setnchannels(1); out.setsampwidth(2); out.setframerate(16000)
while total < 3600 * 16000:
    for c in clips:
        with wave.open(c) as w:
            frames = w.readframes(w.getnframes())
        out.writeframes(frames); total += len(frames) // 2
        if total >= 3600 * 16000: break
out.close()
PY
    else
        "$py" - <<'PY'
import wave, numpy as np
rng = np.random.default_rng(1)
t = np.arange(60 * 16000) / 16000
f0 = 140 + 40 * np.sin(2 * np.pi * 0.3 * t)
voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 12))
env = np.clip(np.sin(2 * np.pi * 2.7 * t) + 0.3 * np.sin(2 * np.pi * 0.41 * t), 0, None)
x = 0.2 * env * voiced / 3 + 0.01 * rng.standard_normal(len(t))
with wave.open("minute.wav", "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(np.clip(x * 32767, -32768, 32767).astype("<i2").tobytes())
PY
        sox minute.wav hour.wav repeat 59
        rm -f minute.wav
    fi
fi
seconds=$(soxi -D hour.wav)
echo "recording: $seconds s of audio, $channels-channel test models (demo: its own), hop 0.5 s, 1 core"

# CPU seconds (user + system) are the per-core cost even when other jobs share the cores; wall
# seconds are printed too.
"$make_model" seed.h5 seed "$channels" 1 0.5
"$make_model" default.h5 default "$channels" 1 0.5
models="seed default"
if [ -f "$src/models/demo.h5" ]; then cp "$src/models/demo.h5" demo.h5 && models="$models demo"; fi
for preset in $models; do
    read -r ours_wall ours_cpu < <("$py" -c '
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(time.perf_counter() - t, r.ru_utime + r.ru_stime)' "$adfd" analyze --model "$preset.h5" --json hour.wav)
    read -r ref_wall ref_cpu _ < <(MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \
        "$py" "$src/tests/analyze_torch_ref.py" --bench "$preset.h5" 40 hour.wav 2>/dev/null)
    awk -v p="$preset" -v s="$seconds" -v ow="$ours_wall" -v oc="$ours_cpu" -v rw="$ref_wall" \
        -v rc="$ref_cpu" 'BEGIN {
        printf "%-8s adfd analyze: %7.0f audio-s per CPU-s (%.2f CPU-s, %.2f s wall)   " \
               "torch+torchaudio: %6.0f audio-s per CPU-s (%.2f CPU-s, %.2f s wall)   ratio %.1fx (wall %.1fx)\n",
               p, s / oc, oc, ow, s / rc, rc, rw, rc / oc, rw / ow }'
done
