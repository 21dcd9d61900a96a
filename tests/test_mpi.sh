#!/usr/bin/env bash
# Data-parallel training with MPI (include/tapegrad/mpi.h), on one machine
# over the loopback interface, 2 and 3 ranks on however many cores:
#   1. tests/mpi_equiv under mpirun -np 2 and -np 3: the collectives, and
#      20 float64 steps of N ranks at per-rank batch B against one process
#      at batch N*B (four networks, short last batches included): equal to
#      1e-6 relative, and bit-identical on every rank;
#   2. tapegrad train under mpirun -np 2 --batch 5 against tapegrad train
#      --batch 10 on a small generated dataset: the same epoch lines, one
#      copy of them (rank 0 prints), the saved models equal to 1e-6;
#   3. a diverging training (linear units, lr 1000) under mpirun -np 2:
#      both ranks stop within the timeout, exit non-zero, one message names
#      the step, nothing is saved (tests/mpi_equiv.c checks the library's
#      side: the same step, message and parameters on every rank);
#   4a. a training killed (SIGKILL to mpirun and its ranks) 3 times at
#      random moments and resumed with --resume ends with the model bytes
#      and printed figures of the uninterrupted one;
#   4. one rank given a bad --data path (rank 1, then rank 0): every rank
#      exits non-zero within the timeout, with a message naming the path
#      and the failed rank;
#   4b. ranks started with different --lr, --optimizer, --activation,
#      --seed, --lr-decay, --dtype, --epochs or data (of the same size):
#      every rank stops at the start (no hang), one message naming the
#      option's two values;
#   5. the installed CMake package: a project with find_package(tapegrad
#      COMPONENTS mpi) links tapegrad::tapegrad_mpi and _static and runs.
# Skips (exit 77) when tapegrad was built without MPI or mpirun is missing.
set -uo pipefail
: "${TG_BUILD_DIR:?TG_BUILD_DIR must name the build directory}"
equiv=$TG_BUILD_DIR/tests/mpi_equiv
if [ ! -x "$equiv" ]; then
    echo "SKIP: tapegrad was built without MPI (apt-get install libopenmpi-dev openmpi-bin, then reconfigure)"
    exit 77
fi
if ! command -v mpirun >/dev/null; then
    echo "SKIP: mpirun is not installed (apt-get install openmpi-bin)"
    exit 77
fi

# Loopback TCP only (no shared memory, no InfiniBand, no UCX), any core count.
mpi=(mpirun --oversubscribe --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo
     --mca oob_tcp_if_include lo)
if [ "$(id -u)" -eq 0 ]; then
    mpi+=(--allow-run-as-root)
fi
export OPENBLAS_NUM_THREADS=1
limit=240

work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-mpi.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Under LeakSanitizer (TG_SANITIZE builds): Open MPI's own allocations
# outlive MPI_Finalize and are not ours to report. Suppress leaks whose
# stack passes through MPI's libraries or plugins; for that the stacks must
# be complete (slow unwinding: MPI is built without frame pointers) and the
# plugins stay loaded (no dlclose), so that their frames have names.
printf 'leak:%s\n' libmpi.so libopen-pal.so libopen-rte.so libpmix.so libhwloc.so libevent \
    mca_ libucs libucp libuct libfabric libibverbs libnl >"$work/lsan.supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$work/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
fail=0

# run NAME COMMAND...: runs under the time limit, output in $work/NAME.out; sets rc.
run() {
    local name=$1
    shift
    timeout -k 10 "$limit" "$@" >"$work/$name.out" 2>&1
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "FAIL: $name: still running after ${limit}s (a hang):"
        sed 's/^/    /' "$work/$name.out"
        fail=1
    fi
}

