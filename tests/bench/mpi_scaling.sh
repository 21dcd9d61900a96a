#!/usr/bin/env bash
# mpi_scaling.sh - samples/s of `tapegrad train` on 2 MPI ranks against 1
# process with the same global batch (the update is the same; see
# include/tapegrad/mpi.h), one epoch of Fashion-MNIST's 60,000 training
# samples, float32.
#
# Usage: bash tests/bench/mpi_scaling.sh BUILD_DIR [REPS]
#   BUILD_DIR holds a tapegrad built with MPI; REPS (default 5) runs of each
#   configuration, 1 process and 2 ranks alternating, so that a change in
#   the machine's load hits both alike. Prints one key=value line per run
#   (kind=run) and per configuration (kind=summary: the medians and their
#   ratio), with the 1-minute load average, to stdout.
#
# Configurations (per-rank batch on 2 ranks; twice that on 1 process):
#   seeds     784-100-10 sigmoid, quadratic cost, SGD eta 3.0: 2 x 10 vs 1 x 20
#   seeds100  the same network, 2 x 100 vs 1 x 200
#   best      --preset best (784-256-128-10 relu, cross-entropy, Adam): 2 x 64 vs 1 x 128
# Each rank uses one BLAS thread; mpirun's defaults otherwise (shared memory
# between the two ranks, one core each), plus the words of MPIRUN_ARGS, e.g.
# MPIRUN_ARGS="--bind-to none --mca mpi_yield_when_idle 1" (waiting ranks
# yield the core instead of spinning: better on a machine busy with other
# work). CONFIGS selects configurations (default: seeds seeds100 best).
set -euo pipefail
build=${1:?usage: mpi_scaling.sh BUILD_DIR [REPS]}
reps=${2:-5}
cli=$build/tapegrad
data=${TG_DATA:-/usr/share/datasets/fashion-mnist}
[ -x "$cli" ] || { echo "no $cli" >&2; exit 2; }
[ -x "$build/tests/mpi_equiv" ] || { echo "$build was built without MPI" >&2; exit 2; }
[ -d "$data" ] || { echo "no dataset at $data (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
export OPENBLAS_NUM_THREADS=1
mpi=(mpirun -np 2)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
read -r -a extra <<<"${MPIRUN_ARGS:-}"
mpi+=("${extra[@]}")

load() { cut -d' ' -f1 /proc/loadavg; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# rate OUTPUT: the samples_per_s of a train run's last lines
rate() { sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p' <<<"$1"; }

echo "kind=meta date=$(date -u +%FT%TZ) nproc=$(nproc) reps=$reps loadavg=$(load)" \
    "mpi=$(mpirun --version 2>/dev/null | head -1 | tr ' ' '_') mpirun_args=$(tr " " _ <<<"${MPIRUN_ARGS:-}")"
for config in ${CONFIGS:-seeds seeds100 best}; do
    case $config in
        seeds) args=() b=10 ;;
        seeds100) args=() b=100 ;;
        best) args=(--preset best) b=64 ;;
    esac
    one=() two=()
    for ((i = 1; i <= reps; i++)); do
        l0=$(load)
        out=$("$cli" train --data "$data" "${args[@]}" --epochs 1 --batch $((2 * b)))
        r1=$(rate "$out")
        out=$("${mpi[@]}" "$cli" train --data "$data" "${args[@]}" --epochs 1 --batch $b)
        r2=$(rate "$out")
        one+=("$r1") two+=("$r2")
        echo "kind=run config=$config rep=$i one_batch=$((2 * b)) one_samples_per_s=$r1" \
            "two_batch=$b two_samples_per_s=$r2 loadavg=$l0"
    done
    m1=$(printf '%s\n' "${one[@]}" | median)
    m2=$(printf '%s\n' "${two[@]}" | median)
    echo "kind=summary config=$config one_samples_per_s=$m1 two_samples_per_s=$m2" \
        "ratio=$(awk -v a="$m2" -v b="$m1" 'BEGIN {printf "%.2f", a / b}') loadavg=$(load)"
done
