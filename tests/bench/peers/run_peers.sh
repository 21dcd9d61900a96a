#!/bin/bash
# run_peers.sh - the peer side of the tapegrad performance benchmark (issue 7).
#
# Usage: tests/bench/peers/run_peers.sh BUILD_DIR
#   Installs what the peers need from Debian (skipped when already installed),
#   builds the C/C++ peers into BUILD_DIR/peers, runs every peer in each of its
#   thread configurations for each OpenBLAS setting (the fastest configuration
#   REPS times, see "Screening"), and prints the results to stdout as key=value
#   lines.  Progress and errors go to stderr.  Takes ~10-15 min on an idle
#   2-core machine (much longer when other jobs load it).
#
# Environment knobs (all optional):
#   PEER_REPS=3                  processes per configuration (median taken)
#   PEER_WARM=3                  timed repetitions inside each process, after
#                                its first (cold) one; see "Timing"
#   PEER_CORETYPES="Haswell unset"  OpenBLAS settings to run: a core name for
#                                OPENBLAS_CORETYPE, or "unset" to remove it
#   PEER_ONLY="..."              run only these peer ids (default: all of
#                                torch_w1 numpy_w1 fann_w1 sgemm_w1 adolc_w2
#                                torch_w2 torch_w3 sgemm_w3)
#   PEER_SAMPLES=N               train W1 tools on N samples instead of 60000
#   PEER_NO_INSTALL=1            do not call apt-get
#   PEER_SCREEN=1                see "Screening" below
#
# OUTPUT FORMAT (stdout).  One line per record, space-separated key=value
# pairs, values never contain spaces; key order is not significant, but lines
# start with kind=, then peer=, workload=, coretype= when present.
#
#   kind=meta date=<UTC ISO> cpu=<model, spaces as _> nproc=N avx512=yes|no
#       openblas=<ver> torch=<ver> numpy=<ver> fann=<ver> adolc=<ver>
#       reps=N coretypes=<list joined by ,> env_coretype=<value found in the
#       environment or unset> loadavg=<1-min load average at the start>
#   kind=config ...   one per peer x configuration x OpenBLAS setting: the
#       repetition whose primary figure is the median of the REPS repetitions,
#       with all of that repetition's own fields, plus
#         coretype=Haswell|unset    OPENBLAS_CORETYPE as run
#         threads=T                 torch.set_num_threads (1 for the others)
#         blas_threads=T            OPENBLAS_NUM_THREADS as run
#         primary=<key> dir=max|min the figure the median/best is taken on
#         reps=N <key>_min=.. <key>_max=..   spread of the primary figure
#   kind=best ...     for each (peer, workload, batch, coretype) the config
#       line with the best primary figure (over the thread configurations; under
#       screening, the configuration that won the screening and was repeated),
#       same fields as that config line plus configs=<how many were tried>.
#   kind=error peer=<id> coretype=.. rc=<exit code> cmd=<command, spaces as _>
#
# Timing, the same for every tool and workload: each process runs a first
# (cold) repetition (W1: the first epoch; W2: the first record + sweep or
# taping + gradient; W3 and the sgemm limit: the first run of STEPS steps),
# reported apart in first_* fields because a user pays it, then PEER_WARM
# timed repetitions of the same work; the figures without a prefix are the
# median over those.  Loading the data is never timed.  Every W1 tool
# reports its test accuracy after the first epoch.  epochs_s lists the
# epoch times of W1 processes, first_over_warm = first epoch / warm median.
#
# The fields per peer (all times in seconds unless the key ends in _ms):
#   W1 (peer=tapegrad|torch|numpy|fann, workload=W1): batch samples steps
#       warm_reps samples_per_s first_samples_per_s epoch_s first_s
#       first_over_warm epochs_s test_accuracy peak_rss_mb; tapegrad, torch
#       and numpy also fwd_s bwd_s bwd_fwd (= bwd_s/fwd_s); torch and numpy
#       upd_s shuffle_s; tapegrad faults (minor page faults per epoch).
#       primary=samples_per_s.  An epoch's time is its training loop (60000
#       samples unless samples=N says otherwise), not data loading.
#   limit (peer=sgemm, workload=W1|W3): batch sizes flops_per_sample steps
#       step_us samples_per_s gflops corename blas_threads.  primary=samples_per_s.
#       W3 rows time 10 steps per repetition (steps=10).
#   W2 (peer=adolc, workload=W2): n f plain_ms hand_ms tape_ms grad_ms adolc_ms
#       buffers adolc_other_ms tape_keep_ms reverse_ms ops locs vals taylors
#       tape_bytes bytes_per_op keep_bytes_per_op max_err peak_rss_mb
#       peak_rss_incore_mb.  primary=adolc_ms (dir=min).
#   W2 (peer=torch, workload=W2): n f fwd_ms bwd_ms total_ms max_err
#       peak_rss_mb.  primary=total_ms (dir=min).
#   W3 (peer=torch, workload=W3): batch samples steps samples_per_s train_s
#       fwd_s bwd_s upd_s bwd_fwd loss_first loss_last test_accuracy
#       peak_rss_mb.  primary=samples_per_s; samples=20480 (not an epoch).
#
# Configurations: torch (W1, W2, W3): set_num_threads {1,2} x
# OPENBLAS_NUM_THREADS {1,2}; numpy and sgemm: OPENBLAS_NUM_THREADS {1,2};
# FANN and ADOL-C: single-threaded, no BLAS (blas_threads=1).  All of them are
# run under every OpenBLAS setting so each table is from one setting.
# Screening (PEER_SCREEN=1, the default): where a peer has several thread
# configurations, each is first run once, and only the fastest of them gets
# the remaining REPS-1 repetitions; so the kind=best line is a median of REPS
# runs and the other config lines say reps=1.  (Oversubscribed configurations,
# e.g. torch with 2 intra-op threads and 2 OpenBLAS threads on 2 cores, can be
# 10x slower, and repeating them would double the run time.)  PEER_SCREEN=0
# runs every configuration REPS times.
set -u
set -o pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(mkdir -p "$1" && cd "$1" && pwd)/peers
mkdir -p "$BUILD"
PY=/usr/bin/python3
REPS=${PEER_REPS:-3}
WARM=${PEER_WARM:-3}
CORETYPES=${PEER_CORETYPES:-"Haswell unset"}
ONLY=${PEER_ONLY:-"torch_w1 numpy_w1 fann_w1 sgemm_w1 adolc_w2 torch_w2 torch_w3 sgemm_w3"}
# tapegrad's own workloads join the same grid when TG_BENCH_BIN names the
# directory of its benchmark programs (tests/bench/run sets it).
OURS=${TG_BENCH_BIN:-}
[ -n "$OURS" ] && [ -z "${PEER_ONLY:-}" ] && ONLY="tapegrad_w1 tapegrad_w2 tapegrad_w3 $ONLY"
W1_SAMPLES=${PEER_SAMPLES:-60000}
ENV_CORETYPE=${OPENBLAS_CORETYPE:-unset}
SCREEN=${PEER_SCREEN:-1}

