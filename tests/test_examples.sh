#!/usr/bin/env bash
# Runs the built examples and checks what they print: the (x + y) * z circuit,
# the gradient-descent demo, the logistic regression, the user op, Newton's
# method, the Levenberg-Marquardt curve fit and the Gaussian-process fit.
# Needs TG_BUILD_DIR (set by ctest); the curve fit and the Gaussian process
# are also checked against NumPy when /usr/bin/python3 has it.
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

for prog in expression descent logreg userop newton curve_fit gp; do
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

# logreg: zero parameters give every sample p = 1/2, so the first loss is
# ln 2 = 0.693147...; the loss falls; the data are separable with a margin
# (by construction, around a known line), so the model must classify at
# least 99% of the held-out points right and find that line to within 5
# degrees. (What it prints here is 100% and 0.16 degrees.)
out=$("$dir/logreg")
expect logreg "$out" "epoch  0: loss 0.693147, train accuracy $(sed -n 's/^epoch  0: .*train accuracy //p' <<<"$out")"
prev=""
while read -r l; do
    if [ -n "$prev" ] && ! awk -v a="$l" -v b="$prev" 'BEGIN { exit !(a < b) }'; then
        echo "FAIL: logreg: the loss went from $prev to $l"
        fail=1
    fi
    prev=$l
done < <(sed -n 's/^epoch *[0-9]*: loss \([0-9.]*\),.*/\1/p' <<<"$out")
acc=$(sed -n 's/^test accuracy //p' <<<"$out")
angle=$(sed -n 's/^angle to the true boundary: \([0-9.]*\) degrees$/\1/p' <<<"$out")
if ! awk -v a="$acc" -v g="$angle" 'BEGIN { exit !(a != "" && a >= 0.99 && g != "" && g < 5) }'; then
    echo "FAIL: logreg: test accuracy '$acc' (want >= 0.99), angle '$angle' degrees (want < 5):"
    echo "$out" | sed 's/^/    /'
    fail=1
fi

# userop: the op against the same function of built-in ops (both dtypes, b
# of a's shape and broadcast) and against finite differences; it exits 1
# when one of them disagrees.
if ! out=$("$dir/userop" 2>&1); then
    echo "FAIL: userop exited with an error:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
if [ "$(grep -c '^PASS: ' <<<"$out")" -ne 5 ]; then
    echo "FAIL: userop did not print 5 PASS lines:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
expect userop "$out" "refused: sqdiff: b must have a's shape or one element"

# newton: the first row is f and |grad f| at (-1.2, 1) by hand: f = 2.2^2 +
# 100 * 0.44^2 = 24.2, grad = (-215.6, -88), |grad| = 232.87 (printed to 4 digits). The first step
# solves H d = -g with the hand-derived Hessian [[1330, 480], [480, 200]]:
# d = (880, 13552) / 35600, so row 1 must be (-1.2 + 880/35600, 1 + 13552/35600)
# (this fails if the Hessian is wrong even when the iteration still converges).
# Then (1, 1) to 1e-10 within 25 iterations, as the issue asks.
if ! out=$("$dir/newton" 2>&1); then
    echo "FAIL: newton exited with an error:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
row() { awk -v i="$1" '$1 == i && NF == 5 { print; exit }' <<<"$out"; }
if ! awk -v r0="$(row 0)" -v r1="$(row 1)" 'BEGIN {
        split(r0, a, " "); split(r1, b, " ")
        ok = a[2] == -1.2 && a[3] == 1 && (a[4] - 24.2) ^ 2 < 1e-24 && (a[5] - 232.87) ^ 2 < 0.06 ^ 2
        ok = ok && (b[2] - (-1.2 + 880 / 35600)) ^ 2 < 1e-24 && (b[3] - (1 + 13552 / 35600)) ^ 2 < 1e-24
        exit !ok }'; then
    echo "FAIL: newton: rows 0 and 1 are not f, |grad| at (-1.2, 1) and the hand-computed first Newton step:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
last=$(grep '^converged after' <<<"$out" || true)
if ! awk -v l="$last" 'BEGIN {
        if (split(l, w, " ") != 13) exit 1
        n = w[3]; x = w[7]; y = w[10]; sub(/,$/, "", x); sub(/,$/, "", y)
        exit !(n <= 25 && (x - 1) ^ 2 <= 1e-20 && (y - 1) ^ 2 <= 1e-20) }'; then
    echo "FAIL: newton did not reach (1, 1) to 1e-10 within 25 iterations; it printed:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi

