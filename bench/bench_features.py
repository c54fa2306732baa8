#!/usr/bin/python3
"""torchaudio reference for bench/bench_features.c: the same presets on the same audio, cut into
the same clips, one thread, CPU time (time.process_time) as in the C program.
  bench_features.py WAV CLIP_SECONDS MIN_TIMING_SECONDS
Run with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 (bench/run_features.sh does)."""
import sys
import time

import torch
import torchaudio


def main():
    path, clip_seconds, min_time = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(1)
    x, sr = torchaudio.load(path)
    assert sr == 16000, "the benchmark input is 16 kHz"
    x = x.mean(0)
    clip = int(clip_seconds * sr)
    presets = {
        "seed": torchaudio.transforms.MelSpectrogram(16000),
        "default": torch.nn.Sequential(
            torchaudio.transforms.MelSpectrogram(16000, n_fft=512, hop_length=200, n_mels=128),
            torchaudio.transforms.AmplitudeToDB("power", top_db=None)),
    }
    with torch.no_grad():
        for name, transform in presets.items():
            transform(x[:clip])  # warm-up
            audio, t0 = 0.0, time.process_time()
            while time.process_time() - t0 < min_time:
                for s in range(0, len(x) - clip + 1, clip):
                    transform(x[s:s + clip])
                    audio += clip_seconds
            print(f"torchaudio {name} MelSpectrogram {audio / (time.process_time() - t0):.0f} audio-s/s")


if __name__ == "__main__":
    main()
