#!/usr/bin/env bash
# Runs the examples of examples/optim, which solve problems with known
# optima through Debian's optimisers, every derivative by tapegrad: HS071
# and a discretised optimal-control problem of 100,001 variables through
# Ipopt (exact sparse constraint Jacobian and Hessian of the Lagrangian),
# the chained Rosenbrock function through liblbfgs. Each program checks its
# optimum itself (exit status 1 otherwise); this test checks the exit
# status and the line saying so. An example whose package was missing when
# the build was configured is skipped, saying so; with none built, the test
# skips (77). Needs TG_BUILD_DIR (set by ctest).
set -euo pipefail
: "${TG_BUILD_DIR:?TG_BUILD_DIR must name the build directory}"
dir=$TG_BUILD_DIR/examples
fail=0 ran=0

# run PROGRAM PACKAGE LINE [ARGS...]: PROGRAM exits 0 and prints LINE.
run() {
    local prog=$1 pkg=$2 line=$3
    shift 3
    if [ ! -x "$dir/$prog" ]; then
        echo "SKIP: $prog is not built ($pkg was not found when the build was configured)"
        return
    fi
    ran=$((ran + 1))
    local out rc=0
    out=$("$dir/$prog" "$@" 2>&1) || rc=$?
    echo "$out"
    if [ "$rc" -ne 0 ] || ! grep -qxF -- "$line" <<<"$out"; then
        echo "FAIL: $prog exited with $rc; want status 0 and the line '$line'"
        fail=1
    fi
}

run ipopt_hs071 coinor-libipopt-dev "optimum f* = 17.0140173 reached"
run ipopt_control coinor-libipopt-dev "optimum f* = 0 reached"
run lbfgs_rosenbrock liblbfgs-dev "minimum f* = 0 reached"
if [ "$ran" -eq 0 ]; then
    echo "SKIP: no optimiser example is built (install coinor-libipopt-dev and liblbfgs-dev, then configure again)"
    exit 77
fi
exit $fail
