"""adfd split end to end on a synthetic data set of 12 speakers with real audio made by sox.

References: meta.csv is written and split.csv is read with Python's csv module (an independent
RFC 4180 implementation); the best achievable test share is found by brute force over every
subset of speakers; the table is recomputed from split.csv. Every bad input of issue 2 is run
through the CLI and must exit 1 with "file:line: message" and leave no output file.
"""
import csv
import glob
import itertools
import os
import shutil
import subprocess
import sys

ADFD = os.environ["ADFD"]
MPIEXEC = os.environ.get("ADFD_MPIEXEC", "")
ROOT = os.path.abspath("test_split_files")
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def run(*args, mpi=0):
    cmd = [ADFD, "split", *args]
    if mpi:
        cmd = [MPIEXEC, "-n", str(mpi), "--oversubscribe", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def sox(path, rate, channels, seconds, extra=()):
    subprocess.run(["sox", "-r", str(rate), "-n", "-c", str(channels), *extra, path,
                    "synth", str(seconds), "sine", "300", "vol", "0.3"], check=True)


# --- the data set: speaker names with commas, quotes and UTF-8; clip counts chosen so that
# several speaker subsets reach the best test share (the seed must then matter) -------------
SPEAKERS = {
    "Obama, Barack": 6, "Zoë Ñandú": 5, 'Dwayne "The Rock" Johnson': 4, "李小龍": 6,
    "Alec Guinness": 7, "Ada": 4, "Bob": 5, "Carla": 6, "Dan": 4, "Eve": 5, "Fay": 6, "Gus": 9,
}
HOLDOUT = ["Alec Guinness", "Zoë Ñandú"]
FORMATS = [  # (extension, rate, channels, sox options)
    ("wav", 16000, 1, ["-b", "16"]), ("flac", 44100, 2, []), ("ogg", 22050, 1, []),
    ("wav", 8000, 2, ["-b", "32", "-e", "float"]), ("wav", 48000, 3, ["-b", "24"]),
]


def make_data(folder):
    os.makedirs(folder)
    rows, k = [], 0
    for speaker, n in SPEAKERS.items():
        for j in range(n):
            ext, rate, channels, opts = FORMATS[k % len(FORMATS)]
            name = (f"clip {k},{j}.{ext}" if k % 7 == 0 else  # a comma: quoted in split.csv
                    f"Zoë's clip {k}.{ext}" if k % 7 == 3 else f"{k}.{ext}")  # UTF-8 file name
            sox(os.path.join(folder, name), rate, channels, 0.1 + 0.01 * (k % 5), opts)
            rows.append([name, speaker, "spoof" if j % 2 == 0 else "bona-fide"])
            k += 1
    with open(os.path.join(folder, "meta.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["file", "speaker", "label"])
        w.writerows(rows)
    return rows


def read_split(path):
    with open(path, newline="", encoding="utf-8") as f:
        r = list(csv.reader(f))
    return r[0], r[1:]


def best_share(counts, target):
    """Brute force over every subset of the non-held-out speakers."""
    total, best = sum(counts), None
    for mask in itertools.product([0, 1], repeat=len(counts)):
        share = sum(c for c, m in zip(counts, mask) if m) / total
        if best is None or abs(share - target) < abs(best - target):
            best = share
    return best


shutil.rmtree(ROOT, ignore_errors=True)
data = os.path.join(ROOT, "data")
rows = make_data(data)
os.chdir(ROOT)
common = ["--data", data, "--holdout", HOLDOUT[0], "--holdout", HOLDOUT[1]]

# --- a good run ---------------------------------------------------------------------------
for fraction in ["0.2", "0.35"]:
    rc, out, err = run(*common, "--test-fraction", fraction, "--seed", "1", "--out", "s1.csv")
    check(rc == 0, f"split --test-fraction {fraction} exits 0 (stderr: {err.strip()})")
    header, split_rows = read_split("s1.csv")
    check(header == ["file", "speaker", "label", "split"], "split.csv header")
    check([r[:3] for r in split_rows] == rows, "split.csv lists every clip of meta.csv in order")
    by_speaker = {}
    for f, s, l, sp in split_rows:
        by_speaker.setdefault(s, set()).add(sp)
    check(all(len(v) == 1 for v in by_speaker.values()), "no speaker is in two splits")
    check(all(by_speaker[h] == {"holdout"} for h in HOLDOUT), "held-out speakers are held out")
    check(sum(1 for v in by_speaker.values() if v == {"holdout"}) == 2, "only they are held out")
    n = {sp: sum(1 for r in split_rows if r[3] == sp) for sp in ["train", "test", "holdout"]}
    share = n["test"] / (n["train"] + n["test"])
    target = float(fraction)
    check(abs(share - target) <= 0.05, f"test share {share:.4f} within 0.05 of {target}")
    counts = [c for s, c in SPEAKERS.items() if s not in HOLDOUT]
    check(abs(share - best_share(counts, target)) < 1e-12,
          f"test share {share:.4f} is the best any speaker subset reaches")
    # The table, recomputed from split.csv.
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()
             if len(line.split()) == 6 and line.split()[0] in ("train", "test", "holdout", "total")}
    check(out.splitlines()[0].split() == ["split", "clips", "real", "fake", "speakers", "share"],
          "table header")
    total = len(split_rows)
    for sp in ["train", "test", "holdout"]:
        mine = [r for r in split_rows if r[3] == sp]
        want = [len(mine), sum(r[2] == "bona-fide" for r in mine), sum(r[2] == "spoof" for r in mine),
                len({r[1] for r in mine})]
        got = table.get(sp, [])
        check([int(x) for x in got[:4]] == want and abs(float(got[4]) - len(mine) / total) < 6e-5,
              f"table row {sp} {got} == {want} share {len(mine) / total:.4f}")
    check([int(x) for x in table["total"][:4]] == [total, sum(r[2] == "bona-fide" for r in rows),
                                                   sum(r[2] == "spoof" for r in rows), 12],
          "table total row")
    check(f"test share of train+test: {share:.4f}" in out, "prints the test share")

# --- determinism and the seed ---------------------------------------------------------------
def split_of(seed, out="s.csv", mpi=0):
    rc, _, err = run(*common, "--seed", str(seed), "--out", out, mpi=mpi)
    check(rc == 0, f"seed {seed} runs (stderr: {err.strip()})")
    return open(out, "rb").read()


a, b = split_of(1, "a.csv"), split_of(1, "b.csv")
check(a == b, "same seed, same split.csv (byte for byte)")
check(split_of(2) != a, "seed 2 gives another split than seed 1")
distinct = {split_of(seed) for seed in range(1, 9)}
check(len(distinct) >= 4, f"seeds 1..8 give {len(distinct)} different splits (>= 4)")
if MPIEXEC:
    check(split_of(1, "mpi.csv", mpi=2) == a, "under mpiexec -n 2 the same split.csv")
check(not glob.glob("*.tmp.*"), "no temporary files left")

# --- ASVspoof 2019 LA protocol ----------------------------------------------------------------
la = os.path.join(ROOT, "la")
os.makedirs(os.path.join(la, "flac"))
proto_lines = []
for s, spk in enumerate(["LA_0079", "LA_0080", "LA_0081", "LA_0082", "LA_0083"]):
    for j in range(3):
        name = f"LA_T_{1000000 + 10 * s + j}"
        sox(os.path.join(la, "flac", name + ".flac"), 16000, 1, 0.1)
        system = "-" if j == 0 else f"A0{j}"
        proto_lines.append(f"{spk} {name} - {system} {'bonafide' if j == 0 else 'spoof'}")
with open("proto.txt", "w") as f:
    f.write("\n".join(proto_lines) + "\n")
rc, out, err = run("--protocol", "proto.txt", "--audio", la, "--holdout", "LA_0079",
                   "--test-fraction", "0.25", "--out", "la.csv")
check(rc == 0, f"protocol split exits 0 ({err.strip()})")
_, la_rows = read_split("la.csv")
check(len(la_rows) == 15 and la_rows[0] == ["LA_T_1000000", "LA_0079", "bona-fide", "holdout"]
      and la_rows[1][2] == "spoof", f"protocol rows {la_rows[:2]}")
check(sum(r[3] == "test" for r in la_rows) == 3, "protocol: 1 of 4 speakers (3 of 12) in test")

# --- bad input: exit 1, "file:line: message", no output -------------------------------------
bad = os.path.join(ROOT, "bad")
os.makedirs(bad)
sox(os.path.join(bad, "a.wav"), 16000, 1, 0.1)
sox(os.path.join(bad, "b.wav"), 16000, 1, 0.1)
meta = os.path.join(bad, "meta.csv")
H = "file,speaker,label\r\n"
cases = [
    ("unknown label", H + "a.wav,A,spoof\r\nb.wav,B,fake\r\n", [],
     f"{meta}:3: unknown label 'fake' (expected 'spoof' or 'bona-fide')"),
    ("missing column", "file,label\r\na.wav,spoof\r\n", [], f"{meta}:1: missing column 'speaker'"),
    ("wrong field count", H + "a.wav,A,spoof\r\nb.wav,Obama, Barack,spoof\r\n", [],
     f"{meta}:3: expected 3 fields (as in the header), found 4"),
    ("missing file", H + "a.wav,A,spoof\r\nc.wav,B,spoof\r\n", [],
     f"{meta}:3: audio file 'c.wav' not found"),
    ("duplicate file", H + "a.wav,A,spoof\r\nb.wav,B,spoof\r\na.wav,B,spoof\r\n", [],
     f"{meta}:4: duplicate file 'a.wav' (first listed on line 2)"),
    ("unknown held-out speaker", H + "a.wav,A,spoof\r\nb.wav,B,spoof\r\n", ["Nobody"],
     f"{meta}: held-out speaker 'Nobody' is not in the data"),
    ("empty meta", "", [], f"{meta}:1: empty file"),
    ("unterminated quote", H + 'a.wav,"A,spoof\r\nb.wav,B,spoof\r\n', [],
     f"{meta}:4: unterminated quote (the quoted field opened on line 2 never closes)"),
    ("every speaker held out", H + "a.wav,A,spoof\r\n", ["A"], f"{meta}: every speaker is held out"),
]
for name, text, holdout, want in cases:
    with open(meta, "w", newline="") as f:
        f.write(text)
    with open("kept.csv", "w") as f:
        f.write("old\n")
    args = ["--data", bad, "--holdout", *(holdout or ["A"])]
    for h in holdout[1:]:
        args += ["--holdout", h]
    rc, out, err = run(*args, "--out", "fresh.csv")
    check(rc == 1, f"{name}: exit {rc} == 1")
    check(want in err, f"{name}: message '{err.strip()}' contains '{want}'")
    check(not os.path.exists("fresh.csv"), f"{name}: no output written")
    rc, _, _ = run(*args, "--out", "kept.csv")
    check(open("kept.csv").read() == "old\n", f"{name}: an existing output is left untouched")
    check(not glob.glob("*.tmp.*"), f"{name}: no temporary file left")

with open("bad_proto.txt", "w") as f:
    f.write("LA_0079 LA_T_1000000 - - bonafide\nLA_0079 LA_T_1000001 - A01\n")
rc, _, err = run("--protocol", "bad_proto.txt", "--audio", la, "--holdout", "LA_0079",
                 "--out", "fresh.csv")
check(rc == 1 and "bad_proto.txt:2: expected 5 fields" in err, f"bad protocol line: {err.strip()}")

# --- usage --------------------------------------------------------------------------------
rc, out, err = run("--help")
check(rc == 0 and out.startswith("Usage: adfd split") and err == "", "--help: stdout, exit 0")
usage = [
    (["--bogus"], "unknown option '--bogus'"),
    (["--data", data, "--holdout", "Ada"], "missing --out"),
    (["--data", data, "--out", "x.csv"], "--holdout"),
    (["--data", data, "--protocol", "p", "--holdout", "Ada", "--out", "x.csv"], "either --data"),
    (["--protocol", "p", "--holdout", "Ada", "--out", "x.csv"], "--protocol needs --audio"),
    (common + ["--test-fraction", "1.5", "--out", "x.csv"], "--test-fraction must be"),
    (common + ["--test-fraction", "abc", "--out", "x.csv"], "--test-fraction must be"),
    (common + ["--seed", "1.5", "--out", "x.csv"], "--seed must be an integer"),
    (common + ["--out", "x.csv", "extra"], "unexpected argument 'extra'"),
    (common + ["--out"], "needs a value"),
]
for args, want in usage:
    rc, out, err = run(*args)
    check(rc == 2 and want in err and "Try 'adfd split --help'" in err,
          f"usage {args[-2:]}: exit {rc} == 2, '{want}' in '{err.strip().splitlines()[0] if err.strip() else ''}'")
check(not os.path.exists("x.csv"), "usage errors write nothing")

print("test_split:", "FAILED" if failures else "passed", f"({len(failures)} failures)")
sys.exit(1 if failures else 0)
