"""End-to-end tests of `adfd grid` and `adfd eval` on a tiny synthetic feature file
(grid_make_features.py). Usage: test_grid.py SCENARIO, one of
  cli     --help, usage errors (exit 2) and configuration errors (exit 1) before any work
  groups  2 ranks: --groups 1 and --groups 2 give the same grid.tsv, choice and held-out table;
          the held-out outputs agree with PyTorch (chunk scores from best.h5), scikit-learn and
          the ASVspoof EER (metrics), and `adfd eval` alone reproduces them
  flip    flipping the held-out labels changes neither the chosen configuration nor best.h5
          (weights, threshold) but does flip the held-out AUC
  resume  a run killed after its 4th epoch and resumed ends with the same grid.tsv (except
          timings) and best.h5 as an uninterrupted run; so does a job array of 2 tasks followed
          by --resume"""
import csv, json, os, shutil, subprocess, sys
import h5py
import numpy as np

ADFD, MPIEXEC = os.environ["ADFD"], os.environ["ADFD_MPIEXEC"]
SRC = os.environ["ADFD_SOURCE_DIR"]
scenario = sys.argv[1]
work = f"grid_{scenario}"
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
os.chdir(work)
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(args, np_=None, env=None, expect=0):
    cmd = ([MPIEXEC, "-n", str(np_), "--oversubscribe"] if np_ else []) + [ADFD] + args
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if expect is not None and p.returncode != expect:
        fail(f"{' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stdout}\n{p.stderr}")
    return p


TINY = """# 4 configurations x 3 epochs
[grid]
channels   = 1, 2
lr         = 1e-2, 1e-3
batch      = 16
max_epochs = 3
patience   = 0
"""
open("tiny.ini", "w").write(TINY)
subprocess.check_call([sys.executable, f"{SRC}/tests/grid_make_features.py", "f.h5"])


def grid(out, groups, np_=2, features="f.h5", extra=(), env=None, expect=0):
    return run(["grid", "--features", features, "--config", "tiny.ini", "--out", out,
                "--groups", str(groups), "--bootstrap", "200", *extra], np_, env, expect)


