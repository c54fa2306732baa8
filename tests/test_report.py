"""metrics.json, the table and the PNG plots of the hand-worked example (test_metrics.c):
the JSON must parse and hold the hand-computed values, every plot must be a real PNG of the
requested size drawn from the data files next to it. Usage: test_report.py REPORT_TOOL"""
import json, os, struct, subprocess, sys

out = "report_scratch"
table = subprocess.check_output([sys.argv[1], out], text=True)
print(table)
m = json.load(open(os.path.join(out, "metrics.json")))
failures = []


def expect(name, got, want, tol=1e-9):
    if got is None or abs(got - want) > tol:
        failures.append(f"{name}: {got} != {want}")


assert m["model"] == 'm"odel.h5' and m["split"] == "holdout" and m["aggregate"] == "rms"
for level in ("clip", "chunk"):
    d = m[level]
    expect(level + " auc", d["auc"], 0.8125)
    expect(level + " eer", d["eer"], 0.5)
    expect(level + " accuracy", d["accuracy"], 0.625)
    expect(level + " ppv", d["ppv"], 2 / 3)
    expect(level + " npv", d["npv"], 0.6)
    if d["confusion"] != {"tp": 2, "fn": 2, "fp": 1, "tn": 3}:
        failures.append(f"{level} confusion {d['confusion']}")
    lo, hi = d["auc_ci95"]
    if not (0 <= lo <= hi <= 1) or d["n"] != 8 or d["bootstrap"]["replicates"] != 200:
        failures.append(f"{level} interval/n {lo} {hi} {d['n']}")
if "ROC AUC" not in table or "0.8125" not in table or "TP 2 FN 2 FP 1 TN 3" not in table:
    failures.append("table lacks the AUC or the confusion matrix")
for name in ("roc", "confusion", "scores", "learning_curves"):
    png = open(os.path.join(out, name + ".png"), "rb").read()
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        failures.append(name + ".png is not a PNG")
        continue
    width, height = struct.unpack(">II", png[16:24])
    if (width, height) != (900, 650) or len(png) < 5000:
        failures.append(f"{name}.png {width}x{height}, {len(png)} bytes")
    if not os.path.exists(os.path.join(out, name + ".gp")):
        failures.append(name + ".gp missing")
roc = open(os.path.join(out, "roc.dat")).read().split("\n\n\n")
if roc[0].strip().splitlines()[-1].split() != ["1.000000", "1.000000"] or len(roc[0].strip().splitlines()) != 8:
    failures.append("roc.dat clip curve: " + roc[0])
if [l for l in os.listdir(out) if ".tmp." in l]:
    failures.append("temporary files left behind")
if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("report: metrics.json, table and 4 PNG plots OK")