log() { echo "[run_peers] $*" >&2; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- install
PKGS="python3-torch python3-numpy libfann-dev libadolc-dev libopenblas-dev dataset-fashion-mnist gcc g++ gzip"
if [ "${PEER_NO_INSTALL:-0}" != 1 ]; then
    missing=""
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        log "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update && apt-get install -y --no-install-recommends $missing; } >&2 ||
            { log "apt-get failed"; exit 1; }
    fi
fi

# ---------------------------------------------------------------- build
ADOLC_VER=$(dpkg-query -W -f='${Version}' libadolc-dev 2>/dev/null | sed 's/-[^-]*$//')
log "building peers into $BUILD"
cc -O2 -std=c11 -Wall -o "$BUILD/fann_mlp" "$HERE/fann_mlp.c" -lfloatfann -lm || exit 1
cc -O2 -std=c11 -Wall -o "$BUILD/sgemm_limit" "$HERE/sgemm_limit.c" -lopenblas || exit 1
c++ -O2 -Wall -DADOLC_VER="\"${ADOLC_VER:-2.7}\"" -o "$BUILD/adolc_w2" "$HERE/adolc_w2.cpp" -ladolc || exit 1

# ---------------------------------------------------------------- meta line
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null | sed 's/^[0-9]*://;s/-[^-]*$//;s/+.*$//'; }
CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //;s/[[:space:]]\+/_/g')
if grep -qw avx512f /proc/cpuinfo; then AVX512=yes; else AVX512=no; fi
echo "kind=meta date=$(date -u +%Y-%m-%dT%H:%M:%SZ) cpu=${CPU:-unknown} nproc=$(nproc)" \
     "avx512=$AVX512 openblas=$(ver libopenblas0) torch=$(ver python3-torch)" \
     "numpy=$(ver python3-numpy) fann=$(ver libfann2) adolc=$(ver libadolc2)" \
     "reps=$REPS warm_reps=$WARM coretypes=$(echo $CORETYPES | tr ' ' ,) env_coretype=$ENV_CORETYPE" \
     "loadavg=$(cut -d' ' -f1 /proc/loadavg)"

