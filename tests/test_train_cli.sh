#!/usr/bin/env bash
# tapegrad train / eval / predict / --version: output format, train --save
# then eval gives the accuracy the training ended with, the same seed prints
# identical test_accuracy lines, and bad input (options, data, model files)
# gives a clear message and an exit status, never a crash. On a generated
# CSV dataset (always run): CSV training, a network that does not fit the
# data refused, a diverging training stopped with a message naming the step
# and nothing saved, --threads 2 and 4 giving the model of one thread where
# the products are too small for a second BLAS thread, predict's
# probabilities against numpy's forward pass of the saved weights (when
# /usr/bin/python3 has numpy), eval's confusion matrix on a CSV file against
# predict's rows tallied, the progress line on
# a terminal (under script(1)), --plot's formats and its one-epoch picture
# without a gnuplot warning (when gnuplot is installed). The user's files:
# a FIFO model refused without hanging, saves through a symlink keeping the
# mode, a FIFO or device never replaced, --log write errors and ulimit -f
# reported with exit status 1. The Fashion-MNIST
# runs use --limit (the first N training samples) to stay fast and skip (77)
# when the dataset is missing.
set -u
. "$(dirname "$0")/cli_checks.sh"
data=/usr/share/datasets/fashion-mnist

# --- without the dataset -----------------------------------------------------
expect 0 "--preset NAME" -- "$cli" train --help
expect 0 "confusion matrix" -- "$cli" eval --help
# Every option the man page gives a command is in that command's --help
# (test_install.sh checks the other way).
man=${TG_SOURCE_DIR:-..}/docs/tapegrad.1
for cmd in train eval predict; do
    help=$("$cli" "$cmd" --help)
    for opt in $(awk -v c="$cmd" '$0 ~ "^\\.SS \"" c { on = 1; next } /^\.SS/ { on = 0 } on' "$man" |
        grep -oE '^\.B[IR]? (\\-)+[a-z]+(\\-[a-z]+)*' | sed -E 's/^\.B[IR]? //; s/\\-/-/g' |
        sort -u); do
        grep -qF -- "$opt" <<<"$help" || fail "$cmd: the man page gives $opt, $cmd --help does not"
    done
done
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

# --- --version: the header's version -----------------------------------------
hdr=${TG_SOURCE_DIR:-..}/include/tapegrad.h
version=$(awk '/#define TAPEGRAD_VERSION_(MAJOR|MINOR|PATCH)/ { v = v (v == "" ? "" : ".") $3 } END { print v }' "$hdr")
expect 0 "tapegrad $version" -- "$cli" --version
[ "$(cat "$tmp/out")" = "tapegrad $version" ] || fail "--version prints '$(cat "$tmp/out")', the header says $version"
expect 0 "predict" -- "$cli" --help
expect 2 "unknown command 'trian' (did you mean train?)" -- "$cli" trian
expect 2 "unknown command 'predcit' (did you mean predict?)" -- "$cli" predcit
expect 2 "commands:" -- "$cli" frobnicate
expect 0 "--no-labels" -- "$cli" predict --help
expect 2 "--model FILE is required" -- "$cli" predict
expect 2 "--index 'x'" -- "$cli" predict --model m --index x
expect 2 "must end in .png, .svg, .pdf or .eps" -- "$cli" train --plot "$tmp/curves.jpg"
expect 2 "must end in" -- "$cli" train --plot "$tmp/curves"

# --- a CSV dataset: 3 blobs in 2-D, a header, the label last -----------------
awk 'BEGIN { srand(7); print "x,y,label";
             for (i = 0; i < 600; i++) { c = i % 3;
                 printf "%.4f,%.4f,%d\n", 3 * c + rand() - 0.5, 6 - 3 * c + rand() - 0.5, c } }' >"$tmp/blobs.csv"
