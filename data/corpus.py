#!/usr/bin/python3
"""Builds the demo corpus in the In-the-Wild layout (OUT/meta.csv file,speaker,label and
OUT/<n>.wav, 16 kHz mono 16-bit). Called by make_corpus.sh, which installs the packages first.

Work is cut into tasks (one speaker, at most CHUNK real clips); every random choice is drawn from a
generator keyed by (SEED, speaker or clip, purpose), so the output does not depend on --jobs or on
the order in which tasks finish."""
import argparse
import csv
import hashlib
import math
import multiprocessing
import os
import re
import shutil
import sys
import time
import wave

import numpy as np

import corpus_audio as A
import corpus_fakes as F
import corpus_sources as S

SEED = 2026
SPOOF_PER_REAL = 2.0 / 3.0  # 40 % of the clips are fakes, as in In-the-Wild
CHUNK = 200
TTS_SHARE, CODEC2_SHARE = 0.4, 0.25  # of a task's fakes; SPTK makes the rest
NARROWBAND_SHARE = 0.3  # 16 kHz speakers: share of both classes band-limited to 4 kHz
P_REVERB, P_NOISE, P_CODEC = 0.3, 0.5, 0.5
REVERBS = [("30", "50", "40"), ("50", "50", "70"), ("70", "30", "100"), ("90", "60", "100")]
CODECS = [("mp3", "24"), ("mp3", "48"), ("opus", "12k"), ("opus", "24k"), ("gsm", "")]


def native_rate(speaker):
    """The rate the speaker's channel works at: fakes are made and coded at it."""
    channel = speaker["channel"]
    if channel in ("gsm", "pcm8k"):
        return 8000
    if channel == "pcm":
        with wave.open(speaker["items"][0]["path"], "rb") as w:
            return 8000 if w.getframerate() <= 8000 else A.SR
    return A.SR


def make_tasks(speakers, limit):
    tasks = []
    for sp in speakers:
        order = A.clip_rng(SEED, sp["name"], "order").permutation(len(sp["items"]))
        items = [sp["items"][i] for i in order]
        if limit:
            items = items[: max(1, round(limit / (1 + SPOOF_PER_REAL)))]
        n_chunks = math.ceil(len(items) / CHUNK)
        rate = native_rate(sp)
        for c in range(n_chunks):
            tasks.append({"speaker": sp["name"], "channel": sp["channel"], "rate": rate,
                          "chunk": c, "items": items[c::n_chunks]})
    return tasks


def make_fakes(task, reals, workdir):
    """Returns [(key, family, clip)] at the task's rate, before the speaker's channel."""
    items, rate, speaker = task["items"], task["rate"], task["speaker"]
    n_fake = max(1, round(len(items) * SPOOF_PER_REAL))
    rng = A.clip_rng(SEED, speaker, task["chunk"], "fakes")
    with_text = [int(i) for i in rng.permutation(len(items)) if items[i]["text"]]
    n_tts = min(len(with_text), round(TTS_SHARE * n_fake))
    # Both vocoders as soon as there are two vocoded fakes (--limit builds are tiny).
    n_codec2 = max(round(CODEC2_SHARE * n_fake), 1 if n_fake - n_tts >= 2 else 0)
    vocoded = [int(i) for i in rng.permutation(len(items))][: n_fake - n_tts]
    fakes = []

    by_rate = {}
    for i in with_text[:n_tts]:
        item = items[i]
        target = len(A.trim_silence(reals[i], rate)) / rate
        x, tts_rate, voice = F.tts(item["text"], S.ESPEAK_LANG[item["lang"]], item["lang"] == "en",
                                   target, A.clip_rng(SEED, item["key"], "tts"),
                                   os.path.join(workdir, "tts.wav"))
        by_rate.setdefault(tts_rate, []).append((item["key"] + "#tts", voice, x))
    for tts_rate in sorted(by_rate):
        group = by_rate[tts_rate]
        resampled = A.resample_batch([g[2] for g in group], tts_rate, rate)
        for (key, voice, _), y in zip(group, resampled):
            fakes.append((key, voice, y))

    by_mode = {}
    for i in vocoded[:n_codec2]:
        mode = F.CODEC2_MODES[int(A.clip_rng(SEED, items[i]["key"], "codec2").integers(4))]
        by_mode.setdefault(mode, []).append(i)
    for mode in sorted(by_mode):
        ids = by_mode[mode]
        for i, y in zip(ids, F.codec2_vocode([reals[i] for i in ids], rate, mode)):
            fakes.append((items[i]["key"] + "#codec2", "codec2:" + mode, y))

    ids = vocoded[n_codec2:]
    for i, y in zip(ids, F.sptk_vocode([reals[i] for i in ids], rate, workdir)):
        fakes.append((items[i]["key"] + "#sptk", "sptk:mlsa", y))
    return fakes


