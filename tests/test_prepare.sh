#!/usr/bin/env bash
# adfd prepare end to end on a small synthetic data set made here (espeak-ng speech, sox tones
# and noise; 16 kHz WAV, 22.05 kHz WAV, 44.1 kHz stereo FLAC): 1, 2 and 3 ranks give identical
# files (checked with h5py), the files pass tests/test_store_h5py.py (layout, tables, torchaudio
# values, normalisation), h5dump -H shows the layout, and bad inputs fail cleanly.
set -euo pipefail
: "${ADFD:?}" "${ADFD_PYTHON:?}" "${ADFD_MPIEXEC:?}" "${ADFD_SOURCE_DIR:?}"
work="$PWD/test_prepare"
rm -rf "$work" && mkdir -p "$work/data" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { "$ADFD_MPIEXEC" -n "$1" --oversubscribe "$ADFD" prepare "${@:2}"; }
check_py() { "$ADFD_PYTHON" -W ignore "$ADFD_SOURCE_DIR/tests/test_store_h5py.py" "$@"; }

# --- data: three speakers, both labels, every split ---
d=data
espeak-ng -v en-us -s 160 -w raw1.wav "The weather today is cold, but the sun is out."
espeak-ng -v en-gb -s 140 -w raw2.wav "Please call me back when you get this message."
espeak-ng -v en-us -s 200 -w raw3.wav "Okay."
espeak-ng -v en-us+f3 -s 120 -w raw4.wav "Nobody would ever say a thing like that, would they?"
sox raw1.wav -r 16000 -b 16 $d/alice1.wav
sox raw2.wav -r 16000 -b 16 $d/bob1.wav pad 0.5 0.8
sox raw3.wav -r 16000 -b 16 $d/bob2.wav
cp raw1.wav $d/alice2.wav                            # 22.05 kHz: resampled by audio_load
sox raw2.wav -r 44100 -c 2 $d/carol1.flac            # stereo FLAC
sox raw4.wav -r 16000 -b 16 $d/carol2.wav
sox -n -r 22050 -b 16 $d/erin1.wav synth 3.3 sine 300:900 gain -8   # tonal, not compared
sox -n -r 16000 -b 16 $d/dave1.wav synth 0.25 pinknoise gain -15
cat > $d/meta.csv <<CSV
file,speaker,label
alice1.wav,Alice,bona-fide
bob1.wav,Bob,spoof
alice2.wav,Alice,spoof
carol1.flac,Carol,bona-fide
bob2.wav,Bob,bona-fide
carol2.wav,Carol,spoof
dave1.wav,Dave,spoof
erin1.wav,Erin,bona-fide
CSV
cat > split.csv <<CSV
file,speaker,label,split
alice1.wav,Alice,bona-fide,train
bob1.wav,Bob,spoof,test
alice2.wav,Alice,spoof,train
carol1.flac,Carol,bona-fide,holdout
bob2.wav,Bob,bona-fide,test
carol2.wav,Carol,spoof,holdout
dave1.wav,Dave,spoof,train
erin1.wav,Erin,bona-fide,test
CSV

# --- same file for 1, 2 and 3 ranks, both presets, whatever the round size ---
for preset in seed default; do
  for np in 1 2 3; do
    # rounds of ~2, ~3 and ~1 s of audio per rank (the whole set is ~25 s): many rounds, cut
    # differently for each rank count, must still give the same file
    rounds=$(( np == 1 ? 2 : (np == 2 ? 3 : 1) ))
    run $np --data $d --split split.csv --preset $preset --out $preset.np$np.h5 \
      --round-seconds $rounds 2> log.txt ||
      { cat log.txt; fail "prepare $preset at $np ranks"; }
    grep -q "adfd prepare: 8 clips (0 skipped)" log.txt || { cat log.txt; fail "summary line"; }
    [ -z "$(ls | grep '\.tmp\.' || true)" ] || fail "temporary file left behind"
  done
  check_py $preset.np1.h5 --data $d --split split.csv
  run 1 --data $d --split split.csv --preset $preset --out $preset.one_round.h5 2>/dev/null
  check_py $preset.one_round.h5 --data $d --split split.csv --same-as $preset.np1.h5
  check_py $preset.np2.h5 --data $d --split split.csv --same-as $preset.np1.h5
  check_py $preset.np3.h5 --data $d --split split.csv --same-as $preset.np1.h5
done
run 2 --data $d --split split.csv --preset default --chunk-hop 80 --out hop80.h5 2>/dev/null
"$ADFD_PYTHON" -c "import h5py,sys; f=h5py.File('hop80.h5','r'); o=f['offset'][:]; \
sys.exit(0 if f.attrs['chunk_hop']==80 and (o%80==0).sum() >= len(o)-8 else 1)" ||
  fail "--chunk-hop 80"