csv=(--data "$tmp/blobs.csv" --label-col 2 --scale 1/6)
expect 0 "test_accuracy=" -- "$cli" train "${csv[@]}" --layers 2,8,3 --epochs 3 --loss xent \
    --optimizer adam --lr 0.05 --save "$tmp/blobs.tgm"
grep -q "the last 60 samples of $tmp/blobs.csv are the test set" "$tmp/out" || fail "no note of the held-out test set"
acc=$(sed -n 's/^test_accuracy=//p' "$tmp/out")
awk -v a="$acc" 'BEGIN { exit !(a > 0.9) }' || fail "CSV blobs: test accuracy $acc"
expect 0 "test_accuracy=" -- "$cli" train "${csv[@]}" --layers 2,8,3 --epochs 1 --test "$tmp/blobs.csv"
grep -q "are the test set" "$tmp/out" && fail "--test given, yet a part of the data held out"
expect 2 "the last layer has 4 outputs, but the data has 3 classes (labels 0 to 2); make the last size 3" -- \
    "$cli" train "${csv[@]}" --layers 2,8,4
expect 2 "the first layer takes 784 inputs, but the data has 2 features per sample" -- \
    "$cli" train "${csv[@]}"
expect 1 "blobs.csv:2: label" -- "$cli" train --data "$tmp/blobs.csv" --layers 2,8,3
grep -q -- "--label-col N names another" "$tmp/out" || fail "no hint of --label-col: $(cat "$tmp/out")"
expect 2 "--scale 'x/0'" -- "$cli" train "${csv[@]}" --scale x/0
expect 2 "apply to CSV data" -- "$cli" train --data "$tmp" --label-col 1

# --test naming nothing: the message is about --test, and the training set
# read first is freed (under valgrind when it can run this build: not a
# sanitizer build, which LeakSanitizer checks, nor clang's DWARF 5).
expect 1 "  --test wants a CSV file" -- "$cli" train "${csv[@]}" --test "$tmp/no-such-test.csv"
grep -q "no-such-test.csv: cannot open" "$tmp/out" || fail "--test: $(cat "$tmp/out")"
if command -v valgrind >/dev/null &&
    [ "$(valgrind -q "$cli" --version 2>&1)" = "$("$cli" --version)" ]; then
    expect 1 "--test wants" -- valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
        --error-exitcode=101 "$cli" train "${csv[@]}" --test "$tmp/no-such-test.csv"
fi

# An IDX directory whose images have another size than the model takes is
# refused from the header, before 20 MB of gzipped payload are inflated.
mkdir "$tmp/bomb"
{ printf '\x00\x00\x08\x03\x3b\x9a\xca\x00\x00\x00\x00\x03\x00\x00\x00\x01'; printf '%020000000d' 0; } |
    gzip -1 >"$tmp/bomb/t10k-images-idx3-ubyte.gz"
expect 1 "t10k images have 3 features (pixels) each, the network takes 2; nothing read past the header" -- \
    "$cli" predict --model "$tmp/blobs.tgm" --data "$tmp/bomb"
expect 1 "nothing read past the header" -- "$cli" eval --model "$tmp/blobs.tgm" --data "$tmp/bomb"

# --- the user's files: never replaced when not regular, never waited on -------
# (device nodes are made here, as root, never touched in /dev)
small=("${csv[@]}" --layers 2,8,3 --epochs 1)
mkfifo "$tmp/fifo"
expect 1 "is a FIFO (named pipe), not a model file" -- timeout 20 "$cli" eval --model "$tmp/fifo"
expect 1 "is a FIFO (named pipe), not a model file" -- timeout 20 "$cli" predict --model "$tmp/fifo" \
    --data "$tmp/blobs.csv" --label-col 2
expect 1 "is a FIFO (named pipe); give a regular file" -- timeout 20 "$cli" train "${small[@]}" \
    --save "$tmp/fifo"
expect 1 "a FIFO that no process reads" -- timeout 20 "$cli" train "${small[@]}" --log "$tmp/fifo"
expect 2 "is a FIFO (named pipe); give a regular file" -- timeout 20 "$cli" grad --dot "$tmp/fifo" \
    'x*y' x=2 y=3