def through_channel(clips, channel, rate):
    """What the speaker's real clips went through before they reached us."""
    if channel == "g722":
        return A.ffmpeg_codec_batch(clips, rate, ["-c:a", "g722"], "g722")
    if channel == "gsm":
        return A.sox_codec_batch(clips, rate, ["-t", "gsm"])
    if channel == "vorbis":
        return A.ffmpeg_codec_batch(clips, rate, ["-c:a", "libvorbis", "-q:a", "4"], "ogg")
    if channel == "opus":
        return A.ffmpeg_codec_batch(clips, rate, ["-c:a", "libopus", "-b:a", "32k"], "ogg")
    return clips  # pcm, pcm8k: stored losslessly


def narrowband_probabilities(codec2_share):
    """Codec2 fakes are all band-limited to 4 kHz. So that bandwidth says nothing about the class,
    real clips are band-limited with probability p_real and the other fakes with p_fake, chosen so
    that both classes end up with the same narrow-band share (at least NARROWBAND_SHARE)."""
    share = max(NARROWBAND_SHARE, codec2_share)
    p_fake = (share - codec2_share) / (1 - codec2_share) if codec2_share < 1 else 0.0
    return share, p_fake


def choose_conditions(clip, narrowband_p):
    """Seeded real-world conditions of one clip; the same draws for either class."""
    rng = A.clip_rng(SEED, clip["key"], "conditions")
    draws = rng.random(4)
    clip["narrowband"] = bool(draws[0] < narrowband_p)
    clip["reverb"] = int(rng.integers(len(REVERBS))) if draws[1] < P_REVERB else None
    clip["snr"] = float(rng.uniform(5, 30)) if draws[2] < P_NOISE else None
    clip["codec"] = int(rng.integers(len(CODECS))) if draws[3] < P_CODEC else None
    clip["dbfs"] = float(rng.uniform(-30, -18))
    clip["rng"] = rng


def apply_in_groups(clips, field, process):
    """Runs PROCESS(list of audio, value) once per distinct value of clip[field]."""
    values = sorted({c[field] for c in clips if c[field] not in (None, False)})
    for value in values:
        group = [c for c in clips if c[field] == value]
        for c, y in zip(group, process([c["x"] for c in group], value)):
            c["x"] = y


def narrowband(xs, _):
    cmd = ["sox", "-D"] + A.sox_raw(A.SR) + ["-"] + A.sox_raw(A.SR) + ["-", "rate", "-h", "8000",
                                                                        "rate", "-h", str(A.SR)]
    return A.batch_through(xs, A.pipeline(cmd), A.SR, align=False)


def reverb(xs, preset):
    tail = int(0.2 * A.SR)  # the room keeps ringing a little after the last word
    cmd = ["sox", "-D"] + A.sox_raw(A.SR) + ["-"] + A.sox_raw(A.SR) + ["-", "reverb"]
    cmd += list(REVERBS[preset])
    return A.batch_through([np.pad(x, (0, tail)) for x in xs], A.pipeline(cmd), A.SR, align=False)


def lossy(xs, index):
    name, rate = CODECS[index]
    if name == "mp3":
        return A.sox_codec_batch(xs, A.SR, ["-t", "mp3", "-C", rate])
    if name == "opus":
        return A.ffmpeg_codec_batch(xs, A.SR, ["-c:a", "libopus", "-b:a", rate,
                                               "-compression_level", "5"], "ogg")
    narrow = A.resample_batch(xs, A.SR, 8000)
    return A.resample_batch(A.sox_codec_batch(narrow, 8000, ["-t", "gsm"]), 8000, A.SR)


