#!/usr/bin/env bash
# The linear algebra ops against PyTorch float64: the cases of
# `test_linalg --dump` (every op of ops/lapack.c, 1x1 to 5x5 and a stack of
# two, condition numbers 1 to 1e8) recomputed by tests/linalg_ref.py: value,
# gradient, forward-mode tangent and Hessian-vector product, each to
# 4e-15 * cond relative. Then a dump with one gradient entry off by 1e-12
# relative (in a case of condition 1) must be rejected, so the comparison
# can fail. Needs TG_BUILD_DIR; skips without /usr/bin/python3 + torch.
set -euo pipefail
. "$(dirname "$0")/torch_oracle.sh"
torch_oracle_dump test_linalg linalg_ref.py
fail=0
/usr/bin/python3 "$ref" "$work/dump" || fail=1

# The first case of condition 1 with a gradient entry off by 1e-12 relative.
awk '$1 == "case" { if (done) exit; keep = ($5 == 1); buf = "" }
     keep && $1 == "grad_a" && !done {
         k = 0
         for (i = 2; i <= NF; i++) { a = $i < 0 ? -$i : $i; if (a > m) { k = i; m = a } }
         if (k) { $k = sprintf("%.17g", $k * (1 + 1e-12)); done = 1 }
     }
     { buf = buf $0 "\n" }
     END { if (done) printf "%s", buf }' "$work/dump" >"$work/wrong"
if [ ! -s "$work/wrong" ]; then
    echo "FAIL: no gradient entry to perturb"
    fail=1
elif /usr/bin/python3 "$ref" "$work/wrong" >"$work/out"; then
    echo "FAIL: linalg_ref.py accepted a gradient entry off by 1e-12 relative:"
    sed 's/^/    /' "$work/out"
    fail=1
fi

[ $fail -eq 0 ] && echo "linalg_torch: tapegrad's linear algebra agrees with PyTorch to 4e-15 * cond"
exit $fail