[ -p "$tmp/fifo" ] || fail "a save replaced a FIFO"
cp "$tmp/blobs.tgm" "$tmp/kept.tgm"
chmod 600 "$tmp/kept.tgm"
ln -s kept.tgm "$tmp/link.tgm"
expect 0 "model saved to" -- "$cli" train "${small[@]}" --save "$tmp/link.tgm"
[ -L "$tmp/link.tgm" ] || fail "--save replaced a symbolic link instead of its target"
[ "$(stat -c %a "$tmp/kept.tgm")" = 600 ] || fail "--save changed mode 600 to $(stat -c %a "$tmp/kept.tgm")"
cmp -s "$tmp/blobs.tgm" "$tmp/kept.tgm" && fail "--save through a link left the target as it was"
ln -s picture.dot "$tmp/link.dot"
expect 0 "f = 6" -- "$cli" grad --dot "$tmp/link.dot" 'x*y' x=2 y=3
[ -L "$tmp/link.dot" ] && grep -q digraph "$tmp/picture.dot" || fail "grad --dot did not follow the link"
if mknod "$tmp/full" c 1 7 2>/dev/null; then
    expect 1 "--log $tmp/full: write error" -- "$cli" train "${small[@]}" --log "$tmp/full" \
        --save "$tmp/after-log.tgm"
    [ -s "$tmp/after-log.tgm" ] || fail "a failed --log lost the model"
    expect 1 "No space left on device" -- "$cli" train "${small[@]}" --save "$tmp/full"
    [ -c "$tmp/full" ] || fail "--save replaced a device"
    mknod "$tmp/zero" c 1 5
    expect 1 "zero:1: a NUL byte: not a text file" -- timeout 20 "$cli" train --data "$tmp/zero"
else
    echo "note: not root, the device-node cases are skipped"
fi
# Past ulimit -f: EFBIG reported, the old model whole, no temporary file left.
cp "$tmp/blobs.tgm" "$tmp/limited.tgm"
( ulimit -f 1; exec "$cli" train "${csv[@]}" --layers 2,300,3 --epochs 1 --save "$tmp/limited.tgm" ) \
    >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "File too large" "$tmp/out" || fail "ulimit -f: exit $rc: $(cat "$tmp/out")"
cmp -s "$tmp/blobs.tgm" "$tmp/limited.tgm" || fail "ulimit -f: the old model changed"
ls "$tmp" | grep -q '[.]tmp[.]' && fail "a temporary file was left: $(ls "$tmp")"

# --- messages that name the right cause -------------------------------------
expect 1 "the learning rate 3 or the weight decay 1e+308 may be too large" -- \
    "$cli" train "${csv[@]}" --layers 2,8,3 --weight-decay 1e308 --epochs 1
expect 2 "--layers: layers '2,1000000000,3': size 1000000000 is out of range 1..16777216" -- \
    "$cli" train "${csv[@]}" --layers 2,1000000000,3

# --- divergence: linear units and lr 1000 overflow within a few steps ---------
rm -f "$tmp/diverged.tgm"
expect 1 "may be too large" -- "$cli" train "${csv[@]}" --layers 2,8,3 --activation identity \
    --lr 1000 --epochs 2 --save "$tmp/diverged.tgm"
grep -Eq '^tapegrad train: epoch 1, step [0-9]+: the (loss is (NaN|inf)|update made a parameter NaN or infinite); the learning rate 1000 may be too large .*; nothing was saved$' "$tmp/out" ||
    fail "divergence message: $(cat "$tmp/out")"
[ -e "$tmp/diverged.tgm" ] && fail "a diverged training saved its model"