def read_tsv(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


NUMERIC = ["train_loss", "test_loss", "test_auc"]


def compare_tables(a, b, rtol, what):
    ta, tb = read_tsv(a), read_tsv(b)
    if len(ta) != len(tb) or len(ta) != 12:
        return fail(f"{what}: {len(ta)} vs {len(tb)} rows (want 12)")
    for ra, rb in zip(ta, tb):
        for k in ra:
            if k == "seconds":
                continue
            if k in NUMERIC:
                if not np.isclose(float(ra[k]), float(rb[k]), rtol=rtol, atol=rtol):
                    fail(f"{what}: {ra['config']} epoch {ra['epoch']} {k} {ra[k]} vs {rb[k]}")
            elif ra[k] != rb[k]:
                fail(f"{what}: {ra['config']} epoch {ra['epoch']} {k} {ra[k]} vs {rb[k]}")


def best_config(run_dir):
    return open(f"{run_dir}/summary.txt").read().split("Best configuration: ")[1].split()[0]


def model_contents(path):
    with h5py.File(path, "r") as f:
        tensors = {k: f[k][()] for k in f.keys()}
        attrs = {k: f.attrs[k] for k in f.attrs.keys()}
    return tensors, attrs


def compare_models(a, b, what, exact=True, rtol=1e-4):
    ta, aa = model_contents(a)
    tb, ab = model_contents(b)
    if ta.keys() != tb.keys():
        return fail(f"{what}: tensors {sorted(ta)} vs {sorted(tb)}")
    for k in ta:
        same = np.array_equal(ta[k], tb[k]) if exact else np.allclose(ta[k], tb[k], rtol=rtol, atol=rtol)
        if not same:
            fail(f"{what}: tensor {k} differs (max |d| {np.max(np.abs(ta[k] - tb[k]))})")
    for k in aa:
        va, vb = aa[k], ab.get(k)
        same = np.array_equal(va, vb) if exact or k != "threshold" else np.isclose(va, vb, rtol=rtol)
        if not same:
            fail(f"{what}: attribute {k}: {va} vs {vb}")


def compute_eer(target, nontarget):  # the ASVspoof 2019/2021 reference, spoof = target
    scores = np.concatenate((target, nontarget))
    labels = np.concatenate((np.ones(target.size), np.zeros(nontarget.size)))[np.argsort(scores, kind="mergesort")]
    tar = np.cumsum(labels)
    non = nontarget.size - (np.arange(1, scores.size + 1) - tar)
    frr = np.concatenate(([0], tar / target.size))
    far = np.concatenate(([1], non / nontarget.size))
    i = np.argmin(np.abs(frr - far))
    return np.mean((frr[i], far[i]))


def check_eval_outputs(run_dir, out_dir, features, split):
    """The outputs of one split against PyTorch (scores) and scikit-learn/ASVspoof (metrics)."""
    import torch
    from sklearn.metrics import confusion_matrix, roc_auc_score
    tensors, attrs = model_contents(f"{run_dir}/best.h5")
    C = int(attrs["channels"])
    net = torch.nn.Sequential()
    net.add_module("layer1", torch.nn.Sequential(torch.nn.Conv2d(1, C, 3), torch.nn.BatchNorm2d(C),
                                                 torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Dropout(0.5)))
    net.add_module("flatten", torch.nn.Flatten())
    net.add_module("layer2", torch.nn.Linear(C * 63 * 39, 2))
    state = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k.startswith("layer")}
    net.load_state_dict(state)
    net.eval()
    with h5py.File(features, "r") as f:
        x = f["features"][()]
        row_clip, offset = f["clip"][()], f["offset"][()]
        files = [s.decode() for s in f["clips/file"][()]]
        split_of = f["clips/split"][()]
        label_of = f["clips/label"][()]
    rows = np.nonzero(split_of[row_clip] == {"test": 1, "holdout": 2}[split])[0]
    xn = (x[rows] - tensors["band_mean"][None, :, None]) / tensors["band_std"][None, :, None]
    with torch.no_grad():
        p = torch.softmax(net(torch.from_numpy(xn[:, None].astype(np.float32))), 1)[:, 1].numpy()
    chunks = list(csv.DictReader(open(f"{out_dir}/chunks.csv")))
    got = np.array([float(r["score"]) for r in chunks])
    if [r["file"] for r in chunks] != [files[row_clip[r]] for r in rows] or \
       [int(r["offset"]) for r in chunks] != list(offset[rows]):
        return fail(f"{out_dir}/chunks.csv: rows differ from the feature file's {split} rows")
    if not np.allclose(got, p, rtol=1e-4, atol=1e-6):
        fail(f"{out_dir}: chunk scores vs PyTorch, max |d| {np.max(np.abs(got - p))}")
    clips = list(csv.DictReader(open(f"{out_dir}/scores.csv")))
    clip_y = np.array([r["label"] == "spoof" for r in clips], int)
    clip_s = np.array([float(r["score"]) for r in clips])
    for r, s in zip(clips, clip_s):  # clip score = RMS of its chunk scores
        mine = [float(c["score"]) for c in chunks if c["file"] == r["file"]]
        if len(mine) != int(r["chunks"]) or not np.isclose(s, np.sqrt(np.mean(np.square(mine))), rtol=1e-6):
            fail(f"{out_dir}: clip {r['file']} score {s} is not the RMS of {mine}")
        if label_of[files.index(r["file"])] != (r["label"] == "spoof"):
            fail(f"{out_dir}: label of {r['file']}")
    m = json.load(open(f"{out_dir}/metrics.json"))
    t = float(attrs["threshold"])
    if not np.isclose(m["threshold"], t, rtol=1e-6):
        fail(f"{out_dir}: threshold {m['threshold']} vs best.h5 {t}")
    chunk_y = np.array([r["label"] == "spoof" for r in chunks], int)
    for level, y, s in (("clip", clip_y, clip_s), ("chunk", chunk_y, got)):
        d = m[level]
        tn, fp, fn, tp = confusion_matrix(y, (s >= t).astype(int), labels=[0, 1]).ravel()
        want = dict(auc=roc_auc_score(y, s), eer=compute_eer(s[y == 1], s[y == 0]),
                    accuracy=(tp + tn) / len(y), sensitivity=tp / (tp + fn), specificity=tn / (tn + fp))
        for k, v in want.items():
            if not np.isclose(d[k], v, atol=1e-6):
                fail(f"{out_dir} {level} {k}: {d[k]} vs reference {v}")
        if d["confusion"] != dict(tp=int(tp), fn=int(fn), fp=int(fp), tn=int(tn)):
            fail(f"{out_dir} {level} confusion {d['confusion']} vs {tp, fn, fp, tn}")
        if not d["auc_ci95"][0] <= d["auc"] <= d["auc_ci95"][1]:
            fail(f"{out_dir} {level}: AUC outside its interval")
    return m


