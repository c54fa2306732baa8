"""The `adfd analyze` pipeline written again in PyTorch + torchaudio, from the documents only
(DESIGN.md section 3, the rules in include/adfd/features.h, the model file layout of
include/adfd/model.h): read a 16-bit mono 16 kHz WAV, trim / repeat-pad by the model's preset,
torchaudio MelSpectrogram (+ AmplitudeToDB), cut windows of chunk_frames every hop frames, the
original CNN as a torch module with the weights read by h5py, P(spoof) per window.

Imported by tests/test_analyze_torch.py as the independent reference; run as
  analyze_torch_ref.py --bench MODEL.h5 HOP_FRAMES WAV      (prints wall and CPU seconds)
it is the speed reference of bench/analyze_bench.sh. Debian's /usr/bin/python3 only.
"""
import sys
import time
import wave

import h5py
import numpy as np
import torch
import torchaudio


def read_wav16(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000, path
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def attr(f, name):
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else v


class Model:
    def __init__(self, path):
        with h5py.File(path, "r") as f:
            self.p = {k: attr(f, k) for k in f.attrs}
            tensors = {k: torch.from_numpy(np.array(f[k])) for k in f.keys()}
        C = int(self.p["channels"])
        self.net = torch.nn.Sequential()
        self.net.layer1 = torch.nn.Sequential(
            torch.nn.Conv2d(1, C, 3), torch.nn.BatchNorm2d(C), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Dropout(float(self.p["dropout"])))
        self.net.add_module("flatten", torch.nn.Flatten())
        self.net.layer2 = torch.nn.Linear(C * 63 * 39, 2)
        self.band_mean = tensors.pop("band_mean").view(1, 1, -1, 1)
        self.band_std = tensors.pop("band_std").view(1, 1, -1, 1)
        self.net.load_state_dict(tensors)
        self.net.eval()
        p = self.p
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=int(p["sample_rate"]), n_fft=int(p["n_fft"]),
            win_length=int(p["win_length"]), hop_length=int(p["hop_length"]),
            f_min=float(p["f_min"]), f_max=float(p["f_max"]), n_mels=int(p["n_mels"]),
            power=float(p["power"]), center=bool(p["center"]), pad_mode="reflect", norm=None,
            mel_scale="htk")
        self.to_db = torchaudio.transforms.AmplitudeToDB("power", top_db=None)

    def trim(self, x):
        """[begin, end) kept: blocks of hop_length samples more than trim_db below the loudest
        block are removed from both ends."""
        if not int(self.p["trim_silence"]):
            return 0, len(x)
        block = int(self.p["hop_length"])
        n_blocks = (len(x) + block - 1) // block
        energy = np.array([np.mean(x[b * block:(b + 1) * block].astype(np.float64) ** 2)
                           for b in range(n_blocks)])
        peak = energy.max()
        if peak <= 0:
            return 0, len(x)
        loud = np.nonzero(energy >= peak * 10 ** (-float(self.p["trim_db"]) / 10))[0]
        return int(loud[0]) * block, min(int(loud[-1] + 1) * block, len(x))

    def windows(self, x, hop):
        """([n, 1, n_mels, chunk_frames] features, offsets, trim begin)."""
        p = self.p
        cf, hl = int(p["chunk_frames"]), int(p["hop_length"])
        begin, end = self.trim(x)
        s = x[begin:end]
        need = (cf - 1) * hl
        if int(p["repeat_pad"]) and len(s) < need:
            s = np.resize(s, need)  # tiles the signal: s[i % len]
        with torch.no_grad():
            mel = self.mel(torch.from_numpy(np.ascontiguousarray(s)))
            if int(p["log_db"]):
                mel = self.to_db(mel)
        frames = mel.shape[1]
        padded = frames if int(p["repeat_pad"]) else -(-frames // cf) * cf
        padded = max(padded, cf)
        if padded > frames:
            silence = -100.0 if int(p["log_db"]) else 0.0
            mel = torch.cat([mel, torch.full((mel.shape[0], padded - frames), silence)], dim=1)
        offsets = list(range(0, padded - cf + 1, hop))
        if offsets[-1] + cf < padded:
            offsets.append(padded - cf)
        chunks = torch.stack([mel[:, o:o + cf] for o in offsets]).unsqueeze(1)
        return chunks, offsets, begin

    def scores(self, chunks, batch=64):
        out = []
        with torch.no_grad():
            for i in range(0, len(chunks), batch):
                z = (chunks[i:i + batch] - self.band_mean) / self.band_std
                out.append(torch.softmax(self.net(z), dim=1)[:, 1])
        return torch.cat(out)


def main(argv):
    """--bench MODEL.h5 HOP_FRAMES WAV: wall and CPU seconds of the whole pipeline on WAV."""
    torch.set_num_threads(1)
    model, hop, path = Model(argv[1]), int(argv[2]), argv[3]
    wall, cpu = time.perf_counter(), time.process_time()
    x = read_wav16(path)
    chunks, offsets, _ = model.windows(x, hop)
    model.scores(chunks)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{wall:.3f} {cpu:.3f} wall and CPU seconds for {len(x) / 16000:.0f} audio-seconds, "
          f"{len(offsets)} windows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