# curve_fit: 50 samples of 2.5 exp(-1.3 t) + 0.5 on [0, 4] with Gaussian noise
# of sigma 0.05. The linearised standard errors of (a, b, c) for that design
# and noise are about (0.025, 0.029, 0.011), so each fitted parameter must lie
# within 4 of them of the truth: 0.1, 0.12, 0.045. The final cost 1/2 |r|^2
# is sigma^2/2 times a chi-square of 47 degrees of freedom, whose 99.9 %
# quantile is 82.7: the cost must be below 0.0025 * 82.7 / 2 = 0.103.
if ! out=$("$dir/curve_fit" 2>&1); then
    echo "FAIL: curve_fit exited with an error:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
pa=$(sed -n 's/^a = \([-0-9.e+]*\) .*/\1/p' <<<"$out")
pb=$(sed -n 's/^b = \([-0-9.e+]*\) .*/\1/p' <<<"$out")
pc=$(sed -n 's/^c = \([-0-9.e+]*\) .*/\1/p' <<<"$out")
cost=$(sed -n 's/^final cost //p' <<<"$out")
if ! awk -v a="$pa" -v b="$pb" -v c="$pc" -v f="$cost" 'BEGIN {
        exit !(a != "" && b != "" && c != "" && f != "" && (a - 2.5) ^ 2 < 0.1 ^ 2 &&
               (b - 1.3) ^ 2 < 0.12 ^ 2 && (c - 0.5) ^ 2 < 0.045 ^ 2 && f < 0.103) }'; then
    echo "FAIL: curve_fit: (a, b, c) = ($pa, $pb, $pc), cost $cost; want within (0.1, 0.12, 0.045)"
    echo "      of (2.5, 1.3, 0.5) and a cost below 0.103. It printed:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
# The cost must fall (or stay) at every printed iteration.
if ! awk '$1 ~ /^[0-9]+$/ && NF == 6 { if (seen && $5 > prev) exit 1; prev = $5; seen = 1 }' <<<"$out"; then
    echo "FAIL: curve_fit: the cost rose between iterations:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
# numpy_reference NAME SCRIPT ARGS...: runs the Python SCRIPT on NAME's
# --data (stdin) with ARGS; it exits 1 after printing what disagrees. Only a
# note without NumPy in /usr/bin/python3.
numpy_reference() {
    local name=$1 script=$2 msg
    shift 2
    if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
        echo "note: no NumPy in /usr/bin/python3; $name not checked against the reference"
        return
    fi
    if ! msg=$("$dir/$name" --data | /usr/bin/python3 -c "$script" "$@" 2>&1); then
        echo "FAIL: $name disagrees with the NumPy reference: $msg"
        fail=1
    fi
}

# An independent fit of the same samples: Gauss-Newton in NumPy with the
# hand-derived Jacobian [exp(-b t), -a t exp(-b t), 1], started at the truth.
# Both find the same least-squares minimum to 1e-8 (the examples stops when a
# step moves p by less than 1e-10 of its size).
numpy_reference curve_fit '
import sys
import numpy as np
t, y = np.loadtxt(sys.stdin, unpack=True)
p = np.array([2.5, 1.3, 0.5])
for _ in range(100):
    a, b, c = p
    e = np.exp(-b * t)
    r = a * e + c - y
    J = np.stack([e, -a * t * e, np.ones_like(t)], axis=1)
    step = np.linalg.lstsq(J, -r, rcond=None)[0]
    p = p + step
    if np.max(np.abs(step) / np.abs(p)) < 1e-14:
        break
a, b, c = p
cost = 0.5 * np.sum((a * np.exp(-b * t) + c - y) ** 2)
got = np.array([float(v) for v in sys.argv[1:4]])
gcost = float(sys.argv[4])
if np.max(np.abs(got - p) / np.abs(p)) > 1e-8 or abs(gcost - cost) > 1e-10 * cost:
    print("got (%s, %s, %s), cost %s; numpy fits (%.12f, %.12f, %.12f), cost %.17g"
          % (*sys.argv[1:5], a, b, c, cost))
    sys.exit(1)
