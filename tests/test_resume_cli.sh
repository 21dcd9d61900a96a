#!/usr/bin/env bash
# tapegrad train --checkpoint / --resume: a training killed with SIGKILL at
# random moments and resumed each time ends with the model bytes and the
# printed figures (every epoch line but its seconds, and the final
# accuracy) and --log rows of the same training never interrupted. Six short trainings
# (sgd, momentum, adam x float32, float64) on a generated CSV, each killed
# at random times, several times in a row, until at least 24 resumes from a
# checkpoint (4 per training) are done; checkpoints every 1 to 9 steps, so
# most kills fall mid-epoch. Then one kill while a checkpoint is being
# written (its temporary file is there): the previous checkpoint stays
# whole and the training resumed from it ends as the uninterrupted one. And
# the refusals: --checkpoint-every without --checkpoint, a model file
# without a training state, options contradicting the checkpoint (named),
# a preset contradicting it, other data, fewer epochs than done.
# Bounded: about a minute; the random choices come from $RANDOM seeded by
# TG_RESUME_SEED (printed), so a failure can be replayed.
set -u
. "$(dirname "$0")/cli_checks.sh"
seed=${TG_RESUME_SEED:-$(date +%s)}
RANDOM=$seed
echo "random seed $seed (TG_RESUME_SEED=$seed replays it)"

awk 'BEGIN { srand(3); print "x,y,label"; for (i = 0; i < 1200; i++) { c = i % 3
             printf "%.4f,%.4f,%d\n", 3 * c + rand() - 0.5, 6 - 3 * c + rand() - 0.5, c } }' \
    >"$tmp/blobs.csv"
csv=(--data "$tmp/blobs.csv" --label-col 2 --scale 1/6 --layers 2,8,3 --loss xent --epochs 4
     --lr-decay 0.9)

# --- refusals ------------------------------------------------------------------
expect 0 "--resume FILE" -- "$cli" train --help
expect 2 "--checkpoint-every needs --checkpoint FILE" -- "$cli" train "${csv[@]}" --checkpoint-every 5
expect 2 "--checkpoint-every '0'" -- "$cli" train "${csv[@]}" --checkpoint "$tmp/c.tgm" --checkpoint-every 0
expect 1 "No such file" -- "$cli" train --resume "$tmp/none.tgm"
expect 0 "test_accuracy=" -- "$cli" train "${csv[@]}" --epochs 1 --save "$tmp/model.tgm"
expect 1 "holds a model but no training state" -- "$cli" train --resume "$tmp/model.tgm"
expect 0 "test_accuracy=" -- "$cli" train "${csv[@]}" --epochs 2 --optimizer momentum --lr 0.2 \
    --checkpoint "$tmp/c.tgm"
expect 2 "--lr 0.5 contradicts the checkpoint's --lr 0.20000000000000001" -- \
    "$cli" train --resume "$tmp/c.tgm" --lr 0.5
expect 2 "--optimizer adam contradicts the checkpoint's --optimizer momentum" -- \
    "$cli" train --resume "$tmp/c.tgm" --optimiser adam
expect 2 "--layers 2,9,3 contradicts the checkpoint's --layers 2,8,3" -- \
    "$cli" train --resume "$tmp/c.tgm" --layers 2,9,3
# Every contradiction is named.
expect 2 "--seed 5 contradicts the checkpoint's --seed 1" -- \
    "$cli" train --resume "$tmp/c.tgm" --batch 7 --seed 5
grep -qF -- "--batch 7 contradicts the checkpoint's --batch 10" "$tmp/out" || fail "--batch not named"
expect 2 "--save and --checkpoint name the same file" -- \
    "$cli" train "${csv[@]}" --save "$tmp/same.tgm" --checkpoint "$tmp/same.tgm"
expect 2 "--preset best sets --layers 784,256,128,10, which contradicts the checkpoint's --layers 2,8,3" -- \
    "$cli" train --resume "$tmp/c.tgm" --preset best
expect 2 "--epochs 1: the checkpoint $tmp/c.tgm is past epoch 2" -- \
    "$cli" train --resume "$tmp/c.tgm" --epochs 1
cp "$tmp/blobs.csv" "$tmp/blobs.orig"
awk -F, -v OFS=, 'NR == 2 { $1 = 0.5 } 1' "$tmp/blobs.orig" >"$tmp/blobs.csv" # one value changed
expect 1 "the data differ from the checkpoint's" -- "$cli" train --resume "$tmp/c.tgm"
cp "$tmp/blobs.orig" "$tmp/blobs.csv"
expect 1 "the data differ from the checkpoint's" -- "$cli" train --resume "$tmp/c.tgm" \
    --test "$tmp/blobs.csv"
