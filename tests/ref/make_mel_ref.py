#!/usr/bin/python3
"""Reference features from torchaudio 0.13 for tests/test_features.c.

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/make_mel_ref.py
It synthesises a few speech clips with espeak-ng (resampled to 16 kHz 16-bit by sox), computes
  - seed:    torchaudio.transforms.MelSpectrogram(16000) (all defaults), zero-padded on the right
             to a multiple of 80 frames, cut into non-overlapping 80-frame chunks;
  - default: trim silence (blocks of 200 samples, 40 dB below the loudest block), repeat-pad clips
             shorter than 15800 samples, MelSpectrogram(16000, n_fft=512, hop 200, 128 mels)
             then AmplitudeToDB("power", top_db=None), 80-frame chunks every 40 frames plus one
             flush with the end;
  - the two mel filterbanks (torchaudio.functional.melscale_fbanks, norm=None, htk),
and writes them with the input samples to tests/ref/mel_ref.bin (little endian):
  "ADFDMEL1", int32 n_fb, n_fb x (int32 n_freq, int32 n_mels, float32 fb[n_freq][n_mels]),
  int32 n_clips, per clip: int64 n, int16 pcm[n] (sample = pcm/32768),
    then for seed and default: int32 n_chunks, int32 offsets[n_chunks],
    float32 chunks[n_chunks][128][80].
"""
import os
import struct
import subprocess
import tempfile

import numpy as np
import torch
import torchaudio

HERE = os.path.dirname(os.path.abspath(__file__))
SR = 16000
CHUNK = 80

CLIPS = [
    # (espeak-ng voice, words per minute, text, sox effects applied after resampling)
    ("en-us", 160, "The quick brown fox jumps over the lazy dog near the river bank.", []),
    ("en-gb", 140, "Deep fakes are hard to hear, but easy to measure.",
     ["pad", "0.6", "0.9", "gain", "-6"]),
    ("en-us", 220, "Yes.", []),  # shorter than one chunk: exercises repeat padding
]


def synth(voice, wpm, text, effects, tmp):
    raw = os.path.join(tmp, "raw.wav")
    out = os.path.join(tmp, "out.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", raw, text], check=True)
    subprocess.run(["sox", raw, "-r", str(SR), "-b", "16", "-c", "1", out] + effects, check=True)
    import wave
    with wave.open(out, "rb") as w:
        assert w.getframerate() == SR and w.getsampwidth() == 2 and w.getnchannels() == 1
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()
    return pcm


def chunk_grid(n_frames, hop, flush_end):
    starts = list(range(0, n_frames - CHUNK + 1, hop))
    if flush_end and starts[-1] + CHUNK < n_frames:
        starts.append(n_frames - CHUNK)
    return starts


def seed_chunks(x):
    mel = torchaudio.transforms.MelSpectrogram(SR)(torch.from_numpy(x))  # [128, F]
    frames = mel.shape[1]
    padded = -(-frames // CHUNK) * CHUNK
    mel = torch.nn.functional.pad(mel, (0, padded - frames))
    starts = chunk_grid(padded, CHUNK, False)
    return starts, np.stack([mel[:, s:s + CHUNK].numpy() for s in starts])


def trim(x, block=200, top_db=40.0):
    n_blocks = -(-len(x) // block)
    energy = np.array([np.mean(x[b * block:(b + 1) * block].astype(np.float64) ** 2)
                       for b in range(n_blocks)])
    peak = energy.max()
    if peak <= 0:
        return x
    loud = np.nonzero(energy >= peak * 10.0 ** (-top_db / 10.0))[0]
    return x[loud[0] * block:min(len(x), (loud[-1] + 1) * block)]


def default_chunks(x):
    x = trim(x)
    min_samples = (CHUNK - 1) * 200
    if len(x) < min_samples:
        x = np.resize(x, min_samples)  # repeats x cyclically
    mel = torchaudio.transforms.MelSpectrogram(SR, n_fft=512, hop_length=200, n_mels=128)(
        torch.from_numpy(x))
    db = torchaudio.transforms.AmplitudeToDB("power", top_db=None)(mel)
    starts = chunk_grid(db.shape[1], 40, True)
    return starts, np.stack([db[:, s:s + CHUNK].numpy() for s in starts])


def main():
    torch.set_num_threads(1)
    out = bytearray(b"ADFDMEL1")
    fbs = [torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, 8000.0, 128, SR, None, "htk")
           for n_fft in (400, 512)]
    out += struct.pack("<i", len(fbs))
    for fb in fbs:
        out += struct.pack("<ii", *fb.shape) + fb.numpy().astype("<f4").tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        pcms = [synth(*c, tmp) for c in CLIPS]
    out += struct.pack("<i", len(pcms))
    for pcm in pcms:
        x = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
        out += struct.pack("<q", len(pcm)) + pcm.astype("<i2").tobytes()
        for starts, chunks in (seed_chunks(x), default_chunks(x)):
            out += struct.pack("<i", len(starts)) + np.array(starts, "<i4").tobytes()
            out += chunks.astype("<f4").tobytes()
            print(f"clip {len(pcm)} samples: {len(starts)} chunks at {starts}")
    with open(os.path.join(HERE, "mel_ref.bin"), "wb") as f:
        f.write(out)
    print(f"wrote mel_ref.bin ({len(out)} bytes)")


if __name__ == "__main__":
    main()
