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
torch_oracle_must_refuse grad_a 1e-12 1 "gradient entry"

[ $fail -eq 0 ] && echo "linalg_torch: tapegrad's linear algebra agrees with PyTorch to 4e-15 * cond"
exit $fail