# The same data elsewhere is the same data.
mkdir "$tmp/moved" && cp "$tmp/blobs.csv" "$tmp/c.tgm" "$tmp/moved/"
expect 0 "resuming $tmp/moved/c.tgm at the start of epoch 3" -- "$cli" train \
    --resume "$tmp/moved/c.tgm" --data "$tmp/moved/blobs.csv" --epochs 3
# The same command with --resume added carries on; more epochs may be asked.
expect 0 "resuming $tmp/c.tgm at the start of epoch 3" -- "$cli" train "${csv[@]}" \
    --optimizer momentum --lr 0.2 --checkpoint "$tmp/c.tgm" --resume "$tmp/c.tgm"

# A checkpoint is a model too: predict reads it (its meta text included).
expect 0 "index=5 predicted=" -- "$cli" predict --model "$tmp/c.tgm" --data "$tmp/blobs.csv" \
    --label-col 2 --scale 1/6 --index 5
# A checkpoint that cannot be written stops the training, saying why once.
expect 1 "--checkpoint: $tmp/none/c.tgm" -- "$cli" train "${csv[@]}" --checkpoint "$tmp/none/c.tgm" \
    --checkpoint-every 5
grep -q "stopped by the step callback\|epoch 1:" "$tmp/out" && fail "a second message: $(cat "$tmp/out")"
# More epochs than the checkpoint's training had: the same as training them
# from the start (the learning-rate schedule goes on).
"$cli" train "${csv[@]}" --epochs 5 --save "$tmp/five.tgm" >"$tmp/five.out" 2>/dev/null
"$cli" train "${csv[@]}" --epochs 2 --checkpoint "$tmp/two.tgm" >/dev/null 2>&1
expect 0 "resuming $tmp/two.tgm at the start of epoch 3" -- "$cli" train --resume "$tmp/two.tgm" \
    --epochs 5 --save "$tmp/more.tgm"
cmp -s "$tmp/five.tgm" "$tmp/more.tgm" || fail "2 epochs then 3 more differ from 5 epochs"

# --- kills at random moments -----------------------------------------------------
# figures FILE: the epoch lines without their seconds, and the final accuracy.
figures() { sed -n 's/ seconds=[0-9.]*//; /^epoch=/p; /^test_accuracy=/p' "$1"; }

resumes_total=0
positions=""
# chain CONFIG-DIR: a training started afresh, killed up to 3 times at
# random moments of its span and resumed after each, then let finish;
# checks its figures and model against the uninterrupted run's. Adds its
# resumes to $resumes.
chain() {
    local d=$1 kills=0 status pid line
    rm -f "$d/ck.tgm" "$d/out.tgm" "$d/log.csv"
    : >"$d/printed"
    while :; do
        local args=("${run[@]}" --checkpoint "$d/ck.tgm" --checkpoint-every "$every" --save "$d/out.tgm"
                    --log "$d/log.csv")
        [ -f "$d/ck.tgm" ] && args+=(--resume "$d/ck.tgm")
        "$cli" train "${args[@]}" >"$d/part.out" 2>"$d/part.err" &
        pid=$!
        if [ "$kills" -lt 3 ]; then
            sleep "$(awk -v r=$RANDOM -v s="$span" 'BEGIN { printf "%.3f", r / 32768 * s / 1000 }')"
            # A run that ended before its kill: aim earlier from now on.
            kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1)) || span=$((span * 2 / 3 + 1))
        fi
        wait "$pid" 2>/dev/null
        status=$?
        figures "$d/part.out" >>"$d/printed"
        if grep -q "^tapegrad train: resuming" "$d/part.err"; then
            resumes=$((resumes + 1))
            positions+="$(sed -n 's/^tapegrad train: resuming .* at //p' "$d/part.err"); "
        fi
        [ "$status" -eq 0 ] && break
        if [ "$status" -ne 137 ]; then
            fail "$config: a run exited $status: $(head -c 300 "$d/part.err")"
            return
        fi
    done
    cmp -s "$d/ref.tgm" "$d/out.tgm" ||
        fail "$config: the resumed training's model differs from the uninterrupted one's"
    # Every line printed, by any run, is the uninterrupted run's line ...
    while IFS= read -r line; do
        grep -qxF -- "$line" "$d/ref.fig" ||
            fail "$config: printed '$line', not in the uninterrupted run's output"
    done <"$d/printed"
    # ... and each of those came out at least once, the final accuracy last.
    while IFS= read -r line; do
        grep -qxF -- "$line" "$d/printed" || fail "$config: '$line' never printed"
    done <"$d/ref.fig"
    [ "$(figures "$d/part.out" | tail -1)" = "$(tail -1 "$d/ref.fig")" ] ||
        fail "$config: final line '$(figures "$d/part.out" | tail -1)'"
    # The --log file: one row per epoch, as the uninterrupted run's.
    cut -d, -f1-4 "$d/log.csv" | cmp -s - "$d/ref.log" ||
        fail "$config: the log differs: $(cut -d, -f1-4 "$d/log.csv" | tr '\n' ' ')"
}

