#!/usr/bin/env bash
# The demo corpus builder (data/make_corpus.sh): usage errors; a --limit build checked against the
# In-the-Wild layout with Python's wave/csv modules (16 kHz mono 16-bit, labels, every speaker with
# both classes, Allison's two languages one speaker); byte-identical rebuilds with 1 and 2 jobs;
# the shortcut check passes on the build and fails on a corpus made with a length/bandwidth
# shortcut; `adfd split` reads the corpus.
set -u
fail=0
src="${ADFD_SOURCE_DIR:?}"
py="${ADFD_PYTHON:-/usr/bin/python3}"
make="$src/data/make_corpus.sh"
work="$PWD/test_corpus"
rm -rf "$work" && mkdir -p "$work"
export ADFD_SKIP_DEPS=1 # scripts/test.sh installed every package already
check() { # check DESCRIPTION STATUS
    if [ "$2" -ne 0 ]; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi
}
expect() { # expect STATUS DESCRIPTION -- command...
    local want=$1 desc=$2; shift 3
    "$@" >"$work/out" 2>"$work/err"; local got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $desc: exit $got, want $want"; cat "$work/err"; fail=1
    else echo "ok: $desc"; fi
}

expect 0 "--help" -- "$make" --help
grep -q "^usage: data/make_corpus.sh OUT" "$work/out"; check "--help prints usage on stdout" $?
expect 2 "no output folder" -- "$make"
expect 2 "unknown option" -- "$make" "$work/x" --frobnicate
expect 2 "--limit not a number" -- "$make" "$work/x" --limit many
expect 2 "--jobs without value" -- "$make" "$work/x" --jobs
mkdir -p "$work/notcorpus" && touch "$work/notcorpus/precious.txt"
expect 1 "refuses to replace a folder that is not a corpus" -- "$make" "$work/notcorpus" --limit 2
test -f "$work/notcorpus/precious.txt"; check "the folder is left alone" $?
expect 1 "--speakers that match nothing" -- "$make" "$work/x" --speakers nobody

# Every speaker, about 5 clips each.
start=$SECONDS
"$make" "$work/small" --limit 5 --jobs 2 >"$work/small.log" 2>&1
check "make_corpus.sh --limit 5 (in $((SECONDS - start)) s)" $?
tail -3 "$work/small.log"
test ! -e "$work/small.partial"; check "no partial folder left" $?

"$py" - "$work/small" <<'EOF'
import csv, os, sys, wave
out = sys.argv[1]
errors = []
with open(os.path.join(out, "meta.csv"), newline="") as f:
    header = f.readline()
    rows = list(csv.reader(f))
if header != "file,speaker,label\n":
    errors.append("meta.csv header %r" % header)
files = [r[0] for r in rows]
if files != ["%d.wav" % n for n in range(len(rows))]:
    errors.append("files are not 0.wav .. %d.wav in order" % (len(rows) - 1))
wavs = {f for f in os.listdir(out) if f.endswith(".wav")}
if wavs != set(files):
    errors.append("wav files not listed in meta.csv: %s" % sorted(wavs ^ set(files))[:5])
speakers = {}
for name, speaker, label in rows:
    if label not in ("spoof", "bona-fide"):
        errors.append("%s: label %r" % (name, label))
    speakers.setdefault(speaker, set()).add(label)
    with wave.open(os.path.join(out, name), "rb") as w:
        fmt = (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype())
        if fmt != (16000, 1, 2, "NONE"):
            errors.append("%s: rate/channels/width/compression %s" % (name, fmt))
        if w.getnframes() < 0.15 * 16000:
            errors.append("%s: only %d samples" % (name, w.getnframes()))
one_class = [s for s, labels in speakers.items() if len(labels) != 2]
if one_class:
    errors.append("speakers without both classes: %s" % one_class)
if len(speakers) < 12:
    errors.append("only %d speakers" % len(speakers))
allisons = sorted(s for s in speakers if "Allison" in s)
if allisons != ["en_US_f_Allison"]:
    errors.append("Allison (en_US and es_MX) must be the one speaker en_US_f_Allison: %s"
                  % allisons)
with open(os.path.join(out, "provenance.csv"), newline="") as f:
    prov = list(csv.DictReader(f))
if not any(p["source"].startswith("es_MX_f_Allison/") and p["speaker"] == "en_US_f_Allison"
           for p in prov):
    errors.append("no es_MX_f_Allison clip under speaker en_US_f_Allison")
generators = {p["generator"].split(":")[0] for p in prov}
for g in ("real", "espeak-ng", "sptk", "codec2"):
    if g not in generators:
        errors.append("no clip made by %s (%s)" % (g, sorted(generators)))