# --- --threads N trains the bits of one thread below the BLAS threshold ----
# W1's 784-100-10 at batch 128 is below the 2^28 multiply-adds for which a
# second BLAS thread is used (OpenBLAS's two threads give other bits than
# one): --threads 2 and 4 must save the model of --threads 1, byte for byte,
# and print its figures.
awk 'BEGIN { s = 7; for (i = 0; i < 700; i++) { c = i % 10; line = c;
                 for (j = 0; j < 784; j++) { s = (s * 1103515245 + 12345) % 2147483648;
                     line = line sprintf(",%.3f", s / 2147483648 * (j % 10 == c ? 2 : 1)) }
                 print line } }' >"$tmp/wide.csv"
for threads in 1 2 4; do
    expect 0 "epoch=2 train_loss=" -- "$cli" train --data "$tmp/wide.csv" --layers 784,100,10 \
        --batch 128 --epochs 2 --seed 3 --threads $threads --save "$tmp/threads$threads.tgm"
    sed -e 's/ seconds=.*//' -e '/^train_seconds=/d' -e '/^tapegrad train: --threads/d' \
        -e 's/threads[0-9]*[.]tgm/threads.tgm/' "$tmp/out" >"$tmp/threads$threads.out"
done
grep -q "^tapegrad train: --threads 4: .* faster in one BLAS thread" "$tmp/out" ||
    fail "--threads 4 below the threshold: no note on stderr"
for threads in 2 4; do
    cmp -s "$tmp/threads1.tgm" "$tmp/threads$threads.tgm" ||
        fail "--threads $threads saved another model than --threads 1"
    cmp -s "$tmp/threads1.out" "$tmp/threads$threads.out" ||
        fail "--threads $threads printed other figures than --threads 1: $(diff "$tmp/threads1.out" "$tmp/threads$threads.out" | head -5)"
done

# --- predict: the saved weights' forward pass in numpy ------------------------
expect 0 '"predictions"' -- "$cli" predict --model "$tmp/blobs.tgm" --data "$tmp/blobs.csv" \
    --label-col 2 --scale 1/6 --json
cp "$tmp/out" "$tmp/pred.json"
expect 0 "index=5 predicted=" -- "$cli" predict --model "$tmp/blobs.tgm" --data "$tmp/blobs.csv" \
    --label-col 2 --scale 1/6 --index 5
grep -q '^accuracy=' "$tmp/out" && fail "one sample, yet an accuracy line"
expect 2 "--index 600: $tmp/blobs.csv has 600 samples (0 to 599)" -- "$cli" predict \
    --model "$tmp/blobs.tgm" --data "$tmp/blobs.csv" --label-col 2 --index 600
cut -d, -f1,2 "$tmp/blobs.csv" >"$tmp/nolabels.csv"
expect 1 "without labels: --no-labels" -- "$cli" predict --model "$tmp/blobs.tgm" \
    --data "$tmp/nolabels.csv"
awk -F, 'NR > 1 { print 1 "," $1 }' "$tmp/blobs.csv" >"$tmp/one.csv" # a label, 1 feature
expect 2 "if the file has no label column, add --no-labels" -- "$cli" predict \
    --model "$tmp/blobs.tgm" --data "$tmp/one.csv"
expect 0 "index=599 predicted=" -- "$cli" predict --model "$tmp/blobs.tgm" \
    --data "$tmp/nolabels.csv" --no-labels --scale 1/6
grep -q 'label=' "$tmp/out" && fail "--no-labels, yet labels printed"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 - "$tmp/blobs.tgm" "$tmp/blobs.csv" "$tmp/pred.json" <<'PY' || fail "predict disagrees with numpy"
import json, struct, sys
import numpy as np
model, csv, pred = sys.argv[1:]
b = open(model, "rb").read()
dtype, count, meta_len = struct.unpack_from("<III", b, 12)
meta = b[32:32 + meta_len].decode()
off, shapes = 32 + meta_len, []
for _ in range(count):
    (nl,) = struct.unpack_from("<H", b, off); name = b[off + 2:off + 2 + nl].decode(); off += 2 + nl
    nd = b[off]; off += 2
    shapes.append((name, struct.unpack_from("<%dq" % nd, b, off))); off += 8 * nd
