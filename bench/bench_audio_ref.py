"""The seed project's way to read a clip: torchaudio.load, channel mean, torchaudio resample to
16 kHz. Same files and repeats as bench_audio; prints seconds of audio per second of wall time."""
import sys
import time

import torch
import torchaudio

torch.set_num_threads(1)
repeats, files = int(sys.argv[1]), sys.argv[2:]
audio_seconds, start = 0.0, time.perf_counter()
for _ in range(repeats):
    for path in files:
        x, rate = torchaudio.load(path)
        x = x.mean(dim=0)
        if rate != 16000:
            x = torchaudio.functional.resample(x, rate, 16000)
        audio_seconds += x.numel() / 16000
wall = time.perf_counter() - start
print(f"torchaudio load+resample: {audio_seconds:.1f} s of audio in {wall:.3f} s = "
      f"{audio_seconds / wall:.0f} x real time")
