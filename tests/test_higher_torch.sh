#!/usr/bin/env bash
# Second derivatives of random compositions against PyTorch (issue 12): the
# 50 cases of tests/test_higher_cases.c (random trees over 2-3 float64 leaves,
# from fixed seeds) are printed as text with tapegrad's value, tg_grad(),
# tg_hvp() and tg_hessian(); tests/higher_ref.py rebuilds each tree from the
# text in PyTorch 1.13 and checks all four to 1e-10 relative (per part,
# against the largest entry). Then a dump with one Hessian entry off by 1e-8
# relative must be rejected, so the comparison can fail. Needs TG_BUILD_DIR;
# skips without /usr/bin/python3 + torch.
set -euo pipefail
. "$(dirname "$0")/torch_oracle.sh"
torch_oracle_dump test_higher_cases higher_ref.py
fail=0
/usr/bin/python3 "$ref" "$work/dump" || fail=1

# The oracle must notice a wrong second derivative: the first case with a
# nonzero Hessian, alone, its largest Hessian entry scaled by 1 + 1e-8.
torch_oracle_must_refuse hessian 1e-8 "" "Hessian entry"

[ $fail -eq 0 ] && echo "higher_torch: tapegrad's second derivatives agree with PyTorch to 1e-10"
exit $fail
