#!/usr/bin/env bash
# adfd analyze from the command line: --help, usage errors (exit 2), every bad input (exit 1 and a
# message naming the file), several files with one bad, folders, standard input, --export (the
# WAV holds exactly the window's samples), --plot (PNG files), the default model.
# Argument: the analyze_make_model helper.
set -u
make_model=$1
work=test_analyze_cli
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail=0
py=${ADFD_PYTHON:-/usr/bin/python3}

expect() { # expect STATUS DESCRIPTION -- command...
    local want=$1 desc=$2
    shift 3
    "$@" >out.txt 2>err.txt
    local got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $desc: exit $got, want $want"
        cat err.txt
        fail=1
    else
        echo "ok: $desc"
    fi
}
expect_err() { # expect_err TEXT: the last command's stderr contains TEXT
    grep -qF -- "$1" err.txt || { echo "FAIL: stderr lacks '$1':"; cat err.txt; fail=1; }
}
expect_out() {
    grep -qF -- "$1" out.txt || { echo "FAIL: stdout lacks '$1':"; cat out.txt; fail=1; }
}

"$make_model" m.h5 seed 2 31 0.5 || exit 1
sox -n -r 16000 -b 16 -c 1 a.wav synth 2.5 pinknoise vol 0.3 || exit 1
sox -n -r 44100 -b 24 -c 2 b.flac synth 1.7 sine 300:900 vol 0.4 || exit 1
sox -n -r 16000 -b 16 -c 1 short.wav synth 0.3 pinknoise vol 0.3 || exit 1

# --- help and usage errors (exit 2) ---
expect 0 "--help" -- "$ADFD" analyze --help
expect_out "Usage: adfd analyze"
expect 2 "no FILE" -- "$ADFD" analyze --model m.h5
expect_err "no FILE"
expect 2 "--top -1" -- "$ADFD" analyze --model m.h5 --top -1 a.wav
expect_err "--top"
expect 2 "--top x" -- "$ADFD" analyze --model m.h5 --top x a.wav
expect 2 "--hop 0" -- "$ADFD" analyze --model m.h5 --hop 0 a.wav
expect_err "--hop"
expect 2 "--hop abc" -- "$ADFD" analyze --model m.h5 --hop abc a.wav
expect 2 "--aggregate median" -- "$ADFD" analyze --model m.h5 --aggregate median a.wav
expect_err "median"
expect 2 "unknown option" -- "$ADFD" analyze --model m.h5 --frobnicate a.wav
expect_err "unknown option '--frobnicate'"
expect 2 "--model without a value" -- "$ADFD" analyze a.wav --model
expect_err "wants a value"
expect 2 "'-' twice" -- "$ADFD" analyze --model m.h5 - -
expect_err "only once"

# --- bad inputs (exit 1, message naming the file) ---
expect 1 "missing file" -- "$ADFD" analyze --model m.h5 nope.wav
expect_err "nope.wav"
: >empty.wav
expect 1 "empty file" -- "$ADFD" analyze --model m.h5 empty.wav
expect_err "empty.wav"
echo "this is not audio" >text.wav
expect 1 "not audio" -- "$ADFD" analyze --model m.h5 text.wav
expect_err "text.wav"
head -c 20000 a.wav >trunc.wav
expect 1 "truncated file" -- "$ADFD" analyze --model m.h5 trunc.wav
expect_err "trunc.wav"
expect 1 "missing model" -- "$ADFD" analyze --model none.h5 a.wav
expect_err "none.h5"
cp text.wav text.h5
expect 1 "model that is not HDF5" -- "$ADFD" analyze --model text.h5 a.wav
expect_err "text.h5"
cp m.h5 v2.h5 && "$py" -c "import h5py; h5py.File('v2.h5','r+').attrs['format_version'] = 2" || fail=1
expect 1 "model of another format version" -- "$ADFD" analyze --model v2.h5 a.wav
expect_err "v2.h5"
expect_err "version"
cp m.h5 shape.h5 && "$py" -c "
import h5py, numpy as np
f = h5py.File('shape.h5', 'r+'); del f['layer2.weight']
f['layer2.weight'] = np.zeros((2, 1000), np.float32)" || fail=1
expect 1 "model of the wrong shape" -- "$ADFD" analyze --model shape.h5 a.wav
expect_err "shape.h5"
expect_err "layer2.weight"
mkdir -p nothing && touch nothing/readme.txt
expect 1 "folder without audio" -- "$ADFD" analyze --model m.h5 nothing
expect_err "no audio file"