' "$pa" "$pb" "$pc" "$cost"

# gp: Newton on the negative log marginal likelihood of a Gaussian process
# (cholesky, cholesky_solve, logdet; the Hessian through them) must converge
# (exit 0, its last gradient below 1e-9) with the NLL falling at every step.
if ! out=$("$dir/gp" 2>&1); then
    echo "FAIL: gp exited with an error:"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
if ! awk '$1 == "iter" { if (seen && $4 > prev) exit 1; prev = $4; seen = 1 } END { exit !seen }' <<<"$out"; then
    echo "FAIL: gp: the NLL rose between iterations (or no iteration was printed):"
    echo "$out" | sed 's/^/    /'
    fail=1
fi
# An independent NumPy implementation of the same NLL (np.linalg.cholesky
# and triangular solves) and of its gradient from the textbook formula
# dNLL/dtheta_j = 1/2 tr(K^-1 dK_j) - 1/2 alpha^T dK_j alpha: at the start
# and at every iterate gp printed, the NLL to 1e-10 and the gradient to
# 1e-9 (1 + its size), absolute: both are differences of terms of size up to
# N = 40 computed through K, whose condition number reaches 1e5 on the path
# (the measured differences are 6e-12 and 3e-12); at the fit, NumPy's gradient vanishes (below 1e-7) and its
# Hessian (central differences of that gradient) is positive definite, so gp
# stopped at a minimum; the posterior means to 1e-9.
numpy_reference gp '
import sys
import numpy as np
x, y = np.loadtxt(sys.stdin, unpack=True)
n = len(x)
d2 = (x[:, None] - x[None, :]) ** 2
def parts(th):
    l, sf, sn = np.exp(th)
    kf = sf ** 2 * np.exp(-d2 / (2 * l * l))
    return kf, kf + sn ** 2 * np.eye(n), sn
def nll(th):
    _, k, _ = parts(th)
    c = np.linalg.cholesky(k)
    a = np.linalg.solve(c.T, np.linalg.solve(c, y))
    return 0.5 * y @ a + np.sum(np.log(np.diag(c))) + 0.5 * n * np.log(2 * np.pi), a, k
def grad(th):
    kf, k, sn = parts(th)
    _, a, _ = nll(th)
    ki = np.linalg.inv(k)
    dks = [kf * d2 / np.exp(2 * th[0]), 2 * kf, 2 * sn ** 2 * np.eye(n)]
    return np.array([0.5 * np.trace(ki @ dk) - 0.5 * a @ dk @ a for dk in dks])
out = sys.argv[1].splitlines()
bad = []
for line in out:
    f = line.split()
    if f[0] != "iter":
        continue
    v, g, th = float(f[3]), np.array(f[5:8], float), np.array(f[9:12], float)
    want_v, want_g = nll(th)[0], grad(th)
    if abs(v - want_v) > 1e-10 or np.max(np.abs(g - want_g)) > 1e-9 * (1 + np.max(np.abs(want_g))):
        bad.append("iterate %s: nll %r grad %r, numpy %r %r" % (f[1], v, g, want_v, want_g))
gfit = grad(th)
h = np.array([(grad(th + 1e-5 * e) - grad(th - 1e-5 * e)) / 2e-5 for e in np.eye(3)])
if np.max(np.abs(gfit)) > 1e-7:
    bad.append("numpy gradient at the fit %r" % gfit)
if np.min(np.linalg.eigvalsh((h + h.T) / 2)) <= 0:
    bad.append("numpy Hessian at the fit is not positive definite: %r" % h)
_, a, _ = nll(th)
l, sf, _ = np.exp(th)
for line in out:
    if line.startswith("mean at "):
        xs, m = float(line.split()[2].rstrip(":")), float(line.split()[3])
        want = (sf ** 2 * np.exp(-(xs - x) ** 2 / (2 * l * l))) @ a
        if abs(m - want) > 1e-9 * max(1, abs(want)):
            bad.append("mean at %g: %r, numpy %r" % (xs, m, want))
if bad:
    print("; ".join(bad))
    sys.exit(1)
' "$out"

[ $fail -eq 0 ] && echo "examples: expression, descent, logreg, userop, newton, curve_fit and gp print what they should"
exit $fail
