"""Writes a tiny synthetic feature file in the adfd store layout (store.h) for the grid/eval
tests: 8 speakers x 8 clips (4 spoof, 4 bona fide) x 2 chunks of [128,80]; speakers 0-4 train,
5-6 test, 7 holdout. Spoof chunks carry a weak high-band pattern in noise, so a 1-2 channel CNN
learns something in a few epochs but not perfectly.
Usage: grid_make_features.py OUT.h5 [--flip-holdout] [--size SPEAKERS CLIPS CHUNKS]
(--flip-holdout swaps the held-out labels; --size makes a bigger file for bench/grid: the last
speaker is held out, the two before it are the test split)."""
import sys
import h5py
import numpy as np

out = sys.argv[1]
flip = "--flip-holdout" in sys.argv[2:]
rng = np.random.default_rng(6)
n_speakers, clips_per_speaker, chunks_per_clip = 8, 8, 2
if "--size" in sys.argv:
    i = sys.argv.index("--size")
    n_speakers, clips_per_speaker, chunks_per_clip = map(int, sys.argv[i + 1:i + 4])
split_of_speaker = [0] * (n_speakers - 3) + [1, 1, 2]
files, speakers, labels, splits, seconds = [], [], [], [], []
features, row_clip, row_offset = [], [], []
pattern = np.zeros((128, 80), np.float32)
pattern[80:, :] = 1.0
for s in range(n_speakers):
    for k in range(clips_per_speaker):
        label = k % 2
        clip = len(files)
        files.append(f"spk{s}/clip{k}.wav")
        speakers.append(s)
        labels.append(label)
        splits.append(split_of_speaker[s])
        seconds.append(2.0)
        strength = rng.uniform(0.0, 0.6)
        for c in range(chunks_per_clip):
            x = rng.normal(1.0, 1.0, (128, 80)).astype(np.float32) ** 2
            if label:
                x += strength * pattern
            features.append(x)
            row_clip.append(clip)
            row_offset.append(80 * c)
labels = np.array(labels, np.int32)
if flip:
    held = np.array(splits) == 2
    labels[held] = 1 - labels[held]
with h5py.File(out, "w") as f:
    f.attrs["format_version"] = np.int32(1)
    f.attrs.create("preset", np.bytes_("seed"))
    for name, value in dict(sample_rate=16000, n_fft=400, win_length=400, hop_length=200,
                            n_mels=128, center=1, log_db=0, trim_silence=0, repeat_pad=0,
                            chunk_frames=80, chunk_hop=80).items():
        f.attrs[name] = np.int32(value)
    for name, value in dict(f_min=0.0, f_max=8000.0, power=2.0, trim_db=0.0).items():
        f.attrs[name] = np.float32(value)
    f.attrs.create("source_meta", np.bytes_("synthetic/meta.csv"))
    f.attrs.create("source_checksum", np.bytes_("0000000000000000"))
    f.create_dataset("features", data=np.stack(features), chunks=(4, 128, 80))
    f.create_dataset("clip", data=np.array(row_clip, np.int32))
    f.create_dataset("offset", data=np.array(row_offset, np.int32))
    f.create_dataset("clips/file", data=np.array(files, dtype="S64"))
    f.create_dataset("clips/speaker", data=np.array(speakers, np.int32))
    f.create_dataset("clips/label", data=labels)
    f.create_dataset("clips/split", data=np.array(splits, np.int32))
    f.create_dataset("clips/seconds", data=np.array(seconds, np.float32))
    f.create_dataset("speakers/name", data=np.array([f"spk{s}" for s in range(n_speakers)], dtype="S16"))
    f.create_dataset("normalization/mean", data=np.zeros(128, np.float32))
    f.create_dataset("normalization/std", data=np.ones(128, np.float32))