# --- one bad file among good ones: the others are scored, exit 1 ---
expect 1 "several files, one bad" -- "$ADFD" analyze --model m.h5 a.wav nope.wav b.flac
expect_err "nope.wav"
expect_err "1 of 3 files failed"
expect_out "a.wav"
expect_out "b.flac"
expect 1 "several files, one bad, JSON" -- "$ADFD" analyze --model m.h5 --json a.wav empty.wav b.flac
"$py" - <<'EOF' || fail=1
import json, os, jsonschema
doc = json.load(open("out.txt"))
schema = json.load(open(os.path.join(os.environ["ADFD_SOURCE_DIR"], "docs/analyze.schema.json")))
jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
st = [(f["file"], f["status"]) for f in doc["files"]]
assert st == [("a.wav", "ok"), ("empty.wav", "error"), ("b.flac", "ok")], st
assert doc["failed"] == 1 and "empty.wav" in doc["files"][1]["error"], doc["files"][1]
# 2.5 s at hop 0.5: seed zero-pads to 3 s of frames, windows at 0, 0.5, 1, 1.5, 2
assert [w["start"] for w in doc["files"][0]["windows"]] == [0, 0.5, 1, 1.5, 2], doc["files"][0]
assert doc["files"][0]["windows"][-1]["end"] == 2.5
print("ok: JSON of a run with a bad file")
EOF

# --- --hop rounding, --aggregate, --top 0 ---
expect 0 "--hop 0.33 --aggregate max --top 0" -- "$ADFD" analyze --model m.h5 --json --hop 0.33 --aggregate max --top 0 a.wav
expect_err "rounded to 26 frames"
"$py" -c "
import json; d = json.load(open('out.txt')); f = d['files'][0]
assert d['hop_seconds'] == 0.325 and d['aggregate'] == 'max' and f['top'] == [], d
# 2.5 s: 201 frames, zero-padded to 240; starts every 26 frames, then one flush with the end
assert [w['offset_frames'] for w in f['windows']] == [0, 26, 52, 78, 104, 130, 156, 160], f['windows']
assert abs(f['clip_score'] - max(w['score'] for w in f['windows'])) < 1e-7
print('ok: hop rounded to frames, max aggregate, no top list')" || fail=1

# --- one process only ---
if [ -n "${ADFD_MPIEXEC:-}" ]; then
    expect 2 "under mpiexec -n 2" -- "$ADFD_MPIEXEC" -n 2 --oversubscribe "$ADFD" analyze --model m.h5 a.wav
    expect_err "one process"
fi

# --- a clip shorter than one window: scored, padded, and said so ---
expect 0 "short clip" -- "$ADFD" analyze --model m.h5 short.wav
expect_out "shorter than one window"
expect_out "padded"

# --- a folder: every audio file in it, sorted; standard input ---
mkdir -p dir && cp b.flac dir/z.flac && cp a.wav dir/c.wav && cp text.wav dir/notes.txt
expect 0 "folder" -- "$ADFD" analyze --model m.h5 --json dir
"$py" -c "
import json; d = json.load(open('out.txt'))
assert [f['file'] for f in d['files']] == ['dir/c.wav', 'dir/z.flac'], d['files']
print('ok: folder sorted, non-audio skipped')" || fail=1
expect 0 "file" -- "$ADFD" analyze --model m.h5 --json a.wav
cp out.txt from_file.json
"$ADFD" analyze --model m.h5 --json - <a.wav >from_stdin.json 2>err.txt || { echo "FAIL: stdin"; fail=1; }
"$py" -c "
import json
a = json.load(open('from_file.json'))['files'][0]; b = json.load(open('from_stdin.json'))['files'][0]
assert b['file'] == '-' and a['windows'] == b['windows'], (a, b)
print('ok: standard input gives the same windows')" || fail=1