spoof = sum(1 for r in rows if r[2] == "spoof") / len(rows)
if not 0.3 <= spoof <= 0.5:
    errors.append("spoof share %.2f outside [0.3, 0.5]" % spoof)
print("layout: %d clips, %d speakers, spoof %.2f, generators %s"
      % (len(rows), len(speakers), spoof, sorted(generators)))
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
EOF
check "layout, 16 kHz mono 16-bit, labels, per-speaker balance" $?

# A rebuild (other --jobs) is byte-identical; a subset that covers the G.722, GSM, 8 kHz PCM and
# Opus channels and every generator keeps this quick.
subset='^(en_US_f_Allison|es_CO|it_IT_f_Menardi|ktuberling_nn)$'
"$make" "$work/a" --limit 4 --jobs 1 --speakers "$subset" >/dev/null 2>&1 &&
    "$make" "$work/b" --limit 4 --jobs 2 --speakers "$subset" >/dev/null 2>&1
check "two subset builds" $?
(cd "$work/a" && sha256sum meta.csv provenance.csv *.wav) >"$work/a.sum"
(cd "$work/b" && sha256sum meta.csv provenance.csv *.wav) >"$work/b.sum"
cmp -s "$work/a.sum" "$work/b.sum" && [ "$(wc -l <"$work/a.sum")" -gt 10 ]
check "rebuild with --jobs 1 and 2 is byte-identical ($(wc -l <"$work/a.sum") files)" $?

# The shortcut check can fail: spoofs shorter, quieter and band-limited must be caught.
"$py" - "$work/shortcut" <<'EOF'
import os, sys, wave
import numpy as np
out = sys.argv[1]
os.makedirs(out)
rng = np.random.default_rng(1)
with open(os.path.join(out, "meta.csv"), "w") as meta:
    meta.write("file,speaker,label\n")
    for n in range(120):
        spoof = n % 2
        seconds = rng.uniform(1.0, 2.0) if spoof else rng.uniform(2.5, 4.0)
        x = rng.standard_normal(int(seconds * 16000))
        if spoof:  # 4 kHz band limit and 10 dB quieter
            spec = np.fft.rfft(x)
            spec[len(spec) // 2:] = 0
            x = np.fft.irfft(spec, len(x)) * 0.3
        with wave.open(os.path.join(out, "%d.wav" % n), "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
            w.writeframes((np.clip(x * 0.1, -1, 1) * 32767).astype("<i2").tobytes())
        meta.write("%d.wav,spk%d,%s\n" % (n, n % 6, "spoof" if spoof else "bona-fide"))
EOF
"$py" "$src/data/shortcut_check.py" "$work/shortcut" --max-auc 0.65 >"$work/sc.log" 2>&1
[ $? -eq 1 ] && grep -q "AUC length+rms+bandwidth 1.000" "$work/sc.log"
check "shortcut_check.py catches a length/level/bandwidth shortcut (AUC 1.000, exit 1)" $?
"$py" "$src/data/shortcut_check.py" "$work/small" --max-auc 0.70 >"$work/sc2.log" 2>&1
status=$?
check "shortcut_check.py on the --limit build: $(grep 'AUC length+rms+bandwidth ' "$work/sc2.log")" \
    $status

# adfd split reads the corpus.
if "$ADFD" split --help >/dev/null 2>&1; then
    "$ADFD" split --data "$work/small" --holdout ktuberling_fr --out "$work/split.csv" \
        >"$work/split.log" 2>&1
    check "adfd split --data <corpus> --holdout ktuberling_fr" $?
    "$py" - "$work/small/meta.csv" "$work/split.csv" <<'EOF'
import csv, sys
meta = list(csv.DictReader(open(sys.argv[1], newline="")))
split = list(csv.DictReader(open(sys.argv[2], newline="")))
by_file = {r["file"]: r for r in split}
bad = [m["file"] for m in meta if m["file"] not in by_file
       or by_file[m["file"]]["speaker"] != m["speaker"] or by_file[m["file"]]["label"] != m["label"]
       or (by_file[m["file"]]["split"] == "holdout") != (m["speaker"] == "ktuberling_fr")]
print("split.csv: %d rows for %d clips, %d mismatches" % (len(split), len(meta), len(bad)))
sys.exit(1 if bad or len(split) != len(meta) else 0)
EOF
    check "split.csv lists every clip with its speaker and label; only ktuberling_fr held out" $?
else
    echo "FAIL: adfd split is not available"; fail=1
fi

[ $fail -eq 0 ] && rm -rf "$work"
[ $fail -eq 0 ] && echo "test_corpus: passed" || echo "test_corpus: FAILED"
exit $fail