# --- h5dump shows the layout ---
h5dump -H seed.np1.h5 > layout.txt
for want in 'DATASET "features"' 'H5T_IEEE_F32LE' '( H5S_UNLIMITED, 128, 80 )' \
            'DATASET "clip"' 'DATASET "offset"' 'GROUP "clips"' 'DATASET "file"' 'STRSIZE 256' \
            'GROUP "speakers"' 'GROUP "normalization"' 'ATTRIBUTE "source_checksum"' \
            'ATTRIBUTE "preset"' 'ATTRIBUTE "format_version"'; do
  grep -qF "$want" layout.txt || { cat layout.txt; fail "h5dump -H lacks: $want"; }
done

# --- usage errors (exit 2) and --help (exit 0, stdout) ---
expect_status() {  # expected status, then the command
  local want=$1; shift
  set +e; "$@" > out.txt 2> err.txt; local got=$?; set -e
  [ "$got" = "$want" ] || { cat out.txt err.txt; fail "'$*' exited $got, expected $want"; }
}
expect_status 0 "$ADFD" prepare --help
grep -q "Usage: mpiexec -n P adfd prepare" out.txt || fail "--help on stdout"
expect_status 2 "$ADFD" prepare
expect_status 2 "$ADFD" prepare --data $d --split split.csv --preset fancy --out x.h5
grep -q "seed or default" err.txt || fail "bad preset message"
expect_status 2 "$ADFD" prepare --data $d --split split.csv --preset seed
expect_status 2 "$ADFD" prepare --data $d --split split.csv --preset seed --out x.h5 --chunk-hop 0
expect_status 2 "$ADFD" prepare --data $d --split split.csv --preset seed --out x.h5 --bogus
expect_status 2 "$ADFD" prepare --data $d --split split.csv --preset seed --out x.h5 --round-seconds 0
expect_status 2 "$ADFD" prepare --data $d --protocol p.txt --split split.csv --preset seed --out x.h5
expect_status 2 "$ADFD" prepare --data $d --split split.csv --preset seed --out x.h5 extra

# --- existing output: refused without --force, replaced with it ---
cp seed.np1.h5 keep.h5
expect_status 1 "$ADFD" prepare --data $d --split split.csv --preset default --out keep.h5
grep -q "keep.h5 already exists (use --force" err.txt || fail "existing output message"
cmp -s keep.h5 seed.np1.h5 || fail "existing output was touched"
expect_status 0 "$ADFD" prepare --data $d --split split.csv --preset default --out keep.h5 --force
"$ADFD_PYTHON" -c "import h5py; assert h5py.File('keep.h5','r').attrs['preset'] == b'default'" ||
  fail "--force did not replace the file"

expect_status 1 "$ADFD" prepare --data $d --split split.csv --preset seed --out nodir/x.h5
grep -q "nodir/x.h5: folder nodir does not exist" err.txt || { cat err.txt; fail "missing folder"; }

# --- a missing clip: the data set is refused, naming the file ---
mkdir -p missing && cp $d/*.wav $d/*.flac missing/ && cp $d/meta.csv missing/ && rm missing/bob2.wav
expect_status 1 "$ADFD" prepare --data missing --split split.csv --preset seed --out m.h5 --skip-bad
grep -q "bob2.wav" err.txt || { cat err.txt; fail "missing clip not named"; }
[ ! -e m.h5 ] || fail "output written for a missing clip"

# --- an unreadable clip: fatal naming it (all ranks abort, nothing left), or skipped ---
mkdir -p corrupt && cp $d/* corrupt/ && echo "this is not audio" > corrupt/bob1.wav
head -c 3000 $d/carol2.wav > corrupt/carol2.wav     # truncated: the header promises more
set +e
run 3 --data corrupt --split split.csv --preset seed --out c.h5 > out.txt 2> err.txt
status=$?
set -e
[ $status -ne 0 ] || fail "an unreadable clip did not fail the run"
grep -q "corrupt/bob1.wav\|corrupt/carol2.wav" err.txt || { cat err.txt; fail "bad clip not named"; }
grep -q "skip-bad" err.txt || fail "no hint about --skip-bad"
[ ! -e c.h5 ] && [ -z "$(ls | grep '^c\.h5\.tmp' || true)" ] || fail "files left after a failed run"
for np in 1 3; do
  run $np --data corrupt --split split.csv --preset default --out skip$np.h5 --skip-bad 2> err.txt ||
    { cat err.txt; fail "--skip-bad run at $np ranks"; }
  grep -q "6 clips (2 skipped)" err.txt || { cat err.txt; fail "skip summary"; }
  grep -q "skipping.*bob1.wav" err.txt && grep -q "skipping.*carol2.wav" err.txt ||
    { cat err.txt; fail "skipped clips not listed"; }
done
check_py skip1.h5 --data corrupt --split split.csv --skipped bob1.wav carol2.wav
check_py skip3.h5 --data corrupt --split split.csv --skipped bob1.wav carol2.wav --same-as skip1.h5
echo "test_prepare: all checks passed"