# --- --export: the top windows as WAV files holding exactly the window's samples ---
expect 0 "export" -- "$ADFD" analyze --model m.h5 --json --top 3 --export exp a.wav b.flac
"$py" - <<'EOF' || fail=1
import json, wave, numpy as np
doc = json.load(open("out.txt"))
def read(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")
src = read("a.wav")
top = doc["files"][0]["top"]
assert len(top) == 3 and all(t["export"].startswith("exp/a_top") for t in top), top
for t in top:
    got = read(t["export"])
    want = src[round(t["start"] * 16000):round(t["end"] * 16000)]
    assert np.array_equal(got, want), t
assert len(doc["files"][1]["top"]) == 3
for t in doc["files"][1]["top"]:
    assert len(read(t["export"])) == round((t["end"] - t["start"]) * 16000), t
print("ok: exported windows hold the window's samples")
EOF

# A 2.0 s clip: the seed preset's last window starts at the very end (it holds the last frame and
# zero padding); exported, it is that last frame (200 samples).
sox -n -r 16000 -b 16 -c 1 two.wav synth 2.0 pinknoise vol 0.3 || exit 1
expect 0 "export of a window at the end of the clip" -- "$ADFD" analyze --model m.h5 --json --top 9 --export exp2 two.wav
"$py" - <<'EOF' || fail=1
import json, wave
f = json.load(open("out.txt"))["files"][0]
last = [t for t in f["top"] if t["start"] == 2.0]
assert len(f["top"]) == 5 and len(last) == 1 and last[0]["end"] == 2.0, f["top"]
with wave.open(last[0]["export"]) as w:
    assert w.getnframes() == 200, w.getnframes()
print("ok: the end window exports the last frame")
EOF

# --- --plot: one PNG per file, with its data and gnuplot script ---
expect 0 "plot one file" -- "$ADFD" analyze --model m.h5 --plot one.png a.wav
head -c 8 one.png | od -An -c | grep -q "P   N   G" || { echo "FAIL: one.png is not a PNG"; fail=1; }
[ -s one.dat ] && [ -s one.gp ] || { echo "FAIL: plot data/script missing"; fail=1; }
[ "$(grep -c '^set object .* rect' one.gp)" -eq 5 ] || { echo "FAIL: the 5 top windows are not shaded"; fail=1; }
expect 0 "plot several files" -- "$ADFD" analyze --model m.h5 --plot many.png a.wav b.flac
for f in many-a.png many-b.png; do
    head -c 8 "$f" | od -An -c | grep -q "P   N   G" || { echo "FAIL: $f is not a PNG"; fail=1; }
done
# Inputs with the same name get their position appended, so no output overwrites another.
mkdir -p d1 d2 && cp a.wav d1/x.wav && cp b.flac d2/x.flac
expect 0 "inputs with the same name" -- "$ADFD" analyze --model m.h5 --top 1 --export exp3 --plot dup.png d1/x.wav d2/x.flac d1/x.wav
for f in dup-x.png dup-x-2.png dup-x-3.png; do
    [ -s "$f" ] || { echo "FAIL: $f missing"; fail=1; }
done
[ "$(ls exp3 | sed 's/_top1_.*//' | sort | tr '\n' ' ')" = "x x-2 x-3 " ] || {
    echo "FAIL: export names: $(ls exp3)"; fail=1; }
ls ./*.tmp.* 2>/dev/null && { echo "FAIL: temporary files left"; fail=1; }

# --- the default model ---
if [ -f "$ADFD_SOURCE_DIR/models/demo.h5" ]; then
    expect 0 "default model models/demo.h5" -- "$ADFD" analyze a.wav
    expect_out "models/demo.h5"
else
    expect 1 "default model missing" -- "$ADFD" analyze a.wav
    expect_err "models/demo.h5"
fi

[ $fail -eq 0 ] && echo "test_analyze_cli: passed" || echo "test_analyze_cli: FAILED"
exit $fail