params = {}
for name, shape in shapes:
    n = int(np.prod(shape)); t = "<f8" if dtype else "<f4"
    params[name] = np.frombuffer(b, t, n, off).astype(np.float64).reshape(shape); off += n * (8 if dtype else 4)
assert "loss=xent" in meta and "output=identity" in meta, meta
act = dict(kv.split("=") for kv in meta.split())["activation"]
f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
     "identity": lambda z: z}[act]
data = np.loadtxt(csv, delimiter=",", skiprows=1)
x, y = data[:, :2] / 6, data[:, 2].astype(int)
layers = len(shapes) // 2
for l in range(1, layers + 1):
    x = x @ params["layer%d.W" % l] + params["layer%d.b" % l]
    if l < layers: x = f(x)
p = np.exp(x - x.max(axis=1, keepdims=True)); p /= p.sum(axis=1, keepdims=True)
got = json.load(open(pred))
rows = got["predictions"]
assert got["classes"] == 3 and len(rows) == len(y), (got["classes"], len(rows))
for i, r in enumerate(rows):
    assert r["index"] == i and r["label"] == y[i], r
    assert r["predicted"] == int(np.argmax(p[i])), (i, r, p[i])
    err = np.max(np.abs(np.array(r["probabilities"]) - p[i]))
    assert err < 1e-5, (i, r["probabilities"], p[i], err)
acc = float(np.mean(np.argmax(p, axis=1) == y))
assert abs(got["accuracy"] - acc) < 1e-12, (got["accuracy"], acc)
print("predict: %d samples' probabilities agree with numpy (float64) to 1e-5; accuracy %.4f" % (len(y), acc))
PY
else
    echo "note: /usr/bin/python3 with numpy is not there: predict's numbers were not checked"
fi

# --- eval on a CSV file: its confusion matrix is predict's rows tallied -------
# The labels of 20 samples of class 0 are made 2, so that the matrix has
# entries off its diagonal even for a model that separates the blobs.
awk -F, -v OFS=, 'NR > 1 && $3 == 0 && n < 20 { $3 = 2; n++ } { print }' "$tmp/blobs.csv" \
    >"$tmp/relabelled.csv"
expect 0 "confusion matrix (rows: true label, columns: predicted label):" -- "$cli" eval \
    --model "$tmp/blobs.tgm" --data "$tmp/relabelled.csv" --label-col 2 --scale 1/6
cp "$tmp/out" "$tmp/eval_csv"
"$cli" predict --model "$tmp/blobs.tgm" --data "$tmp/relabelled.csv" --label-col 2 --scale 1/6 \
    >"$tmp/pred_csv" 2>&1 || fail "predict on relabelled.csv exited $?"
awk -F'[ =]' '/^index=/ { n[$6 "," $4]++; total++; ok += $4 == $6 }
    END { printf "test_accuracy=%.4f\n", ok / total
          print "confusion matrix (rows: true label, columns: predicted label):"
          printf "      "; for (j = 0; j < 3; j++) printf " %5d", j; printf "\n"
          for (i = 0; i < 3; i++) { printf " %5d", i
              for (j = 0; j < 3; j++) printf " %5d", n[i "," j]; printf "\n" } }' \
    "$tmp/pred_csv" >"$tmp/eval_want"
cmp -s "$tmp/eval_csv" "$tmp/eval_want" ||
    fail "eval on a CSV file: $(cat "$tmp/eval_csv") -- predict's rows tallied: $(cat "$tmp/eval_want")"
awk 'NR > 3 { s += $2 + $3 + $4; off += $2 * ($1 == 2) } END { exit !(s == 600 && off >= 1) }' \
    "$tmp/eval_csv" || fail "eval's confusion matrix does not count 600 samples: $(cat "$tmp/eval_csv")"
expect 2 "takes 2 inputs, but $tmp/one.csv has 1 features per sample" -- "$cli" eval \
    --model "$tmp/blobs.tgm" --data "$tmp/one.csv"
