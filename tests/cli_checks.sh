# Sourced by the shell tests of the command line: the program under test
# ($TG_CLI, as cli), a temporary directory removed at exit (tmp), and the
# checks: fail MESSAGE counts a failure; expect STATUS TEXT -- COMMAND...
# runs the command and checks its exit status and that its stdout+stderr
# contain TEXT.
cli=${TG_CLI:?TG_CLI is not set}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

expect() {
    local want=$1 text=$2
    shift 3
    "$@" >"$tmp/out" 2>&1
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$* exited $got, wanted $want: $(head -c 400 "$tmp/out")"
    elif ! grep -qF -- "$text" "$tmp/out"; then
        fail "$*: output lacks '$text': $(head -c 400 "$tmp/out")"
    fi
}
