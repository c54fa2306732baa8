"""adfd analyze's window scores are the chunk scores `adfd eval` writes in chunks.csv for the same
audio at the same offsets, for both presets: a small In-the-Wild style data set is split,
prepared (seed: 80-frame hop; default: 40-frame hop, trimming, repeat-padding), scored by eval,
and its held-out and test clips analyzed with --hop equal to the chunk hop. The clip scores must
agree with scores.csv too. With the seed preset and --hop 0.5, the windows at multiples of 80
frames must still carry eval's scores. Argument: the analyze_make_model helper."""
import csv
import json
import os
import subprocess
import sys
import wave

import numpy as np

ADFD = os.environ["ADFD"]
MAKE_MODEL = sys.argv[1]
failures = 0


def check(cond, message):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", message)


def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(" ".join(cmd), "->", r.returncode, r.stdout, r.stderr)
        sys.exit(1)
    return r.stdout


def write_wav(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes())


def clip(seconds, seed, lead_silence=0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    x = 0.25 * (0.6 + 0.4 * np.sin(2 * np.pi * 2.9 * t + seed)) * (
        np.sin(2 * np.pi * (150 + 20 * seed) * t) + 0.3 * rng.uniform(-1, 1, len(t)))
    return np.concatenate([np.zeros(int(lead_silence * 16000)), x]).astype(np.float32)


def make_data():
    os.makedirs("data", exist_ok=True)
    lengths = [2.7, 1.3, 0.55, 3.05, 4.2, 1.0]
    rows = []
    for s, speaker in enumerate(["ann", "bob", "cid", "dee"]):
        for k, seconds in enumerate(lengths):
            name = f"{speaker}_{k}.wav"
            write_wav(f"data/{name}", clip(seconds, 10 * s + k, 0.4 if k == 3 else 0.0))
            rows.append((name, speaker, "spoof" if (s + k) % 2 else "bona-fide"))
    with open("data/meta.csv", "w") as f:
        f.write("file,speaker,label\n")
        for r in rows:
            f.write(",".join(r) + "\n")


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def compare(preset, split, hop_seconds, every=1):
    chunks = read_csv(f"eval_{preset}_{split}/chunks.csv")
    scores = {r["file"]: float(r["score"]) for r in read_csv(f"eval_{preset}_{split}/scores.csv")}
    by_file = {}
    for r in chunks:
        by_file.setdefault(r["file"], {})[int(r["offset"])] = float(r["score"])
    files = sorted(by_file)
    doc = json.loads(run(ADFD, "analyze", "--model", f"{preset}_model.h5", "--json", "--hop",
                         str(hop_seconds), *[f"data/{f}" for f in files]))
    worst, compared = 0.0, 0
    for name, entry in zip(files, doc["files"]):
        windows = {w["offset_frames"]: w["score"] for w in entry["windows"]}
        want = by_file[name]
        if every == 1:
            check(sorted(windows) == sorted(want),
                  f"{preset} {name}: window offsets {sorted(windows)} != chunks {sorted(want)}")
            check(abs(entry["clip_score"] - scores[name]) <= 1e-5,
                  f"{preset} {name}: clip {entry['clip_score']} != eval {scores[name]}")
        for offset, score in want.items():
            got = windows.get(offset)
            check(got is not None and abs(got - score) <= 1e-5,
                  f"{preset} {name} @{offset}: analyze {got} != eval {score}")
            if got is not None:
                worst = max(worst, abs(got - score))
                compared += 1
    print(f"{preset} {split} hop {hop_seconds}: {len(files)} files, {compared} chunks, "
          f"max |analyze - eval| = {worst:.2e}")
    check(compared >= len(files), f"{preset} {split}: nothing compared")


def main():
    os.makedirs("test_analyze_eval", exist_ok=True)
    os.chdir("test_analyze_eval")
    make_data()
    run(ADFD, "split", "--data", "data", "--holdout", "dee", "--test-fraction", "0.34",
        "--out", "split.csv")
    for preset, hop in (("seed", 1.0), ("default", 0.5)):
        run(ADFD, "prepare", "--data", "data", "--split", "split.csv", "--preset", preset,
            "--out", f"{preset}.h5", "--force")
        run(MAKE_MODEL, f"{preset}_model.h5", preset, "3", "41", "0.5")
        for split in ("holdout", "test"):
            run(ADFD, "eval", "--features", f"{preset}.h5", "--model", f"{preset}_model.h5",
                "--split", split, "--out", f"eval_{preset}_{split}", "--no-plots",
                "--bootstrap", "10")
            compare(preset, split, hop)
    compare("seed", "holdout", 0.5, every=2)
    print("test_analyze_eval:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