CONFIGS="$BUILD/configs.txt"
: > "$CONFIGS"

# run_reps ID CORETYPE TORCH_THREADS BLAS_THREADS N OUTFILE CMD...
# Runs CMD N times in $BUILD (so ADOL-C tape files land there) under the given
# OpenBLAS setting, appending its output lines to OUTFILE.  "@T@" in CMD is
# replaced by TORCH_THREADS.  On failure prints a kind=error line, returns 1.
run_reps() {
    local id=$1 core=$2 tthr=$3 bthr=$4 n=$5 out=$6 r rc a
    shift 6
    local cmd=()
    for a in "$@"; do cmd+=("${a//@T@/$tthr}"); done
    for r in $(seq 1 "$n"); do
        if [ "$core" = unset ]; then
            (cd "$BUILD" && env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS="$bthr" "${cmd[@]}") \
                >> "$out" 2> "$BUILD/stderr.txt"
        else
            (cd "$BUILD" && env OPENBLAS_CORETYPE="$core" OPENBLAS_NUM_THREADS="$bthr" "${cmd[@]}") \
                >> "$out" 2> "$BUILD/stderr.txt"
        fi
        rc=$?
        rm -f "$BUILD"/ADOLC-*.tap
        if [ $rc -ne 0 ]; then
            log "FAILED ($rc): $id ${cmd[*]}"
            sed 's/^/[run_peers]   /' "$BUILD/stderr.txt" >&2
            echo "kind=error peer=$id coretype=$core rc=$rc cmd=$(echo "${cmd[*]}" | tr ' ' _)"
            return 1
        fi
    done
}

# primary KEY DIR FILE: the best value of KEY over the lines of FILE, as a
# number that is larger when better (negated for DIR=min).
primary() {
    $PY - "$1" "$2" "$3" <<'PYEOF'
import sys
key, d, path = sys.argv[1:4]
vals = []
for line in open(path):
    kv = dict(t.split("=", 1) for t in line.split() if "=" in t)
    if key in kv:
        vals.append(float(kv[key]) if d == "max" else -float(kv[key]))
print(max(vals) if vals else "-inf")
PYEOF
}