if scenario == "cli":
    p = run(["grid", "--help"])
    if "Usage: mpiexec" not in p.stdout or "--groups" not in p.stdout:
        fail("grid --help")
    p = run(["eval", "--help"])
    if "--split" not in p.stdout:
        fail("eval --help")
    base = ["--features", "f.h5", "--config", "tiny.ini", "--out", "never"]
    for args, needle in [([], "required"), (base + ["--groups", "0"], "--groups"),
                         (base + ["--threshold", "median"], "eer or youden"),
                         (base + ["--task-id", "1"], "go together"),
                         (base + ["--task-id", "2", "--num-tasks", "2"], "not below"),
                         (base + ["--bogus"], "unknown"), (base + ["extra"], "unexpected")]:
        p = run(["grid"] + args, expect=2)
        if needle not in p.stderr:
            fail(f"grid {args}: message {p.stderr!r} lacks {needle!r}")
    p = run(["grid"] + base + ["--groups", "3"], np_=2, expect=2)
    if "world size 2 is not divisible by --groups 3" not in p.stderr:
        fail("world size not divisible: " + p.stderr)
    for args, needle in [([], "required"), (["--features", "f", "--model", "m", "--split", "dev", "--out", "o"], "--split"),
                         (["--features", "f", "--model", "m", "--split", "test", "--out", "o", "--aggregate", "median"], "--aggregate")]:
        p = run(["eval"] + args, expect=2)
        if needle not in p.stderr:
            fail(f"eval {args}: {p.stderr!r}")
    p = run(["eval", "--features", "missing.h5", "--model", "m.h5", "--split", "test", "--out", "o"], expect=1)
    if "missing.h5" not in p.stderr:
        fail("eval with a missing feature file: " + p.stderr)
    bad = {"unknown key": ("[grid]\nchannels = 1\nlr = 1e-3\nbatch = 8\nwidth = 4\n", "bad.ini:5: unknown key 'width'"),
           "empty list": ("[grid]\nchannels =\nlr = 1e-3\nbatch = 8\n", "bad.ini:2: channels: empty value list"),
           "negative lr": ("[grid]\nchannels = 1\nlr = 1e-3, -1e-4\nbatch = 8\n", "bad.ini:3: lr: the learning rate must be > 0"),
           "dropout": ("[grid]\nchannels = 1\nlr = 1e-3\nbatch = 8\ndropout = 1.5\n", "bad.ini:5: dropout")}
    for name, (text, needle) in bad.items():
        open("bad.ini", "w").write(text)
        p = run(["grid", "--features", "f.h5", "--config", "bad.ini", "--out", "bad_run"], np_=2, expect=1)
        if needle not in p.stderr:
            fail(f"config error {name}: {p.stderr!r} lacks {needle!r}")
        if os.path.exists("bad_run"):
            fail(f"config error {name}: the run folder was created (work started)")
    p = run(["grid", "--features", "missing.h5", "--config", "tiny.ini", "--out", "r"], np_=2, expect=1)
    if "missing.h5" not in p.stderr:
        fail("missing features: " + p.stderr)

elif scenario == "groups":
    p2 = grid("g2", 2)
    p1 = grid("g1", 1, extra=["--no-plots"])
    compare_tables("g2/grid.tsv", "g1/grid.tsv", 1e-4, "--groups 2 vs --groups 1")
    if best_config("g2") != best_config("g1"):
        fail(f"best configuration {best_config('g2')} vs {best_config('g1')}")
    compare_models("g2/best.h5", "g1/best.h5", "best.h5 groups 2 vs 1", exact=False)
    m2 = check_eval_outputs("g2", "g2/holdout", "f.h5", "holdout")
    m1 = check_eval_outputs("g1", "g1/holdout", "f.h5", "holdout")
    check_eval_outputs("g2", "g2/test", "f.h5", "test")
    for level in ("clip", "chunk"):
        for k in ("auc", "eer", "accuracy", "sensitivity", "specificity"):
            if not np.isclose(m2[level][k], m1[level][k], atol=1e-4):
                fail(f"held-out {level} {k}: {m2[level][k]} vs {m1[level][k]}")
    if "Held-out evaluation" not in p2.stdout or "ROC AUC" not in p2.stdout:
        fail("grid did not print the held-out table:\n" + p2.stdout)
    for png in ("roc", "confusion", "scores", "learning_curves"):
        if open(f"g2/report/{png}.png", "rb").read(4) != b"\x89PNG":
            fail(f"g2/report/{png}.png")
    # The threshold is the EER point of the test split's clip scores (rule score >= t).
    test_clips = list(csv.DictReader(open("g2/test/scores.csv")))
    s = np.array([float(r["score"]) for r in test_clips], np.float32)
    y = np.array([r["label"] == "spoof" for r in test_clips])
    t = model_contents("g2/best.h5")[1]["threshold"]
    frr, far = np.mean(s[y] < t), np.mean(s[~y] >= t)
    if not np.isclose((frr + far) / 2, compute_eer(s[y], s[~y]), atol=1e-9):
        fail(f"threshold {t} does not reproduce the test split's EER point")
    # adfd eval alone reproduces the grid's held-out metrics.
    run(["eval", "--features", "f.h5", "--model", "g2/best.h5", "--split", "holdout", "--out", "ev",
         "--bootstrap", "200"])
    me = json.load(open("ev/metrics.json"))
    for level in ("clip", "chunk"):
        if me[level] != m2[level]:
            fail(f"adfd eval {level}: {me[level]} vs grid {m2[level]}")
    # --threshold youden (redone on a copy of the finished run): the test clips' Youden J point.
    from sklearn.metrics import roc_curve
    shutil.copytree("g2", "g2y")
    grid("g2y", 2, extra=["--resume", "--no-plots", "--threshold", "youden"])
    fpr, tpr, th = roc_curve(y, s, drop_intermediate=False)
    ty, method = (model_contents("g2y/best.h5")[1][k] for k in ("threshold", "threshold_method"))
    if not np.isclose(ty, th[np.argmax(tpr - fpr)], rtol=1e-6) or b"youden" not in bytes(method):
        fail(f"youden threshold {ty} ({method}) vs scikit-learn {th[np.argmax(tpr - fpr)]}")
    # An existing run is refused without --resume; --resume on a finished run changes nothing.
    p = grid("g2", 2, expect=1)
    if "--resume" not in p.stderr:
        fail("rerun without --resume: " + p.stderr)
    before = read_tsv("g2/grid.tsv")
    grid("g2", 2, extra=["--resume", "--no-plots"])
    if read_tsv("g2/grid.tsv") != before:
        fail("--resume on a finished run changed grid.tsv")
    open("other.ini", "w").write(TINY.replace("1e-3", "1e-4"))
    p = run(["grid", "--features", "f.h5", "--config", "other.ini", "--out", "g2", "--resume"], 1, expect=1)
    if "differs" not in p.stderr:
        fail("--resume with another configuration: " + p.stderr)

