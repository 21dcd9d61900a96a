# Sourced by the tests that check a program against a PyTorch script
# (test_higher_torch.sh, test_linalg_torch.sh, test_gmm.sh), and what they
# share.
#   torch_oracle_dump PROG REF
# skips (exit 77) when $TG_BUILD_DIR/tests/PROG is not built or
# /usr/bin/python3 cannot import torch; else sets $ref to tests/REF, makes
# $work (removed on exit) and writes `PROG --dump` to $work/dump, failing
# with PROG's stderr when it exits with an error.
: "${TG_BUILD_DIR:?TG_BUILD_DIR must name the build directory}"
: "${TG_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"

#   torch_oracle_require PROG MODULES HINT
# skips (exit 77) when PROG is not built (HINT says how to build it) or
# /usr/bin/python3 cannot import MODULES (comma-separated).
torch_oracle_require() {
    local prog=$1 modules=$2 hint=$3
    if [ ! -x "$prog" ]; then
        echo "SKIP: $prog is not built$hint"
        exit 77
    fi
    if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c "import $modules" 2>/dev/null; then
        echo "SKIP: /usr/bin/python3 with ${modules//,/ and } is needed for the reference"
        exit 77
    fi
}

torch_oracle_dump() {
    local prog=$TG_BUILD_DIR/tests/$1
    ref=$TG_SOURCE_DIR/tests/$2
    torch_oracle_require "$prog" torch ""
    work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-$1.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    if ! "$prog" --dump >"$work/dump" 2>"$work/err"; then
        echo "FAIL: $1 --dump exited with an error:"
        sed 's/^/    /' "$work/err"
        exit 1
    fi
}

#   torch_oracle_must_refuse KEY FACTOR CONDITION WHAT
# The oracle must notice a wrong entry: the first case (whose fifth field is
# CONDITION, when given) with a nonzero entry on its KEY line, alone, its
# largest entry scaled by 1 + FACTOR, must be refused by REF. Sets fail=1
# and says why otherwise.
torch_oracle_must_refuse() {
    local key=$1 factor=$2 cond=$3 what=$4
    awk -v key="$key" -v f="$factor" -v cond="$cond" '
        $1 == "case" { if (done) exit; keep = (cond == "" || $5 == cond); buf = "" }
        keep && $1 == key && !done {
            k = 0
            for (i = 2; i <= NF; i++) {
                a = $i < 0 ? -$i : $i
                if (a > 0 && (k == 0 || a > m)) { k = i; m = a }
            }
            if (k) { $k = sprintf("%.17g", $k * (1 + f)); done = 1 }
        }
        { buf = buf $0 "\n" }
        END { if (done) printf "%s", buf }' "$work/dump" >"$work/wrong"
    if [ ! -s "$work/wrong" ]; then
        echo "FAIL: no nonzero $what to perturb"
        fail=1
    elif /usr/bin/python3 "$ref" "$work/wrong" >"$work/out"; then
        echo "FAIL: $(basename "$ref") accepted a $what off by $factor relative:"
        sed 's/^/    /' "$work/out"
        fail=1
    fi
}