# run_grid ID CORETYPE KEY DIR "T,B T,B ..." CMD...
# Runs the thread configurations (torch threads T, OpenBLAS threads B) of one
# peer, screening them as described at the top, and prints one kind=config
# line per configuration.
run_grid() {
    local id=$1 core=$2 key=$3 dir=$4 grid=$5
    shift 5
    local cfg t b f best="" bestv="" v ncfg
    ncfg=$(echo $grid | wc -w)
    local first=$REPS
    if [ "$SCREEN" = 1 ] && [ "$ncfg" -gt 1 ]; then first=1; fi
    for cfg in $grid; do
        t=${cfg%,*}; b=${cfg#*,}
        f="$BUILD/reps_${id}_${t}_${b}.txt"
        : > "$f"
        log "$id coretype=$core threads=$t blas_threads=$b x$first"
        run_reps "$id" "$core" "$t" "$b" "$first" "$f" "$@" || continue
        v=$(primary "$key" "$dir" "$f")
        if [ -z "$best" ] || $PY -c "import sys; sys.exit(0 if float('$v') > float('$bestv') else 1)"; then
            best=$cfg; bestv=$v
        fi
    done
    if [ "$first" -lt "$REPS" ] && [ -n "$best" ]; then
        t=${best%,*}; b=${best#*,}
        log "$id coretype=$core threads=$t blas_threads=$b x$((REPS - first)) more (fastest)"
        run_reps "$id" "$core" "$t" "$b" $((REPS - first)) "$BUILD/reps_${id}_${t}_${b}.txt" "$@"
    fi
    for cfg in $grid; do
        t=${cfg%,*}; b=${cfg#*,}
        f="$BUILD/reps_${id}_${t}_${b}.txt"
        [ -s "$f" ] || continue
        $PY "$HERE/aggregate.py" median "$key" "$dir" coretype="$core" threads="$t" blas_threads="$b" \
            < "$f" | tee -a "$CONFIGS"
    done
}

TORCH_GRID="1,1 1,2 2,1 2,2"
BLAS_GRID="1,1 1,2"
START=$(date +%s)
for core in $CORETYPES; do
    log "=== OPENBLAS_CORETYPE=$core ==="
    for B in 10 128; do
        want tapegrad_w1 && run_grid tapegrad_w1 "$core" samples_per_s max "$BLAS_GRID" \
            "$OURS/w1_mlp" "$B" --reps "$WARM" --samples "$W1_SAMPLES"
        want torch_w1 && run_grid torch_w1 "$core" samples_per_s max "$TORCH_GRID" \
            $PY "$HERE/torch_mlp.py" "$B" @T@ --reps "$WARM" --samples "$W1_SAMPLES"
        want numpy_w1 && run_grid numpy_w1 "$core" samples_per_s max "$BLAS_GRID" \
            $PY "$HERE/numpy_mlp.py" "$B" --reps "$WARM" --samples "$W1_SAMPLES"
        want fann_w1 && run_grid fann_w1 "$core" samples_per_s max "1,1" \
            "$BUILD/fann_mlp" "$B" --reps "$WARM" --samples "$W1_SAMPLES"
        want sgemm_w1 && run_grid sgemm_w1 "$core" samples_per_s max "$BLAS_GRID" \
            "$BUILD/sgemm_limit" "$B" "$WARM"
    done
    want tapegrad_w2 && run_grid tapegrad_w2 "$core" total_ms min "1,1" "$OURS/w2_scalar" 1000000 "$WARM"
    want tapegrad_w3 && run_grid tapegrad_w3 "$core" samples_per_s max "$BLAS_GRID" \
        "$OURS/w3_large" 10 "$WARM"
    want adolc_w2 && run_grid adolc_w2 "$core" adolc_ms min "1,1" "$BUILD/adolc_w2" 1000000 "$WARM"
    want torch_w2 && run_grid torch_w2 "$core" total_ms min "$TORCH_GRID" \
        $PY "$HERE/torch_w2.py" @T@ --reps "$WARM"
    want torch_w3 && run_grid torch_w3 "$core" samples_per_s max "$TORCH_GRID" \
        $PY "$HERE/w3_torch.py" @T@ --steps 10 --reps "$WARM"
    want sgemm_w3 && run_grid sgemm_w3 "$core" samples_per_s max "$BLAS_GRID" \
        "$BUILD/sgemm_limit" 1024 "$WARM" 784,1024,1024,10 10
done

$PY "$HERE/aggregate.py" best < "$CONFIGS"
log "done in $(( $(date +%s) - START )) s"