elif scenario == "flip":
    subprocess.check_call([sys.executable, f"{SRC}/tests/grid_make_features.py", "flipped.h5", "--flip-holdout"])
    grid("a", 2, extra=["--no-plots"])
    grid("b", 2, features="flipped.h5", extra=["--no-plots"])
    if best_config("a") != best_config("b"):
        fail(f"chosen configuration {best_config('a')} vs {best_config('b')} with flipped held-out labels")
    compare_models("a/best.h5", "b/best.h5", "best.h5 with flipped held-out labels", exact=True)
    ma, mb = json.load(open("a/holdout/metrics.json")), json.load(open("b/holdout/metrics.json"))
    if not np.isclose(ma["clip"]["auc"], 1 - mb["clip"]["auc"], atol=1e-9):
        fail(f"held-out AUC {ma['clip']['auc']} and flipped {mb['clip']['auc']} should sum to 1")
    check_eval_outputs("b", "b/holdout", "flipped.h5", "holdout")

elif scenario == "resume":
    grid("full", 2, extra=["--no-plots"])
    p = grid("killed", 2, env={"ADFD_TEST_KILL_AFTER_EPOCHS": "4"}, extra=["--no-plots"], expect=None)
    if p.returncode == 0:
        fail("the killed run exited 0")
    done = len(os.listdir("killed/models"))
    if not 1 <= done < 4 or os.path.exists("killed/best.h5"):
        fail(f"killed run: {done} models, best.h5 {os.path.exists('killed/best.h5')}")
    grid("killed", 2, extra=["--resume", "--no-plots"])
    compare_tables("full/grid.tsv", "killed/grid.tsv", 0, "uninterrupted vs killed + resumed")
    compare_models("full/best.h5", "killed/best.h5", "best.h5 uninterrupted vs resumed", exact=True)
    a, b = json.load(open("full/holdout/metrics.json")), json.load(open("killed/holdout/metrics.json"))
    if a["clip"] != b["clip"]:
        fail("held-out metrics differ after resume")
    # Slurm job array: two tasks of one rank each, then the choice with --resume.
    for task in ("0", "1"):
        p = grid("tasks", 1, np_=1, extra=["--task-id", task, "--num-tasks", "2", "--no-plots"])
        if os.path.exists("tasks/best.h5"):
            fail(f"task {task} chose a model before every task was done")
    if sorted(os.listdir("tasks/epochs")) != ["task000-group000.tsv", "task001-group000.tsv"]:
        fail("task epoch files: " + str(os.listdir("tasks/epochs")))
    grid("tasks", 1, np_=1, extra=["--resume", "--no-plots"])
    compare_tables("full/grid.tsv", "tasks/grid.tsv", 0, "uninterrupted vs 2 array tasks")
    compare_models("full/best.h5", "tasks/best.h5", "best.h5 uninterrupted vs 2 array tasks")
else:
    sys.exit(f"unknown scenario {scenario}")

if failures:
    print(f"{scenario}: {len(failures)} FAILED")
    sys.exit(1)
print(f"{scenario}: OK")