for config in "sgd f32 0.5" "sgd f64 0.5" "momentum f32 0.2" "momentum f64 0.2" \
    "adam f32 0.02" "adam f64 0.02"; do
    read -r opt dtype lr <<<"$config"
    run=("${csv[@]}" --optimizer "$opt" --dtype "$dtype" --lr "$lr")
    d=$tmp/$opt-$dtype
    mkdir "$d"
    "$cli" train "${run[@]}" --save "$d/ref.tgm" --log "$d/ref.csv" >"$d/ref.out" 2>/dev/null ||
        fail "$config: reference run"
    cut -d, -f1-4 "$d/ref.csv" >"$d/ref.log" # without the seconds
    figures "$d/ref.out" >"$d/ref.fig"
    every=$((RANDOM % 9 + 1))
    # The uninterrupted run with checkpoints: its time (ms, the shorter of
    # two runs) bounds the kills.
    span=1000000
    for _ in 1 2; do
        t0=$(date +%s%N)
        "$cli" train "${run[@]}" --checkpoint "$d/full.tgm" --checkpoint-every "$every" \
            --save "$d/full-model.tgm" >/dev/null 2>&1 || fail "$config: checkpointing run"
        t=$((($(date +%s%N) - t0) / 1000000))
        [ "$t" -lt "$span" ] && span=$t
    done
    cmp -s "$d/ref.tgm" "$d/full-model.tgm" || fail "$config: checkpointing changed the model"
    resumes=0 chains=0
    while [ "$resumes" -lt 4 ] && [ "$chains" -lt 12 ]; do
        chain "$d"
        chains=$((chains + 1))
    done
    [ "$resumes" -ge 4 ] || fail "$config: only $resumes resumes in $chains trainings"
    resumes_total=$((resumes_total + resumes))
    echo "$config: $resumes resumes in $chains killed trainings (${span} ms each uninterrupted), checkpoints every $every steps"
done
echo "resumed at: $positions"
[ "$resumes_total" -ge 20 ] || fail "only $resumes_total resumes in all"

# --- a kill while a checkpoint is written ------------------------------------------
# A big model (31 MB per checkpoint with Adam in float64) makes writes take
# most of a training that checkpoints every step. The training is stopped
# (SIGSTOP) at intervals; one stopped while a temporary file exists is
# certainly mid-write, and is killed there. Stopping first makes the catch
# independent of how the scheduler treats this script against the trainer.
big=(--data "$tmp/blobs.csv" --label-col 2 --scale 1/6 --layers 2,800,800,3 --optimizer adam
     --dtype f64 --epochs 1 --batch 50)
d=$tmp/big
mkdir "$d"
"$cli" train "${big[@]}" --save "$d/ref.tgm" >/dev/null 2>&1 || fail "big: reference run"
caught=0
shopt -s nullglob
stopped() { # the process is stopped, or gone
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -z "$state" ] || [ "$state" = T ] || [ "$state" = t ] || [ "$state" = Z ]
}
for try in $(seq 10); do
    rm -f "$d"/ck.tgm*
    "$cli" train "${big[@]}" --checkpoint "$d/ck.tgm" --checkpoint-every 1 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 3000); do
        sleep 0.00$((RANDOM % 10))
        kill -STOP "$pid" 2>/dev/null || break
        until stopped "$pid"; do :; done
        tmps=("$d"/ck.tgm?*)
        if [ ${#tmps[@]} -gt 0 ] && [ -f "$d/ck.tgm" ]; then
            caught=1
            break
        fi
        kill -CONT "$pid" 2>/dev/null || break
    done
    kill -KILL "$pid" 2>/dev/null
    kill -CONT "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ "$caught" -eq 1 ] && break
done
if [ "$caught" -eq 1 ]; then
    echo "big: killed while writing $(basename "$(find "$d" -name 'ck.tgm?*' | head -1)") ($(stat -c %s "$(find "$d" -name 'ck.tgm?*' | head -1)") of $(stat -c %s "$d/ck.tgm") bytes)"
    expect 0 "resuming $d/ck.tgm at epoch 1, after step" -- "$cli" train --resume "$d/ck.tgm" --save "$d/out.tgm"
    cmp -s "$d/ref.tgm" "$d/out.tgm" || fail "big: the model resumed after a kill mid-write differs"
else
    fail "big: no stop caught a checkpoint being written in 10 trainings"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all resume checks passed ($resumes_total resumes)"
