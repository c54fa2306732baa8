#!/usr/bin/python3
"""adfd's mel front end against torchaudio's MelSpectrogram, timed in one process on the same
clips, one thread each. Three sides take turns, the whole list of clips at a time, in an order
that rotates every round: adfd's mel_spectrogram (what MelSpectrogram computes), adfd's whole
per-clip pipeline (features_clip_chunks: trim, pad, chunks, as `adfd prepare` runs it) and
torchaudio. A burst of load on a shared machine then slows the sides alike instead of deciding
the ratio: timed in separate processes, the ratio moved between 4x and 8x from run to run here.
  bench_features_paired.py LIB WAV CLIP_SECONDS ROUNDS
LIB is build/bench/libadfd_features_paired.so (bench/features_paired.c, the feature sources as a
shared library, called through ctypes). Prints, per preset, audio-seconds per CPU-second of each
side (time.process_time; adfd's share includes the ctypes calls), the ratios of total times, and
how far the two spectrograms are apart (relative error on bins above 1e-6 of the largest for
seed, dB for default), which shows both computed the same thing."""
import ctypes
import sys
import time

import numpy as np
import torch
import torchaudio


def load_adfd(path):
    lib = ctypes.CDLL(path)
    lib.paired_create.restype = ctypes.c_void_p
    lib.paired_create.argtypes = [ctypes.c_char_p]
    lib.mel_frontend_frames.restype = ctypes.c_int64
    lib.mel_frontend_frames.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    lib.mel_spectrogram.restype = None
    lib.mel_spectrogram.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.paired_clip_chunks.restype = ctypes.c_int
    lib.paired_clip_chunks.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.mel_frontend_free.argtypes = [ctypes.c_void_p]
    return lib


def main():
    lib_path, wav, clip_seconds, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)
    lib = load_adfd(lib_path)
    x, sr = torchaudio.load(wav)
    assert sr == 16000, "the benchmark input is 16 kHz"
    x = x.mean(0).contiguous()
    samples = x.numpy()
    clip = int(clip_seconds * sr)
    starts = list(range(0, len(x) - clip + 1, clip))
    presets = {
        "seed": torchaudio.transforms.MelSpectrogram(16000),
        "default": torch.nn.Sequential(
            torchaudio.transforms.MelSpectrogram(16000, n_fft=512, hop_length=200, n_mels=128),
            torchaudio.transforms.AmplitudeToDB("power", top_db=None)),
    }
    with torch.no_grad():
        for name, transform in presets.items():
            fe = lib.paired_create(name.encode())
            assert fe, f"adfd could not make the {name} front end"
            mel = np.empty((128, lib.mel_frontend_frames(fe, clip)), dtype=np.float32)
            mel_ptr = mel.ctypes.data_as(ctypes.c_void_p)

            def adfd_mel(s):
                lib.mel_spectrogram(fe, samples[s:].ctypes.data_as(ctypes.c_void_p), clip, mel_ptr)

            def adfd_chunks(s):
                lib.paired_clip_chunks(fe, samples[s:].ctypes.data_as(ctypes.c_void_p), clip)

            def torch_mel(s):
                return transform(x[s:s + clip])

            # the same result (and the warm-up of every side)
            ref = torch_mel(starts[0]).numpy()
            adfd_mel(starts[0])
            adfd_chunks(starts[0])
            if name == "seed":
                big = ref > 1e-6 * ref.max()
                apart = f"largest relative error {np.max(np.abs(mel[big] - ref[big]) / ref[big]):.1e}"
            else:
                apart = f"largest difference {np.max(np.abs(mel - ref)):.1e} dB"
            sides = [adfd_mel, adfd_chunks, torch_mel]
            seconds = [0.0, 0.0, 0.0]
            for r in range(rounds):
                for i in range(3):
                    side = (r + i) % 3
                    t0 = time.process_time()
                    for s in starts:
                        sides[side](s)
                    seconds[side] += time.process_time() - t0
            audio = rounds * len(starts) * clip_seconds
            rate = [audio / t for t in seconds]
            print(f"paired {name}: adfd mel_spectrogram {rate[0]:.0f}, adfd clip_chunks {rate[1]:.0f}, "
                  f"torchaudio {rate[2]:.0f} audio-s/s ({rounds} x {len(starts)} clips of "
                  f"{clip_seconds:g} s each; {apart})")
            print(f"ratio {name} mel_spectrogram / torchaudio MelSpectrogram: {rate[0] / rate[2]:.2f}x")
            print(f"ratio {name} clip_chunks / torchaudio MelSpectrogram: {rate[1] / rate[2]:.2f}x")
            lib.mel_frontend_free(fe)


if __name__ == "__main__":
    main()
