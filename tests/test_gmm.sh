#!/usr/bin/env bash
# examples/gmm.c against an independent float64 PyTorch implementation of the
# ADBench/GradBench GMM objective (tests/gmm_ref.py, autograd gradient): the
# value and the full gradient (alphas, means, icf) must agree to 1e-10
# relative at (D, K, N) = (2, 5, 1000) and (10, 25, 1000), on the same data
# (both generate it from the formula in gmm.c's gen()). The two cases use
# different Wishart parameters so that both prior terms are exercised.
# Then a wrong dump (the value of other parameters) must be rejected, so the
# comparison can fail. Needs TG_BUILD_DIR; skips without /usr/bin/python3 + torch.
set -euo pipefail
: "${TG_BUILD_DIR:?TG_BUILD_DIR must name the build directory}"
: "${TG_SOURCE_DIR:=$(cd "$(dirname "$0")/.." && pwd)}"
prog=$TG_BUILD_DIR/examples/gmm
ref=$TG_SOURCE_DIR/tests/gmm_ref.py
. "$TG_SOURCE_DIR/tests/torch_oracle.sh"
torch_oracle_require "$prog" torch,numpy " (configure with -DTG_BUILD_EXAMPLES=ON)"

work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-gmm.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0

# D K N GAMMA M
cases=("2 5 1000 1.0 0" "10 25 1000 0.8 3")
for c in "${cases[@]}"; do
    # shellcheck disable=SC2086  # the case's five numbers are five arguments
    if ! "$prog" --dump $c >"$work/dump" 2>"$work/err"; then
        echo "FAIL: gmm --dump $c exited with an error:"
        sed 's/^/    /' "$work/err"
        fail=1
        continue
    fi
    # shellcheck disable=SC2086
    /usr/bin/python3 "$ref" $c --check "$work/dump" || fail=1
done

# The oracle must notice a wrong gradient: the dump of m = 3 is not the
# gradient of m = 4 (only the icf part and the value differ).
"$prog" --dump 10 25 1000 0.8 3 >"$work/dump"
if /usr/bin/python3 "$ref" 10 25 1000 0.8 4 --check "$work/dump" >"$work/out"; then
    echo "FAIL: gmm_ref.py accepted the gradient of m = 3 as that of m = 4:"
    sed 's/^/    /' "$work/out"
    fail=1
fi

[ $fail -eq 0 ] && echo "gmm: tapegrad agrees with PyTorch to 1e-10 at both sizes"
exit $fail
