"""Timestamps on a synthetic file whose second half is a known fake from the demo corpus.

A small corpus is built with data/make_corpus.sh --limit (or $ADFD_TEST_CORPUS is used); the model
is models/demo.h5, or, before that exists, a small CNN trained on the corpus with adfd split /
prepare / train. Every clip is analyzed; a bona-fide clip and a spoof clip that the model tells
apart window by window (every window of the fake scores above every window of the real one) are
chosen, the real one cut to whole seconds (L) and the fake appended. Then:
 - the highest-scoring window lies in the fake half (starts at or after L) and the top 3 lie
   at least half in it;
 - (seed preset, or default preset when nothing was trimmed) every window entirely inside the
   real half has the score of the real clip's own window at the same time, and every window entirely inside the fake half has the
   score of the fake clip's window at (start - L): the timeline is placed exactly.
data/make_corpus.sh and models/demo.h5 are found through $ADFD_SOURCE_DIR."""
import csv
import json
import os
import subprocess
import sys
import wave

import numpy as np

ADFD = os.environ["ADFD"]
SRC = os.environ["ADFD_SOURCE_DIR"]
failures = 0


def check(cond, message):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", message)


def run(*cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        print(" ".join(cmd), "->", r.returncode, r.stdout[-2000:], r.stderr[-2000:])
        sys.exit(1)
    return r.stdout


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def write_wav(path, pcm):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.astype("<i2").tobytes())


def corpus_folder():
    if os.environ.get("ADFD_TEST_CORPUS"):
        return os.environ["ADFD_TEST_CORPUS"]
    env = dict(os.environ, ADFD_SKIP_DEPS="1")
    run("bash", os.path.join(SRC, "data/make_corpus.sh"), "corpus", "--limit", "10", "--jobs",
        "2", env=env)
    return "corpus"


def model_file(corpus):
    demo = os.path.join(SRC, "models/demo.h5")
    if os.path.exists(demo):
        return demo
    with open(os.path.join(corpus, "meta.csv")) as f:
        speakers = sorted({r["speaker"] for r in csv.DictReader(f)})
    run(ADFD, "split", "--data", corpus, "--holdout", speakers[0], "--out", "split.csv")
    run(ADFD, "prepare", "--data", corpus, "--split", "split.csv", "--preset", "seed", "--out",
        "features.h5", "--force")
    run(ADFD, "train", "--features", "features.h5", "--channels", "4", "--lr", "1e-3", "--batch",
        "32", "--epochs", "12", "--seed", "3", "--out", "model.h5")
    return "model.h5"


def analyze(model, *files):
    return json.loads(run(ADFD, "analyze", "--model", model, "--json", "--top", "3", *files))


def main():
    os.makedirs("test_analyze_corpus", exist_ok=True)
    os.chdir("test_analyze_corpus")
    corpus = corpus_folder()
    model = model_file(corpus)
    with open(os.path.join(corpus, "meta.csv")) as f:
        label = {os.path.join(corpus, r["file"]): r["label"] for r in csv.DictReader(f)}
    doc = analyze(model, corpus)
    preset = doc["model"]["preset"]
    long_clips = [e for e in doc["files"] if e["status"] == "ok" and e["seconds"] >= 2.0]
    real = [e for e in long_clips if label[e["file"]] == "bona-fide"]
    fake = [e for e in long_clips if label[e["file"]] == "spoof"]
    best = max(((min(w["score"] for w in f["windows"]) - max(w["score"] for w in r["windows"]), r, f)
                for r in real for f in fake), key=lambda t: t[0], default=None)
    check(best is not None and best[0] > 0,
          f"no real/fake pair that the model ({model}) separates window by window")
    if best is None or best[0] <= 0:
        return 1
    margin, r, f = best
    print(f"model {model} ({preset}); real {r['file']} (max {max(w['score'] for w in r['windows']):.3f}), "
          f"fake {f['file']} (min {min(w['score'] for w in f['windows']):.3f}), margin {margin:.3f}")

    pcm_real = read_wav(r["file"])
    seconds_real = len(pcm_real) // 16000
    write_wav("real_cut.wav", pcm_real[:seconds_real * 16000])
    write_wav("half_fake.wav", np.concatenate([pcm_real[:seconds_real * 16000], read_wav(f["file"])]))
    both = analyze(model, "real_cut.wav", f["file"], "half_fake.wav")["files"]
    alone_real, alone_fake, mixed = both
    top = mixed["top"]
    print("timeline:", " ".join(f"{w['start']:.1f}:{w['score']:.2f}" for w in mixed["windows"]))
    print(f"fake half starts at {seconds_real} s; top windows:", [(t["start"], t["score"]) for t in top])
    check(top[0]["start"] >= seconds_real - 1e-9, f"top window {top[0]} not in the fake half")
    check(all(t["start"] >= seconds_real - 0.5 - 1e-9 for t in top),
          f"top 3 not at least half in the fake half: {top}")

    # Exact placement needs the same frames in the mix as in each clip alone: true for the seed
    # preset, and for the default preset when its silence trimming cut nothing from any of the three.
    untrimmed = all(e["trim_seconds"] == 0 for e in both)
    if preset == "seed" or untrimmed:
        frame = 200 / 16000
        by_start_real = {round(w["start"], 4): w["score"] for w in alone_real["windows"]}
        by_start_fake = {round(w["start"], 4): w["score"] for w in alone_fake["windows"]}
        matched = [0, 0]
        for w in mixed["windows"]:
            # a window's last frame reaches n_fft/2 - hop samples (< one frame) past its end
            if w["start"] + 1.0 + frame <= seconds_real:
                want = by_start_real.get(round(w["start"], 4))
                matched[0] += 1
            elif w["start"] >= seconds_real + frame:
                want = by_start_fake.get(round(w["start"] - seconds_real, 4))
                matched[1] += 1
            else:
                continue
            check(want is not None and abs(w["score"] - want) <= 1e-5,
                  f"window at {w['start']} s: {w['score']} != the clip alone: {want}")
        check(matched[0] >= 2 and matched[1] >= 2, f"windows compared per half: {matched}")
        print(f"windows placed exactly: {matched[0]} real, {matched[1]} fake")
    print("test_analyze_corpus:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