# --- 1. the library: equivalence and collectives
for np in 2 3; do
    run "equiv-$np" "${mpi[@]}" -np $np "$equiv"
    if [ $rc -eq 0 ] && grep -q "^mpi_equiv: $np ranks: ok" "$work/equiv-$np.out"; then
        grep -v '^mpi_equiv:' "$work/equiv-$np.out" | sed 's/^/    /'
        echo "ok: mpi_equiv with $np ranks"
    elif [ $rc -ne 124 ] && [ $rc -ne 137 ]; then
        echo "FAIL: mpi_equiv with $np ranks (exit $rc):"
        sed 's/^/    /' "$work/equiv-$np.out"
        fail=1
    fi
done

# --- 2. the command: 2 ranks x batch 5 = 1 process x batch 10
cli_checks() {
    data=$work/data
    mkdir -p "$data"
    "$equiv" --write-idx "$data" 1003 200 || { echo "FAIL: could not write the dataset"; fail=1; return; }
    common=(train --data "$data" --layers 784,30,10 --dtype f64 --epochs 2 --seed 3)
    run one "$TG_CLI" "${common[@]}" --batch 10 --save "$work/one.tgm"
    [ $rc -eq 0 ] || { echo "FAIL: tapegrad train (exit $rc):"; sed 's/^/    /' "$work/one.out"; fail=1; }
    run two "${mpi[@]}" -np 2 "$TG_CLI" "${common[@]}" --batch 5 --save "$work/two.tgm"
    if [ $rc -ne 0 ]; then
        echo "FAIL: mpirun -np 2 tapegrad train (exit $rc):"
        sed 's/^/    /' "$work/two.out"
        fail=1
    else
        # epoch=E train_loss=L test_accuracy=A (the seconds differ)
        lines() { grep -E '^(epoch=|test_accuracy=)' "$1" | sed 's/ seconds=[0-9.]*//'; }
        if [ "$(grep -c '^epoch=' "$work/two.out")" -ne 2 ] ||
            [ "$(grep -c 'model saved' "$work/two.out")" -ne 1 ]; then
            echo "FAIL: 2 ranks: not exactly one copy of the epoch lines and the save message:"
            sed 's/^/    /' "$work/two.out"
            fail=1
        elif [ "$(lines "$work/one.out")" != "$(lines "$work/two.out")" ]; then
            echo "FAIL: 1 x batch 10 and 2 x batch 5 print different figures:"
            diff <(lines "$work/one.out") <(lines "$work/two.out") | sed 's/^/    /'
            fail=1
        elif ! "$equiv" --compare "$work/one.tgm" "$work/two.tgm" >"$work/compare.out" 2>&1; then
            echo "FAIL: the saved models differ:"
            sed 's/^/    /' "$work/compare.out"
            fail=1
        else
            lines "$work/two.out" | sed 's/^/    /'
            sed "s|$work/||g; s/^/    /" "$work/compare.out"
            echo "ok: mpirun -np 2 tapegrad train --batch 5 = tapegrad train --batch 10"
        fi
    fi

    # --- 3. a diverging training stops both ranks at the same step, one message
    rm -f "$work/diverged.tgm"
    run diverge "${mpi[@]}" -np 2 "$TG_CLI" train --data "$data" --layers 784,30,10 \
        --activation identity --lr 1000 --epochs 2 --batch 5 --save "$work/diverged.tgm"
    if [ $rc -ne 124 ] && [ $rc -ne 137 ]; then
        msgs=$(grep -cE '^tapegrad train: epoch 1, step [0-9]+: .*the learning rate 1000 may be too large' "$work/diverge.out")
        if [ $rc -eq 0 ] || [ "$msgs" -ne 1 ] || [ -e "$work/diverged.tgm" ]; then
            echo "FAIL: a diverging training under mpirun -np 2 (exit $rc, $msgs messages, saved: $([ -e "$work/diverged.tgm" ] && echo yes || echo no)):"
            sed 's/^/    /' "$work/diverge.out"
            fail=1
        else
            grep -E '^tapegrad train:' "$work/diverge.out" | sed 's/^/    /'
            echo "ok: a diverging training stops both ranks with one message (exit $rc)"
        fi
    fi

    # --- 4a. a training killed (every process, SIGKILL) at random moments and
    # resumed with --resume under mpirun -np 2 ends as the uninterrupted one:
    # the same model bytes, the same printed figures. 3 kills.
    resume_checks
    # --- 4. a rank with a bad --data path stops every rank
    for bad in 1 0; do
        args0=(--data "$data") args1=(--data "$data")
        if [ $bad -eq 0 ]; then args0=(--data /nonexistent/fashion); else args1=(--data /nonexistent/fashion); fi
        start=$SECONDS
        run "bad$bad" "${mpi[@]}" -np 1 "$TG_CLI" train "${args0[@]}" --epochs 1 : \
            -np 1 "$TG_CLI" train "${args1[@]}" --epochs 1
        took=$((SECONDS - start))
        [ $rc -eq 124 ] || [ $rc -eq 137 ] && continue
        if [ $rc -eq 0 ]; then
            echo "FAIL: rank $bad had a bad --data path, yet mpirun exited 0"
            sed 's/^/    /' "$work/bad$bad.out"
            fail=1
        elif ! grep -q '/nonexistent/fashion' "$work/bad$bad.out" ||
            ! grep -q "rank $bad of 2 failed to start" "$work/bad$bad.out"; then
            echo "FAIL: rank $bad had a bad --data path; no clear message:"
            sed 's/^/    /' "$work/bad$bad.out"
            fail=1
        else
            grep -E '^tapegrad train:' "$work/bad$bad.out" | sed 's/^/    /'
            echo "ok: a bad --data path on rank $bad stops both ranks (exit $rc, ${took}s)"
        fi
    done

    # --- 4b. ranks started differently stop at the start, naming the option
    # (rank 0 gets the first value, rank 1 the second): one option at a
    # time, the data (same size, other values) too; --epochs once hung.
    awk 'BEGIN { for (i = 0; i < 60; i++) printf "%d,%.3f,%.3f\n", i % 3, i / 60, (i % 7) / 7 }' >"$work/a.csv"
    awk 'BEGIN { for (i = 0; i < 60; i++) printf "%d,%.3f,%.3f\n", i % 3, (i % 5) / 5, i / 60 }' >"$work/b.csv"
    base=(train --layers 2,4,3 --batch 4 --epochs 1)
    local cases=("--lr 0.1|--lr 0.2" "--optimizer sgd|--optimizer adam" "--activation sigmoid|--activation tanh"
                 "--seed 1|--seed 2" "--lr-decay 1|--lr-decay 0.5" "--dtype f32|--dtype f64"
                 "--epochs 1|--epochs 3" "--data $work/a.csv|--data $work/b.csv")
    for c in "${cases[@]}"; do
        local first=${c%%|*} second=${c#*|} data0=() data1=()
        [[ $first == --data* ]] || data0=(--data "$work/a.csv") data1=(--data "$work/a.csv")
        # shellcheck disable=SC2086 # the options split into words on purpose
        run mismatch "${mpi[@]}" -np 1 "$TG_CLI" "${base[@]}" "${data0[@]}" $first : \
            -np 1 "$TG_CLI" "${base[@]}" "${data1[@]}" $second
        [ $rc -eq 124 ] || [ $rc -eq 137 ] && continue
        local want="rank 1 was started with $second"
        [[ $second == --data* ]] && want="rank 1 was started with data of 54 samples"
        if [ $rc -eq 0 ] || ! grep -q -- "$want" "$work/mismatch.out" ||
            ! grep -q "every rank needs the same options and data" "$work/mismatch.out"; then
            echo "FAIL: ranks started with $first and $second (exit $rc): no stop naming it:"
            sed 's/^/    /' "$work/mismatch.out"
            fail=1
        else
            echo "ok: $first / $second stops both ranks: $(grep -o 'rank 1 was started with [^:]*' "$work/mismatch.out")"
        fi
    done
}
resume_checks() {
    local train=(train --data "$data" --layers 784,30,10 --dtype f64 --epochs 2 --seed 3 --batch 5
                 --optimizer momentum --lr 0.05)
    local figs='s/ seconds=[0-9.]*//; /^epoch=/p; /^test_accuracy=/p'
    run resume-ref "${mpi[@]}" -np 2 "$TG_CLI" "${train[@]}" --save "$work/resume-ref.tgm"
    [ $rc -eq 0 ] || { echo "FAIL: mpirun -np 2 reference training (exit $rc)"; fail=1; return; }
    sed -n "$figs" "$work/resume-ref.out" >"$work/resume-ref.fig"
    # The span of a checkpointing run (ms) bounds the kills.
    local t0=$(date +%s%N)
    run resume-full "${mpi[@]}" -np 2 "$TG_CLI" "${train[@]}" --checkpoint "$work/resume-full.tgm" \
        --checkpoint-every 3
    local span=$((($(date +%s%N) - t0) / 1000000))
    local start=$SECONDS kills=0 resumes=0 tries=0 chains=0 pid kids at=""
    # Until 3 kills and 2 resumes (a kill before the first checkpoint resumes
    # nothing), at most 12 chains of at most 30 runs in all.
    while { [ $kills -lt 3 ] || [ $resumes -lt 2 ]; } && [ $chains -lt 12 ]; do
        chains=$((chains + 1))
        rm -f "$work/resume-ck.tgm" "$work/resume-out.tgm"
        : >"$work/resume-printed"
        local chain_kills=0
        while [ $tries -lt 30 ]; do
            tries=$((tries + 1))
            local args=("${train[@]}" --checkpoint "$work/resume-ck.tgm" --checkpoint-every 3
                        --save "$work/resume-out.tgm")
            [ -f "$work/resume-ck.tgm" ] && args+=(--resume "$work/resume-ck.tgm")
            timeout -k 10 "$limit" "${mpi[@]}" -np 2 "$TG_CLI" "${args[@]}" \
                >"$work/resume-part.out" 2>&1 &
            pid=$!
            if [ $chain_kills -lt 2 ]; then
                # in the last 70 % of a run's span: the first 30 % is mostly
                # starting the ranks and reading the data, before any checkpoint
                sleep "$(awk -v r=$RANDOM -v s=$span 'BEGIN { printf "%.3f", (0.3 + 0.7 * r / 32768) * s / 1000 }')"
                # mpirun (under timeout) and its ranks, by their ids.
                kids=$(pgrep -P "$(pgrep -P "$pid" | head -1)" 2>/dev/null)
                if kill -KILL $kids $(pgrep -P "$pid") 2>/dev/null; then
                    kills=$((kills + 1)) chain_kills=$((chain_kills + 1))
                else
                    span=$((span * 2 / 3)) # it ended first: aim earlier
                fi
            fi
            wait "$pid" 2>/dev/null
            rc=$?
            sed -n "$figs" "$work/resume-part.out" >>"$work/resume-printed"
            if grep -q "^tapegrad train: resuming" "$work/resume-part.out"; then
                resumes=$((resumes + 1))
                at+="$(sed -n 's/^tapegrad train: resuming .* at //p' "$work/resume-part.out"); "
            fi
            [ $rc -eq 0 ] && break
        done
        if [ $rc -ne 0 ]; then
            echo "FAIL: mpirun -np 2 kill and resume: exit $rc after $tries runs:"
            sed 's/^/    /' "$work/resume-part.out"
            fail=1
            return
        elif ! cmp -s "$work/resume-ref.tgm" "$work/resume-out.tgm"; then
            echo "FAIL: mpirun -np 2: the model resumed after $chain_kills kills differs from the uninterrupted one"
            fail=1
            return
        elif grep -vxFf "$work/resume-ref.fig" "$work/resume-printed" >"$work/resume-odd"; then
            echo "FAIL: mpirun -np 2 resumed: printed lines the uninterrupted run did not:"
            sed 's/^/    /' "$work/resume-odd"
            fail=1
            return
        elif grep -vxFf "$work/resume-printed" "$work/resume-ref.fig" >"$work/resume-odd"; then
            echo "FAIL: mpirun -np 2 resumed: never printed:"
            sed 's/^/    /' "$work/resume-odd"
            fail=1
            return
        fi
    done
    if [ $kills -lt 3 ] || [ $resumes -lt 2 ]; then
        echo "FAIL: mpirun -np 2: only $kills kills and $resumes resumes in $tries runs"
        fail=1
    else
        echo "ok: mpirun -np 2 killed $kills times, resumed $resumes times: the same model bytes and figures ($((SECONDS - start))s; resumed at: $at)"
    fi
}
if [ -n "${TG_CLI:-}" ] && [ -x "$TG_CLI" ]; then
    cli_checks
else
    echo "note: TG_CLI is not set; the command-line checks are skipped"
fi

# --- 5. the installed package: find_package(tapegrad COMPONENTS mpi)
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$TG_BUILD_DIR/CMakeCache.txt" 2>/dev/null)
san=""
if grep -q '^TG_SANITIZE:BOOL=ON$' "$TG_BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
    san="-fsanitize=address,undefined -fno-omit-frame-pointer"
fi
consumer=$work/consumer
mkdir -p "$consumer/src"
cat >"$consumer/src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(tapegrad_mpi_consumer LANGUAGES C)
find_package(tapegrad 0.1 CONFIG REQUIRED COMPONENTS mpi)
add_executable(mean_shared main.c)
target_link_libraries(mean_shared PRIVATE tapegrad::tapegrad_mpi)
add_executable(mean_static main.c)
target_link_libraries(mean_static PRIVATE tapegrad::tapegrad_mpi_static)
CMAKE
cat >"$consumer/src/main.c" <<'C'
#include <stdio.h>
#include <tapegrad.h>
#include <tapegrad/mpi.h>
int main(void) {
    MPI_Init(NULL, NULL);
    int rank, size, ok = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    tg_params *ps = tg_params_new(TG_F64);
    int64_t shape[1] = {4};
    tg_params_add(ps, "b", 1, shape, NULL);
    double *g = tg_params_grads(ps);
    for (int i = 0; i < 4; i++) g[i] = rank;
    ok = tg_mpi_allreduce_grads(ps, MPI_COMM_WORLD) == TG_OK && g[3] == (size - 1) / 2.0;
    if (rank == 0) printf("mean gradient %g: %s\n", g[3], ok ? "ok" : "wrong");
    tg_params_free(ps);
    MPI_Finalize();
    return !ok;
}
C
if ! cmake --install "$TG_BUILD_DIR" --prefix "$work/prefix" >"$work/install.log" 2>&1; then
    echo "FAIL: cmake --install:"
    sed 's/^/    /' "$work/install.log"
    fail=1
elif ! cmake -S "$consumer/src" -B "$consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
    ${cc:+-DCMAKE_C_COMPILER="$cc"} -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
    >"$work/consumer.log" 2>&1 || ! cmake --build "$consumer/build" >>"$work/consumer.log" 2>&1; then
    echo "FAIL: a CMake project using tapegrad::tapegrad_mpi did not build:"
    sed 's/^/    /' "$work/consumer.log"
    fail=1
else
    for kind in shared static; do
        run "consumer-$kind" "${mpi[@]}" -np 2 "$consumer/build/mean_$kind"
        if [ $rc -eq 0 ] && grep -q "mean gradient 0.5: ok" "$work/consumer-$kind.out"; then
            echo "ok: installed tapegrad::tapegrad_mpi$([ $kind = static ] && echo _static) under mpirun -np 2"
        elif [ $rc -ne 124 ] && [ $rc -ne 137 ]; then
            echo "FAIL: the installed tapegrad_mpi ($kind) under mpirun (exit $rc):"
            sed 's/^/    /' "$work/consumer-$kind.out"
            fail=1
        fi
    done
fi
exit $fail
