#!/usr/bin/env bash
# Regenerates the measured figures of docs/tutorial.md from the current build:
# runs the training commands that the tutorial shows and rewrites the text
# between each pair of markers
#     <!-- figures:NAME ... -->   and   <!-- /figures:NAME -->
# in place. Nothing outside the markers changes, and the file is rewritten
# only when every run succeeded.
#
#     bash docs/tutorial_figures.sh [BUILD_DIR]
#
# BUILD_DIR (default build/release) is configured as a Release build and
# built first when it has no tapegrad program. The dataset is Fashion-MNIST in
# /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist),
# or TG_DATA.
#
# Time: about 4 minutes on the 2-core development machine (3 runs of the
# 15-epoch preset, 2 + TG_FIGURES_SEEDS runs of 10 epochs). Each run is
# killed after TG_FIGURES_TIMEOUT seconds (default 600), which then stops the
# script with the file untouched; TG_FIGURES_SEEDS=4 (default 12) shortens
# the seed sweep.
#
# The figures depend on the machine: another CPU (or another OpenBLAS
# kernel, or another BLAS thread count) adds the products of a matrix in
# another order, so the last digits differ and, as training amplifies them,
# later epochs can differ more. The same machine and build print the same
# lines, which the script checks (seed 1 runs twice).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
data=${TG_DATA:-/usr/share/datasets/fashion-mnist}
limit=${TG_FIGURES_TIMEOUT:-600}
nseeds=${TG_FIGURES_SEEDS:-12}
doc=docs/tutorial.md

if [ ! -x "$build/tapegrad" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTG_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target tapegrad_cli >/dev/null
prog=$build/tapegrad
if [ ! -f "$data/train-images-idx3-ubyte.gz" ] && [ ! -f "$data/train-images-idx3-ubyte" ]; then
    echo "tutorial_figures: no Fashion-MNIST in $data (apt-get install dataset-fashion-mnist)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-figures.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run NAME ARGS...: tapegrad ARGS > $work/NAME, bounded in time.
run() {
    local name=$1
    shift
    echo "tutorial_figures: tapegrad $*" >&2
    if ! timeout "$limit" "$prog" "$@" --data "$data" >"$work/$name" 2>"$work/$name.err"; then
        echo "tutorial_figures: 'tapegrad $*' failed or took more than $limit s:" >&2
        cat "$work/$name.err" >&2
        exit 1
    fi
}

# Field KEY of the lines of file F that start with "epoch=", one per line.
field() { sed -n "s/^epoch=.* $1=\([^ ]*\).*/\1/p" "$2"; }
final() { sed -n 's/^test_accuracy=//p' "$1"; }
rate() { sed -n "s/^train_seconds=.* samples_per_s=\([0-9]*\).*/\1/p" "$1"; }
seconds() { sed -n "s/^train_seconds=\([0-9.]*\).*/\1/p" "$1"; }
max() { sort -g | tail -n 1; }
min() { sort -g | head -n 1; }
# A markdown table row: "| label | v1 | v2 | ... |" from values on stdin.
row() { printf '| %s |' "$1"; while read -r v; do printf ' %s |' "$v"; done; printf '\n'; }
thousands() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }
round4() { awk '{ printf "%.4f\n", $1 }'; }

seeds_args=(--layers 784,100,10 --activation sigmoid --loss mse --optimizer sgd --lr 3.0
    --batch 10 --epochs 10)

run seeds train "${seeds_args[@]}" --seed 1 --save "$work/model.tgm"
run eval eval --model "$work/model.tgm"
if [ "$(final "$work/seeds")" != "$(sed -n 's/^test_accuracy=//p' "$work/eval")" ]; then
    echo "tutorial_figures: eval of the saved model disagrees with the end of training" >&2
    exit 1
fi
run lr1 train "${seeds_args[@]}" --seed 1 --lr 1.0
run f64 train "${seeds_args[@]}" --seed 1 --dtype f64
run best train --preset best --seed 1
run best2 train --preset best --seed 2
run flat train --preset best --seed 1 --lr-decay 1
for s in $(seq 1 "$nseeds"); do run "seed$s" train "${seeds_args[@]}" --seed "$s"; done
if ! diff <(grep -o 'epoch=.*test_accuracy=[^ ]*' "$work/seeds") \
    <(grep -o 'epoch=.*test_accuracy=[^ ]*' "$work/seed1") >/dev/null; then
    echo "tutorial_figures: two runs with seed 1 printed different figures" >&2
    exit 1