expect 1 "blobs.csv:2: label" -- "$cli" eval --model "$tmp/blobs.tgm" --data "$tmp/blobs.csv"
expect 2 "apply to CSV data" -- "$cli" eval --model "$tmp/blobs.tgm" --data "$tmp" --scale 2
expect 2 "--label-col '-1'" -- "$cli" eval --model "$tmp/blobs.tgm" --label-col -1

# --- the progress line on a terminal, none through a pipe ---------------------
if command -v script >/dev/null; then
    script -qec "$(printf '%q ' "$cli" train "${csv[@]}" --layers 2,8,3 --epochs 2 --valid 50)" /dev/null \
        >"$tmp/tty" 2>&1 || fail "train under script exited $?"
    for text in "loading $tmp/blobs.csv ..." "epoch 2/2 [" " left" "evaluating on the test set ..." \
        "evaluating on the validation set ..."; do
        grep -qF -- "$text" "$tmp/tty" || fail "the terminal shows no '$text'"
    done
    "$cli" train "${csv[@]}" --layers 2,8,3 --epochs 2 >"$tmp/pipe" 2>/dev/null
    grep -q $'\r' "$tmp/pipe" && fail "a progress line went into a pipe"
else
    echo "note: script(1) is not installed: the progress line was not checked"
fi

# --- --plot: the format of the extension; one epoch without a warning -------
if command -v gnuplot >/dev/null; then
    expect 0 "test_accuracy=" -- "$cli" train "${csv[@]}" --layers 2,8,3 --epochs 1 --plot "$tmp/one.png"
    grep -qi "warning" "$tmp/out" && fail "a one-epoch --plot printed: $(cat "$tmp/out")"
    head -c 8 "$tmp/one.png" | grep -q PNG || fail "--plot one.png is no PNG"
    expect 0 "test_accuracy=" -- "$cli" train "${csv[@]}" --layers 2,8,3 --epochs 2 --plot "$tmp/two.svg"
    grep -q "<svg" "$tmp/two.svg" || fail "--plot two.svg is no SVG"
    grep -qi "warning" "$tmp/out" && fail "--plot printed: $(cat "$tmp/out")"
    expect 0 "test_accuracy=" -- "$cli" train "${csv[@]}" --layers 2,8,3 --epochs 2 --plot "$tmp/two.PDF"
    head -c 5 "$tmp/two.PDF" | grep -q '%PDF' || fail "--plot two.PDF is no PDF"
fi

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
    expect 0 "test_accuracy=" -- "$cli" train --limit 500 --epochs 1 --plot "$tmp/one.png"
    grep -qi "warning" "$tmp/out" && fail "a one-epoch --plot printed: $(cat "$tmp/out")"
else
    expect 0 "gnuplot is not installed" -- "$cli" train --limit 500 --epochs 1 --plot "$tmp/loss.png"
fi

# --- predict over the test set gives eval's accuracy --------------------------
expect 0 "accuracy=" -- "$cli" predict --model "$tmp/m.tgm"
[ "$(grep -c '^index=' "$tmp/out")" -eq 10000 ] || fail "predict printed $(grep -c '^index=' "$tmp/out") rows, not 10000"
[ "$(tail -n 1 "$tmp/out" | sed 's/^accuracy=/test_accuracy=/')" = "$last" ] ||
    fail "predict says $(tail -n 1 "$tmp/out"), eval $last"
expect 0 '"index": 0, "predicted": ' -- "$cli" predict --model "$tmp/m.tgm" --index 0 --json
expect 2 "--label-col, --no-labels and --scale apply to CSV data" -- "$cli" predict --model "$tmp/m.tgm" --no-labels
expect 2 "the last layer has 5 outputs, but the data has 10 classes" -- "$cli" train --layers 784,30,5 --epochs 1

[ "$failures" -eq 0 ] || exit 1
echo "train_cli: all checks passed"
