# Sourced by the tests that check a program's `--dump` against a PyTorch
# script (test_higher_torch.sh, test_linalg_torch.sh).
#   torch_oracle_dump PROG REF
# skips (exit 77) when $TG_BUILD_DIR/tests/PROG is not built or
# /usr/bin/python3 cannot import torch; else sets $ref to tests/REF, makes
# $work (removed on exit) and writes `PROG --dump` to $work/dump, failing
# with PROG's stderr when it exits with an error.
: "${TG_BUILD_DIR:?TG_BUILD_DIR must name the build directory}"
: "${TG_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"

torch_oracle_dump() {
    local prog=$TG_BUILD_DIR/tests/$1
    ref=$TG_SOURCE_DIR/tests/$2
    if [ ! -x "$prog" ]; then
        echo "SKIP: $prog is not built"
        exit 77
    fi
    if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        echo "SKIP: /usr/bin/python3 with torch is needed for the reference"
        exit 77
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-$1.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    if ! "$prog" --dump >"$work/dump" 2>"$work/err"; then
        echo "FAIL: $1 --dump exited with an error:"
        sed 's/^/    /' "$work/err"
        exit 1
    fi
}