fi

# --- the blocks -------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
version=$(sed -n 's/^project(tapegrad VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

{
    echo '```'
    grep '^epoch=' "$work/seeds" | head -n 2
    echo '...'
    grep -E '^(train_seconds|test_accuracy)=' "$work/seeds"
    echo '```'
} >"$work/block-run"

{
    echo '```'
    echo "\$ tapegrad eval --model model.tgm"
    head -n 5 "$work/eval"
    echo '...'
    echo '```'
} >"$work/block-eval"

epochs_row() { seq 1 "$(grep -c '^epoch=' "$1")" | row epoch; }
sep_row() { printf '|---'; for _ in $(seq 1 "$(grep -c '^epoch=' "$1")"); do printf '|---'; done; printf '|\n'; }

best_epochs=$(for s in $(seq 1 "$nseeds"); do field test_accuracy "$work/seed$s" | max; done)
tenth=$(for s in $(seq 1 "$nseeds"); do field test_accuracy "$work/seed$s" | tail -n 1; done)
flat_last=$(field test_accuracy "$work/flat" | tail -n 5)
{
    echo "Measured by \`docs/tutorial_figures.sh\` with tapegrad $version on ${cpu:-an unknown CPU}"
    echo "($(nproc) cores, load average $load when the runs began), float32, one BLAS thread."
    echo "Another CPU gives other last digits (see above); rerun the script to measure yours."
    echo
    echo "**The seeds' network** —"
    echo "\`tapegrad train ${seeds_args[*]} --seed 1\`"
    echo "(weights N(0,1)/sqrt(fan_in), biases N(0,1)):"
    echo
    epochs_row "$work/seeds"
    sep_row "$work/seeds"
    field train_loss "$work/seeds" | round4 | row train_loss
    field test_accuracy "$work/seeds" | row test_accuracy
    echo
    echo "$(seconds "$work/seeds") s of training for the 10 epochs:"
    echo "**$(thousands "$(rate "$work/seeds")") samples/s**."
    echo "Over seeds 1–$nseeds the best epoch reached $(min <<<"$best_epochs")–$(max <<<"$best_epochs")"
    echo "and the tenth $(min <<<"$tenth")–$(max <<<"$tenth")."
    echo "In float64 (\`--dtype f64\`) the best epoch reached $(field test_accuracy "$work/f64" | max)."
    echo "With \`--lr 1.0\` the same network reaches $(final "$work/lr1") after 10 epochs"
    echo "($(field test_accuracy "$work/lr1" | max) at best)."
    echo
    echo "**\`--preset best\`** — 784-256-128-10, relu (He init), softmax cross-entropy,"
    echo "Adam with lr 0.001 decayed by 0.8 per epoch, batches of 64, 15 epochs, seed 1:"
    echo
    epochs_row "$work/best"
    sep_row "$work/best"
    field test_accuracy "$work/best" | row test_accuracy
    echo
    echo "Final **$(final "$work/best")** (seed 2: $(final "$work/best2")); $(seconds "$work/best") s of"
    echo "training for the 15 epochs, **$(thousands "$(rate "$work/best")") samples/s**."
    echo "Without the decay (\`--lr-decay 1\`) the last five epochs range over"
    echo "$(min <<<"$flat_last")–$(max <<<"$flat_last")."
} >"$work/block-measured"

# --- rewrite the tutorial -----------------------------------------------------
cp "$doc" "$work/doc"
for name in run eval measured; do
    if ! grep -q "^<!-- figures:$name " "$work/doc" || ! grep -q "^<!-- /figures:$name -->" "$work/doc"; then
        echo "tutorial_figures: $doc lacks the markers of block '$name'" >&2
        exit 1
    fi
    awk -v name="$name" -v src="$work/block-$name" '
        index($0, "<!-- figures:" name " ") == 1 { print; while ((getline l < src) > 0) print l; skip = 1; next }
        index($0, "<!-- /figures:" name " -->") == 1 { skip = 0 }
        !skip { print }' "$work/doc" >"$work/doc.new"
    mv "$work/doc.new" "$work/doc"
done
cp "$work/doc" "$doc"
echo "tutorial_figures: $doc updated" >&2
