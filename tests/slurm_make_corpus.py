"""A tiny In-the-Wild style data set for the Slurm job tests: OUT/meta.csv + 16 kHz WAV clips.

Usage: /usr/bin/python3 slurm_make_corpus.py OUT
Six speakers, two bona-fide and two spoof clips each, 2 s per clip. Bona-fide clips are a
low harmonic tone, spoof clips a high one, both with noise, so a CNN can learn the labels in a
few epochs. Deterministic (fixed seed)."""
import csv
import os
import sys
import wave

import numpy as np

RATE = 16000
SPEAKERS = ["Ada", "Bob", "Carla", "Dan", "Eve", "Fay"]


def clip(rng, spoof, seconds=2.0):
    t = np.arange(int(RATE * seconds)) / RATE
    f0 = rng.uniform(2500, 3500) if spoof else rng.uniform(150, 300)
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
    x = 0.2 * x / np.max(np.abs(x)) + 0.02 * rng.standard_normal(t.size)
    return (np.clip(x, -1, 1) * 32767).astype("<i2")


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    with open(os.path.join(out, "meta.csv"), "w", newline="") as f:
        meta = csv.writer(f)
        meta.writerow(["file", "speaker", "label"])
        for s, speaker in enumerate(SPEAKERS):
            for k in range(4):
                spoof = k % 2 == 1
                name = f"{s}_{k}.wav"
                with wave.open(os.path.join(out, name), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(RATE)
                    w.writeframes(clip(rng, spoof).tobytes())
                meta.writerow([name, speaker, "spoof" if spoof else "bona-fide"])


if __name__ == "__main__":
    main(sys.argv[1])
