#!/usr/bin/env bash
# adfd train: --help and usage errors (exit 2), runtime errors (exit 1) with messages, the same
# model under mpiexec -n 1, 2 and 4 (h5py, 1e-5 relative), preemption at a step + --resume ends
# with the same model as an uninterrupted run; --train-splits train,test (1 and 2 ranks agree,
# trained on the test rows too, last epoch, threshold). Usage: test_train.sh CNN_TOOL
set -u
tool=$1
fail=0
work=test_train
rm -rf $work && mkdir -p $work && cd $work
out=out.txt err=err.txt
expect() { # expect STATUS DESCRIPTION -- command...
    local want=$1 desc=$2; shift 3
    "$@" >$out 2>$err; local got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $desc: exit $got, want $want"; cat $err; fail=1
    else echo "ok: $desc"; fi
}
has() { grep -q -- "$2" "$1" || { echo "FAIL: '$2' not in $1:"; cat "$1"; fail=1; }; }

"$tool" features f.h5 12 4 4 || { echo "FAIL: cannot make features"; exit 1; }
"$tool" features f_v2.h5 2 1 2 seed 2 || exit 1
base=(--features f.h5 --channels 2 --lr 1e-3 --batch 8 --epochs 2 --out m.h5)

expect 0 "--help" -- "$ADFD" train --help
has $out "Usage: adfd train"
expect 2 "no options" -- "$ADFD" train
expect 2 "missing --features" -- "$ADFD" train --channels 2 --lr 1e-3 --batch 8 --epochs 2 --out m.h5
has $err "features"
expect 2 "missing --out" -- "$ADFD" train --features f.h5 --channels 2 --lr 1e-3 --batch 8 --epochs 2
expect 2 "zero lr" -- "$ADFD" train "${base[@]}" --lr 0
has $err "lr must be a positive"
expect 2 "negative lr" -- "$ADFD" train "${base[@]}" --lr -1e-3
expect 2 "zero channels" -- "$ADFD" train "${base[@]}" --channels 0
has $err "channels must be a positive"
expect 2 "zero batch" -- "$ADFD" train "${base[@]}" --batch 0
expect 2 "zero epochs" -- "$ADFD" train "${base[@]}" --epochs 0
expect 2 "bad number" -- "$ADFD" train "${base[@]}" --lr fast
expect 2 "dropout 1" -- "$ADFD" train "${base[@]}" --dropout 1
expect 2 "unknown option" -- "$ADFD" train "${base[@]}" --frobnicate
expect 2 "patience and no-early-stopping" -- "$ADFD" train "${base[@]}" --patience 2 --no-early-stopping
expect 1 "batch larger than the train split" -- "$ADFD" train "${base[@]}" --batch 49
has $err "batch 49 is larger than the train split (48 samples)"
expect 1 "missing features file" -- "$ADFD" train "${base[@]}" --features nothere.h5
has $err "nothere.h5"
expect 1 "features of another format version" -- "$ADFD" train "${base[@]}" --features f_v2.h5
has $err "version"
[ ! -e m.h5 ] || { echo "FAIL: a failed run left m.h5"; fail=1; }

# the same model for 1, 2 and 4 ranks (dropout on, batch 8 = 8, 4+4, 2+2+2+2 per step)
for np in 1 2 4; do
    expect 0 "train -n $np" -- "$ADFD_MPIEXEC" -n $np --oversubscribe "$ADFD" train \
        --features f.h5 --channels 2 --lr 1e-3 --batch 8 --epochs 2 --dropout 0.2 --seed 7 \
        --out m$np.h5
    has $out "epoch   2  train_loss"
done
compare='
import sys, h5py, numpy as np
ref = h5py.File(sys.argv[1], "r")
bad = 0
for other in sys.argv[2:]:
    o = h5py.File(other, "r")
    for k in ref:
        a, b = np.asarray(ref[k][()], np.float64), np.asarray(o[k][()], np.float64)
        tol = 1e-5 * np.abs(a) + 1e-7 * max(np.abs(a).max(), 1e-30)
        if a.shape != b.shape or np.any(np.abs(a - b) > tol):
            print("differs:", other, k, np.abs(a - b).max()); bad += 1
    init = h5py.File(sys.argv[1], "r")
print("compared", len(sys.argv) - 2, "models,", len(list(ref)), "tensors each")
sys.exit(1 if bad else 0)
'
expect 0 "models of -n 1, 2, 4 agree within 1e-5" -- "$ADFD_PYTHON" -c "$compare" m1.h5 m2.h5 m4.h5
cat $out
# C=8 trains through the patch-moment path: -n 1 and -n 4 with batch 5 (slices 1+1+1+2; the
# last step of an epoch has 3 samples, so one rank has an empty slice)
for np in 1 4; do
    expect 0 "train C=8 -n $np" -- "$ADFD_MPIEXEC" -n $np --oversubscribe "$ADFD" train \
        --features f.h5 --channels 8 --lr 1e-3 --batch 5 --epochs 2 --seed 3 --out c8_$np.h5
done
expect 0 "C=8 models of -n 1, 4 agree within 1e-5" -- "$ADFD_PYTHON" -c "$compare" c8_1.h5 c8_4.h5
# and the parameters moved: not a comparison of untouched initial weights
"$ADFD" train --features f.h5 --channels 2 --lr 1e-3 --batch 8 --epochs 1 --seed 7 --out m1e.h5 >/dev/null 2>&1
expect 1 "one epoch differs from two" -- "$ADFD_PYTHON" -c "$compare" m1.h5 m1e.h5