def run_task(args):
    task, work_root = args
    name = "%s-%d" % (task["speaker"], task["chunk"])
    workdir = os.path.join(work_root, name)
    os.makedirs(workdir)
    rate, items = task["rate"], task["items"]
    fmt = {"g722": "g722", "gsm": "gsm"}.get(task["channel"])
    reals = A.decode_files([it["path"] for it in items], rate, workdir, fmt)
    fakes = make_fakes(task, reals, workdir)
    coded = through_channel([f[2] for f in fakes], task["channel"], rate)
    audio = A.resample_batch(reals + coded, rate, A.SR)

    clips = [{"key": it["key"], "label": "bona-fide", "family": "real"} for it in items]
    clips += [{"key": key, "label": "spoof", "family": family} for key, family, _ in fakes]
    codec2_share = sum(1 for c in clips if c["family"].startswith("codec2")) / len(fakes)
    p_real, p_fake = narrowband_probabilities(codec2_share) if rate == A.SR else (0.0, 0.0)
    for c, x in zip(clips, audio):
        c["x"] = A.trim_silence(x, A.SR)
        is_codec2 = c["family"].startswith("codec2")
        p_fake_clip = 0.0 if is_codec2 else p_fake
        choose_conditions(c, p_real if c["label"] == "bona-fide" else p_fake_clip)
    apply_in_groups(clips, "narrowband", narrowband)
    apply_in_groups(clips, "reverb", reverb)
    for c in clips:
        if c["snr"] is not None:
            c["x"] = A.add_noise(c["x"], c["rng"], c["snr"])
    apply_in_groups(clips, "codec", lossy)

    rows = []
    for j, c in enumerate(clips):
        path = os.path.join(work_root, "%s-%04d.wav" % (name, j))
        A.write_wav(path, A.normalise(c["x"], c["dbfs"]))
        narrow = c["narrowband"] or c["family"].startswith("codec2") or rate != A.SR
        conditions = ";".join(filter(None, [
            "narrowband" if narrow else "",
            "reverb%d" % c["reverb"] if c["reverb"] is not None else "",
            "snr%.0f" % c["snr"] if c["snr"] is not None else "",
            "%s%s" % CODECS[c["codec"]] if c["codec"] is not None else ""]))
        rows.append({"tmp": path, "speaker": task["speaker"], "label": c["label"],
                     "key": c["key"], "family": c["family"], "channel": task["channel"],
                     "conditions": conditions or "clean", "seconds": len(c["x"]) / A.SR})
    shutil.rmtree(workdir)
    return rows


def write_outputs(rows, partial):
    """Numbers the clips in a seeded order that mixes speakers and classes, as In-the-Wild does."""
    rows.sort(key=lambda r: hashlib.sha256(("%d/%s" % (SEED, r["key"])).encode()).hexdigest())
    with open(os.path.join(partial, "meta.csv"), "w", newline="") as meta, \
            open(os.path.join(partial, "provenance.csv"), "w", newline="") as prov:
        m = csv.writer(meta, lineterminator="\n")
        p = csv.writer(prov, lineterminator="\n")
        m.writerow(["file", "speaker", "label"])
        p.writerow(["file", "speaker", "label", "source", "generator", "channel", "conditions",
                    "seconds"])
        for n, r in enumerate(rows):
            fname = "%d.wav" % n
            os.rename(r["tmp"], os.path.join(partial, fname))
            m.writerow([fname, r["speaker"], r["label"]])
            p.writerow([fname, r["speaker"], r["label"], r["key"].split("#")[0], r["family"],
                        r["channel"], r["conditions"], "%.3f" % r["seconds"]])


def print_table(rows, seconds):
    stats = {}
    for r in rows:
        s = stats.setdefault(r["speaker"], [0, 0, 0.0, 0.0])
        s[0 if r["label"] == "bona-fide" else 1] += 1
        s[2 if r["label"] == "bona-fide" else 3] += r["seconds"] / 3600
    print("%-22s %6s %6s %8s %8s" % ("speaker", "real", "fake", "real_h", "fake_h"))
    for name in sorted(stats):
        s = stats[name]
        print("%-22s %6d %6d %8.3f %8.3f" % (name, s[0], s[1], s[2], s[3]))
    tot = [sum(s[i] for s in stats.values()) for i in range(4)]
    print("%-22s %6d %6d %8.3f %8.3f" % ("total", tot[0], tot[1], tot[2], tot[3]))
    print("clips %d, speakers %d, spoof %.1f %%, built in %.0f s"
          % (len(rows), len(stats), 100.0 * tot[1] / len(rows), seconds))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--cache", required=True, help="folder with core-sounds-{es,fr}.txt.gz")
    ap.add_argument("--limit", type=int, default=0, help="about N clips per speaker")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--speakers", default="", help="only speakers whose name matches this regex")
    args = ap.parse_args()
    start = time.time()
    out = os.path.abspath(args.out.rstrip("/"))
    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(os.path.join(out, "meta.csv")):
        sys.exit("%s: exists and is not a corpus (no meta.csv); refusing to replace it" % out)
    F.check_tools()
    speakers = [s for s in S.all_speakers(args.cache) if re.search(args.speakers, s["name"])]
    if not speakers:
        sys.exit("--speakers %s: matches no speaker" % args.speakers)
    tasks = make_tasks(speakers, args.limit)
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    work_root = os.path.join(partial, ".work")
    os.makedirs(work_root)
    # Largest tasks first so that two workers finish together; results are sorted afterwards.
    todo = sorted(((t, work_root) for t in tasks), key=lambda a: -len(a[0]["items"]))
    with multiprocessing.Pool(max(1, args.jobs)) as pool:
        rows = [r for rs in pool.imap_unordered(run_task, todo) for r in rs]
    write_outputs(rows, partial)
    os.rmdir(work_root)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(partial, out)
    print_table(rows, time.time() - start)


if __name__ == "__main__":
    main()
