"""PyTorch's float64 values and derivatives of the linear algebra cases
printed by `test_linalg --dump` (tests/test_linalg.c describes the text), the
oracle of tests/test_linalg_torch.sh.

Each op is written as the function tapegrad defines, in torch.linalg terms:
cholesky of the symmetric part (A + A^T)/2 (tapegrad's contract; equal to A
for the symmetric matrices dumped), cholesky_solve and solve_triangular of
the triangle they read. Then the value, the gradient of f = sum(w * op) by
autograd, the tangent along (va, vb) by torch.autograd.functional.jvp, and
the Hessian-vector product of f by torch.autograd.functional.hvp.

    linalg_ref.py DUMP
        exit 0 when every part of every case agrees to the tolerance, else 1,
        printing the parts that differ. The tolerance of a part is relative
        to its largest entry: |got - want|_inf <= tol |want|_inf with
        tol = 4e-15 * cond (18 eps times the condition number the case was
        made with; a triangular factor's is about cond) for the value, the
        gradient, the tangent and the Hessian-vector product alike (the
        measured errors grow as cond, not cond^2, in all four), except that the values of slogdet and logdet are
        compared at a scale of at least 1 (log|det A| of an orthogonal matrix
        is 0 in exact arithmetic). The worst ratio error / tolerance of each
        part is printed.
"""
import sys

import torch

torch.set_default_dtype(torch.float64)


# log|det A| is 0 for an orthogonal A, where its rounding error is absolute
# (about n eps): the value's scale is at least 1.
LOG_OPS = ("slogdet", "logdet")
TOL = 4e-15


def sym(a):
    return (a + a.transpose(-1, -2)) / 2


def op_fn(name, upper):
    if name == "cholesky":
        return lambda a: torch.linalg.cholesky(sym(a))
    if name == "cholesky_solve":
        return lambda l, b: torch.cholesky_solve(b, torch.tril(l))
    if name == "triangular_solve":
        tri = torch.triu if upper else torch.tril
        return lambda a, b: torch.linalg.solve_triangular(tri(a), b, upper=bool(upper))
    if name == "solve":
        return torch.linalg.solve
    if name == "inverse":
        return torch.linalg.inv
    if name == "det":
        return torch.linalg.det
    if name == "slogdet":
        return lambda a: torch.linalg.slogdet(a)[1]
    if name == "logdet":
        return torch.logdet
    raise ValueError(name)


def parse(path):
    cases, cur = [], None
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "case":
            cur = {"id": int(f[1]), "op": f[2], "upper": int(f[3]), "cond": float(f[4])}
            cases.append(cur)
        elif f[0] in ("a", "b"):
            nd = int(f[1])
            shape = [int(x) for x in f[2:2 + nd]]
            cur[f[0]] = torch.tensor([float(x) for x in f[2 + nd:]]).reshape(shape)
        else:
            cur[f[0]] = torch.tensor([float(x) for x in f[1:]])
    return cases


def main():
    cases = parse(sys.argv[1])
    bad, worst = 0, {}
    for c in cases:
        fn = op_fn(c["op"], c["upper"])
        ins = [c["a"]] + ([c["b"]] if "b" in c else [])
        y = fn(*ins)
        w = c["w"].reshape(y.shape)
        vs = [c["va"].reshape(c["a"].shape)] + ([c["vb"].reshape(c["b"].shape)] if "b" in c else [])

        def f(*xs):
            return (w * fn(*xs)).sum()

        xs = [x.clone().requires_grad_(True) for x in ins]
        grads = torch.autograd.grad(f(*xs), xs)
        _, jv = torch.autograd.functional.jvp(fn, tuple(ins), tuple(vs))
        _, hv = torch.autograd.functional.hvp(f, tuple(ins), tuple(vs))
        want = {"value": y, "grad_a": grads[0], "jvp": jv, "hvp_a": hv[0]}
        if "b" in c:
            want["grad_b"], want["hvp_b"] = grads[1], hv[1]
        cond = c["cond"]
        for part, ref in want.items():
            got = c[part]
            ref = ref.reshape(-1)
            tol = TOL * cond
            scale = ref.abs().max().item()
            if part == "value" and c["op"] in LOG_OPS:
                scale = max(scale, 1.0)  # an absolute error: log|det| may be 0
            err = (got - ref).abs().max().item()
            ratio = err / (tol * scale) if scale > 0 else (0.0 if err == 0 else float("inf"))
            key = (part.split("_")[0], cond)
            worst[key] = max(worst.get(key, 0.0), ratio)
            if not ratio <= 1:
                bad += 1
                print(f"case {c['id']} {c['op']} cond {cond:g} {part}: error {err:.3g} "
                      f"of |{scale:.3g}|, tolerance {tol:.3g} relative")
    print(f"linalg_ref: {len(cases)} cases, {bad} parts differ; worst error / tolerance:")
    for (part, cond), r in sorted(worst.items()):
        print(f"    {part:6} cond {cond:8.0e}: {r:.3g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