# preemption at a step (SIGUSR1 on rank 0 at its 5th sample read, inside epoch 1), then resume
expect 0 "uninterrupted run" -- "$tool" train f.h5 full.h5 ck_full full
for np in 1 2; do
    rm -rf ck$np
    expect 0 "preempted run -n $np" -- "$ADFD_MPIEXEC" -n $np --oversubscribe "$tool" train f.h5 x.h5 ck$np preempt 5
    [ -f ck$np/train.ckpt ] || { echo "FAIL: no checkpoint after preemption"; fail=1; }
    expect 0 "resumed run -n $np" -- "$ADFD_MPIEXEC" -n $np --oversubscribe "$tool" train f.h5 resumed$np.h5 ck$np resume
    has $err "resuming after epoch 0, step"
    expect 0 "resumed -n $np == uninterrupted" -- "$ADFD_PYTHON" -c "$compare" full.h5 resumed$np.h5
done
# model_load refuses another format version and wrong shapes, naming the file
cp m1.h5 m_v2.h5 && cp m1.h5 m_shape.h5
"$ADFD_PYTHON" -c '
import h5py, numpy as np
with h5py.File("m_v2.h5", "a") as f:
    f.attrs["format_version"] = np.int32(2)
with h5py.File("m_shape.h5", "a") as f:
    w = f["layer2.weight"][()]
    del f["layer2.weight"]
    f["layer2.weight"] = w[:, :-1]
'
expect 1 "model of another format version" -- "$tool" predict m_v2.h5 f.h5 s.txt
has $err "m_v2.h5: model format version 2"
expect 1 "model with a wrong tensor shape" -- "$tool" predict m_shape.h5 f.h5 s.txt
has $err "m_shape.h5: dataset 'layer2.weight' has the wrong shape"
expect 1 "missing model" -- "$tool" predict nothere.h5 f.h5 s.txt
has $err "nothere.h5"

# --train-splits train,test: usage errors, then the same model on 1 and 2 ranks, trained on the
# 48 train + 16 test rows (BatchNorm counts 8 steps of batch 8 per epoch, not the 6 of train
# only), the last epoch kept, the threshold given or copied, and not the train-only model.
tt=(--features f.h5 --channels 2 --lr 1e-3 --batch 8 --epochs 3 --dropout 0.2 --seed 7)
expect 2 "train,test with --patience 2" -- "$ADFD" train "${tt[@]}" --out t.h5 --train-splits train,test --patience 2
has $err "patience needs a test split"
expect 2 "unknown split name" -- "$ADFD" train "${tt[@]}" --out t.h5 --train-splits train,tset
has $err "unknown split 'tset'"
expect 2 "holdout is never trained on" -- "$ADFD" train "${tt[@]}" --out t.h5 --train-splits train,test,holdout
has $err "holdout split is never trained on"
expect 2 "splits without train" -- "$ADFD" train "${tt[@]}" --out t.h5 --train-splits test
expect 2 "threshold out of [0, 1]" -- "$ADFD" train "${tt[@]}" --out t.h5 --threshold 1.5
expect 2 "--threshold and --threshold-from" -- "$ADFD" train "${tt[@]}" --out t.h5 --threshold 0.4 --threshold-from m1.h5
expect 1 "missing --threshold-from model" -- "$ADFD" train "${tt[@]}" --out t.h5 --threshold-from nothere.h5
has $err "nothere.h5"
[ ! -e t.h5 ] || { echo "FAIL: a refused run left t.h5"; fail=1; }
expect 0 "train,test -n 1 (--no-early-stopping accepted)" -- "$ADFD" train "${tt[@]}" --train-splits train,test \
    --no-early-stopping --threshold 0.375 --out tt1.h5
has $out "training on train+test (64 samples), keeping the last epoch"
has $out "epoch   3  train_loss [0-9.]*  test_loss n/a  test_auc n/a"
expect 0 "train,test -n 2" -- "$ADFD_MPIEXEC" -n 2 --oversubscribe "$ADFD" train "${tt[@]}" \
    --train-splits test,train --threshold-from tt1.h5 --out tt2.h5
has $out "copied from tt1.h5"
expect 0 "train,test models of -n 1, 2 agree within 1e-5" -- "$ADFD_PYTHON" -c "$compare" tt1.h5 tt2.h5
expect 0 "train-only, early stopping off" -- "$ADFD" train "${tt[@]}" --no-early-stopping --out to.h5
expect 1 "the train,test model differs from the train-only one" -- "$ADFD_PYTHON" -c "$compare" tt1.h5 to.h5
expect 0 "steps counted by BatchNorm, thresholds (h5py)" -- "$ADFD_PYTHON" -c '
import h5py, math, sys
def get(path):
    with h5py.File(path, "r") as f:
        return int(f["layer1.1.num_batches_tracked"][()]), float(f.attrs["threshold"]), f.attrs["threshold_method"]
n_tt1, thr1, how1 = get("tt1.h5")
n_tt2, thr2, how2 = get("tt2.h5")
n_to, _, _ = get("to.h5")
ok = (n_tt1 == n_tt2 == 3 * math.ceil((48 + 16) / 8) and n_to == 3 * math.ceil(48 / 8)
      and thr1 == thr2 == 0.375 and how2.startswith(b"copied: given"))
print(n_tt1, n_tt2, n_to, thr1, thr2, how1, how2)
sys.exit(0 if ok else 1)'
cat $out

# a checkpoint of another configuration is refused
expect 1 "foreign checkpoint" -- "$ADFD" train "${base[@]}" --checkpoint-dir ck1 --resume
has $err "another configuration"

[ $fail -eq 0 ] && echo "test_train: passed" || echo "test_train: FAILED"
exit $fail
