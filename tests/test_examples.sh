#!/usr/bin/env bash
# Runs the built examples and checks what they print: the (x + y) * z circuit
# and the gradient-descent demo. Needs TG_BUILD_DIR (set by ctest).
set -euo pipefail
: "${TG_BUILD_DIR:?TG_BUILD_DIR must name the build directory}"
dir=$TG_BUILD_DIR/examples
fail=0

# expect PROGRAM OUTPUT LINE: OUTPUT contains LINE as a whole line.
expect() {
    if ! grep -qxF -- "$3" <<<"$2"; then
        echo "FAIL: $1 did not print the line '$3'; it printed:"
        echo "$2" | sed 's/^/    /'
        fail=1
    fi
}

for prog in expression descent; do
    if [ ! -x "$dir/$prog" ]; then
        echo "SKIP: $dir/$prog is not built (configure with -DTG_BUILD_EXAMPLES=ON)"
        exit 77
    fi
done

out=$("$dir/expression")
expect expression "$out" "f = -12"
expect expression "$out" "df/dx = -4"
expect expression "$out" "df/dy = -4"
expect expression "$out" "df/dz = 3"

out=$("$dir/descent")
expect descent "$out" "step    0: x =  1.000000, y =  4.000000, f = 21.000000, grad = ( 4.000000,  8.000000)"
last=$(tail -n 1 <<<"$out")
if ! grep -qE '^converged after [0-9]+ steps: x = -1\.000000, y = 0\.000000, f = 1\.000000$' <<<"$last"; then
    echo "FAIL: descent ended with '$last', want convergence to x = -1, y = 0, f = 1"
    fail=1
fi
# f must fall at every printed step.
prev=""
while read -r f; do
    if [ -n "$prev" ] && awk -v a="$f" -v b="$prev" 'BEGIN { exit !(a > b) }'; then
        echo "FAIL: descent: f rose from $prev to $f"
        fail=1
    fi
    prev=$f
done < <(sed -n 's/^step .*, f = *\([0-9.]*\),.*/\1/p' <<<"$out")

[ $fail -eq 0 ] && echo "examples: expression and descent print what they should"
exit $fail
