#!/usr/bin/env bash
# tapegrad train / eval: output format, train --save then eval gives the
# accuracy the training ended with, the same seed prints identical
# test_accuracy lines, and bad input (options, data, model files) gives a
# clear message and an exit status, never a crash. The runs use --limit (the
# first N training samples) to stay fast; the data-free checks run even
# without the dataset, the rest skips (77) when it is missing.
set -u
cli=${TG_CLI:?TG_CLI is not set}
data=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect STATUS TEXT -- COMMAND...: runs it, checks the exit status and that
# stdout+stderr contain TEXT.
expect() {
    local want=$1 text=$2
    shift 3
    "$@" >"$tmp/out" 2>&1
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$* exited $got, wanted $want: $(head -c 400 "$tmp/out")"
    elif ! grep -qF -- "$text" "$tmp/out"; then
        fail "$*: output lacks '$text': $(head -c 400 "$tmp/out")"
    fi
}

# --- without the dataset -----------------------------------------------------
expect 0 "--preset NAME" -- "$cli" train --help
expect 0 "confusion matrix" -- "$cli" eval --help
expect 1 "apt-get install dataset-fashion-mnist" -- "$cli" train --data "$tmp/nowhere"
expect 2 "--lr 'abc'" -- "$cli" train --lr abc
expect 2 "expected sgd, momentum or adam" -- "$cli" train --optimizer rmsprop
expect 2 "unknown option '--bogus'" -- "$cli" train --bogus 1
expect 2 "--epochs needs a value" -- "$cli" train --epochs
expect 2 "--layers" -- "$cli" train --layers 784,,10 --data "$tmp/nowhere"
expect 2 "--model FILE is required" -- "$cli" eval
: >"$tmp/empty.tgm"
expect 1 "empty file" -- "$cli" eval --model "$tmp/empty.tgm"
expect 1 "is a directory" -- "$cli" eval --model "$tmp"
expect 1 "No such file" -- "$cli" eval --model "$tmp/missing.tgm"
printf 'not a model at all\n' >"$tmp/text.tgm"
expect 1 "not a tapegrad model" -- "$cli" eval --model "$tmp/text.tgm"

if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
    [ "$failures" -eq 0 ] || exit 1
    echo "skipped: Fashion-MNIST is not installed ($data); apt-get install dataset-fashion-mnist"
    exit 77
fi

# --- train, save, eval -------------------------------------------------------
"$cli" train --limit 2000 --epochs 2 --seed 3 --save "$tmp/m.tgm" --log "$tmp/m.csv" \
    >"$tmp/run1" 2>"$tmp/err1" || fail "train exited $?: $(cat "$tmp/err1")"
cat "$tmp/run1"
[ "$(grep -c '^epoch=' "$tmp/run1")" -eq 2 ] || fail "not two epoch lines"
grep -v '^epoch=[0-9]* train_loss=[0-9.]* test_accuracy=[0-9.]* seconds=[0-9.]*$' "$tmp/run1" |
    grep -v '^train_seconds=[0-9.]* samples_per_s=[0-9]*$' |
    grep -qv '^test_accuracy=[0-9.]*$' && fail "unexpected output lines"
last=$(tail -n 1 "$tmp/run1")
case "$last" in test_accuracy=0.*) ;; *) fail "last line is '$last'" ;; esac
epoch2=$(grep '^epoch=2 ' "$tmp/run1" | sed 's/.*\(test_accuracy=[0-9.]*\).*/\1/')
[ "$epoch2" = "$last" ] || fail "last epoch says $epoch2, the last line $last"
[ -s "$tmp/m.tgm" ] || fail "no model saved"
[ "$(wc -l <"$tmp/m.csv")" -eq 3 ] || fail "the log has not a header and two rows"
head -n 1 "$tmp/m.csv" | grep -q '^epoch,train_loss,test_loss,test_accuracy,seconds$' ||
    fail "log header: $(head -n 1 "$tmp/m.csv")"

"$cli" eval --model "$tmp/m.tgm" >"$tmp/eval" 2>&1 || fail "eval exited $?: $(cat "$tmp/eval")"
cat "$tmp/eval"
[ "$(head -n 1 "$tmp/eval")" = "$last" ] || fail "eval says $(head -n 1 "$tmp/eval"), training ended with $last"
# 10 rows of the confusion matrix, each summing (with the others) to 10,000 test samples
total=$(tail -n 10 "$tmp/eval" | awk '{ for (i = 2; i <= NF; i++) s += $i } END { print s }')
[ "$total" = 10000 ] || fail "the confusion matrix counts $total samples"

# --- the same seed prints the same test_accuracy lines ------------------------
"$cli" train --limit 2000 --epochs 2 --seed 3 >"$tmp/run2" 2>/dev/null || fail "second run exited $?"
diff <(grep -o 'test_accuracy=[0-9.]*' "$tmp/run1") <(grep -o 'test_accuracy=[0-9.]*' "$tmp/run2") >/dev/null ||
    fail "two runs with seed 3 differ: $(grep -o 'test_accuracy=[0-9.]*' "$tmp/run2" | tr '\n' ' ')"
diff <(grep -o 'train_loss=[0-9.]*' "$tmp/run1") <(grep -o 'train_loss=[0-9.]*' "$tmp/run2") >/dev/null ||
    fail "two runs with seed 3 have different losses"

# --- a truncated or corrupted model is refused -------------------------------
size=$(stat -c %s "$tmp/m.tgm")
head -c $((size / 2)) "$tmp/m.tgm" >"$tmp/half.tgm"
expect 1 "truncated" -- "$cli" eval --model "$tmp/half.tgm"
cp "$tmp/m.tgm" "$tmp/flip.tgm"
printf '\x55' | dd of="$tmp/flip.tgm" bs=1 seek=$((size - 100)) conv=notrunc status=none
expect 1 "CRC32 mismatch" -- "$cli" eval --model "$tmp/flip.tgm"

# --- the best preset, float64, a validation split, the plot ------------------
expect 0 "test_accuracy=" -- "$cli" train --preset best --limit 1000 --epochs 1 --valid 200
grep -q 'valid_accuracy=' "$tmp/out" || fail "--valid prints no valid_accuracy"
expect 0 "test_accuracy=" -- "$cli" train --dtype f64 --limit 500 --epochs 1 --save "$tmp/f64.tgm"
f64=$(tail -n 1 "$tmp/out")
expect 0 "$f64" -- "$cli" eval --model "$tmp/f64.tgm"
expect 2 "--valid" -- "$cli" train --limit 100 --epochs 1 --valid 100
if command -v gnuplot >/dev/null; then
    expect 0 "test_accuracy=" -- "$cli" train --limit 500 --epochs 2 --plot "$tmp/loss.png"
    [ -s "$tmp/loss.png" ] || fail "--plot drew nothing"
else
    expect 0 "gnuplot is not installed" -- "$cli" train --limit 500 --epochs 1 --plot "$tmp/loss.png"
fi

[ "$failures" -eq 0 ] || exit 1
echo "train_cli: all checks passed"
