"""adfd analyze --json against the PyTorch/torchaudio re-implementation (analyze_torch_ref.py):
every window's offset, start, end and score, the clip score and the verdict, for both presets and
several hops, on clips with silence to trim, a clip shorter than one window, and a clip whose
second half is the "fake" one for a hand-made model (its top windows must lie in that half).
Every JSON document is validated against docs/analyze.schema.json.
Argument: the analyze_make_model helper."""
import json
import math
import os
import subprocess
import sys
import warnings
import wave

import jsonschema
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analyze_torch_ref  # noqa: E402

ADFD = os.environ["ADFD"]
MAKE_MODEL = sys.argv[1]
SCHEMA = json.load(open(os.path.join(os.environ["ADFD_SOURCE_DIR"], "docs/analyze.schema.json")))
failures = 0


def check(cond, message):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", message)


def write_wav(path, x):
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())


def speech_like(seconds, seed, level):
    """Gliding tones under a syllable-rate envelope plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.3 * t + seed)
    tone = np.sin(2 * np.pi * (180 + 30 * seed + 25 * t) * t) + 0.4 * np.sin(2 * np.pi * 1210 * t)
    return (level * (env * tone + 0.3 * rng.uniform(-0.5, 0.5, len(t)))).astype(np.float32)


def analyze(model, files, hop_seconds, extra=()):
    cmd = [ADFD, "analyze", "--model", model, "--json", "--hop", str(hop_seconds), *extra, *files]
    run = subprocess.run(cmd, capture_output=True, text=True)
    check(run.returncode == 0, f"{cmd}: exit {run.returncode}: {run.stderr}")
    doc = json.loads(run.stdout)
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    return doc


def reference(model_path, hop_frames, files):
    model = analyze_torch_ref.Model(model_path)
    ref = {}
    for path in files:
        x = analyze_torch_ref.read_wav16(path)
        chunks, offsets, begin = model.windows(x, hop_frames)
        ref[path] = {"offsets": offsets, "scores": model.scores(chunks).tolist(),
                     "trim_begin": begin, "samples": len(x)}
    return ref


def compare(model, files, hop_frames, what):
    doc = analyze(model, files, hop_frames * 200 / 16000)
    ref = reference(model, hop_frames, files)
    threshold = doc["model"]["threshold"]
    worst = 0.0
    for entry in doc["files"]:
        r = ref[entry["file"]]
        got = entry["windows"]
        check(entry["status"] == "ok", f"{what}: {entry}")
        check([w["offset_frames"] for w in got] == r["offsets"],
              f"{what} {entry['file']}: offsets {[w['offset_frames'] for w in got]} != {r['offsets']}")
        seconds = r["samples"] / 16000
        for w, off, s in zip(got, r["offsets"], r["scores"]):
            start = (r["trim_begin"] + off * 200) / 16000
            check(abs(w["start"] - start) < 1e-6, f"{what}: start {w['start']} != {start}")
            check(abs(w["end"] - min(start + 1.0, seconds)) < 1e-6, f"{what}: end {w['end']}")
            worst = max(worst, abs(w["score"] - s))
            check(abs(w["score"] - s) <= 2e-4, f"{what} {entry['file']} @{off}: {w['score']} != {s}")
        rms = math.sqrt(sum(s * s for s in r["scores"]) / len(r["scores"]))
        check(abs(entry["clip_score"] - rms) <= 2e-4, f"{what}: clip {entry['clip_score']} != {rms}")
        check(entry["verdict"] == ("spoof" if entry["clip_score"] >= threshold else "bona-fide"),
              f"{what}: verdict")
        check(abs(entry["trim_seconds"] - r["trim_begin"] / 16000) < 1e-9, f"{what}: trim")
    print(f"{what}: {len(doc['files'])} files, max |score - torch| = {worst:.2e}")
    return doc


def main():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
    os.makedirs("test_analyze_torch", exist_ok=True)
    os.chdir("test_analyze_torch")
    subprocess.run([MAKE_MODEL, "seed.h5", "seed", "4", "21", "0.5"], check=True)
    subprocess.run([MAKE_MODEL, "default.h5", "default", "4", "22", "0.5"], check=True)

    write_wav("plain.wav", speech_like(4.27, 1, 0.3))
    silence = np.zeros(int(0.83 * 16000), np.float32)
    write_wav("padded.wav", np.concatenate([silence, speech_like(2.6, 2, 0.25), silence[:7000]]))
    write_wav("short.wav", speech_like(0.45, 3, 0.3))
    files = ["plain.wav", "padded.wav", "short.wav"]
    for hop in (40, 80, 27):
        compare("seed.h5", files, hop, f"seed_hop{hop}")
        doc = compare("default.h5", files, hop, f"default_hop{hop}")
    short = doc["files"][2]
    check(short["padded"] and short["n_windows"] == 1, f"short clip padded: {short}")
    check(not doc["files"][0]["padded"], "a 4 s clip is not padded")
    check(doc["files"][1]["trim_seconds"] > 0.8, f"leading silence trimmed: {doc['files'][1]}")

    # A clip that is "bona fide" (quiet) for 3 s and "fake" (loud) for 3 s, scored by a model whose
    # P(spoof) grows with loudness: the top windows must lie in the second half.
    subprocess.run([MAKE_MODEL, "energy.h5", "default", "1", "23", "0.5", "4", "8"], check=True)
    write_wav("half_fake.wav", np.concatenate([speech_like(3.0, 4, 0.01), speech_like(3.0, 5, 0.3)]))
    doc = compare("energy.h5", ["half_fake.wav"], 40, "energy")
    entry = doc["files"][0]
    top = analyze("energy.h5", ["half_fake.wav"], 0.5, ["--top", "4"])["files"][0]["top"]
    check(all(w["start"] >= 3.0 - 1e-9 for w in top), f"top windows in the fake half: {top}")
    real = [w["score"] for w in entry["windows"] if w["end"] <= 3.0]
    fake = [w["score"] for w in entry["windows"] if w["start"] >= 3.0]
    check(max(real) < 0.5 < min(fake), f"real half {real} below, fake half {fake} above 0.5")
    print("timeline:", " ".join(f"{w['start']:.1f}:{w['score']:.2f}" for w in entry["windows"]))

    # The validator can fail: a score above 1 and a missing field are refused.
    bad = json.loads(json.dumps(doc))
    bad["files"][0]["windows"][0]["score"] = 1.5
    for broken in (bad, {k: v for k, v in doc.items() if k != "failed"}):
        try:
            jsonschema.validate(broken, SCHEMA, cls=jsonschema.Draft202012Validator)
            check(False, "the schema accepted a broken document")
        except jsonschema.ValidationError:
            pass
    print("test_analyze_torch:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
