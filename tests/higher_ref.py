"""PyTorch's second derivatives of the random compositions printed by
`test_higher_cases --dump` (tests/test_higher_cases.c describes the text),
the oracle of tests/test_higher_torch.sh.

Each case's tree is rebuilt from its text alone and evaluated in float64 with
torch ops written from the definitions in include/tapegrad.h (softplus as
logaddexp(x, 0), the losses from their formulas); then the gradient by
torch.autograd.grad, the Hessian by torch.autograd.functional.hessian, and
the Hessian-vector product by double backward (the gradient recorded with
create_graph=True, then the gradient of its dot product with v).

    higher_ref.py DUMP
        exit 0 when, in every case, the value, the gradient, the Hessian-vector
        product and the Hessian each agree with tapegrad's to 1e-10 relative
        (|got - want|_inf <= 1e-10 |want|_inf per part), else 1, printing the
        cases that differ.
"""
import sys

import torch

TOL = 1e-10

UNARY = {
    "exp": torch.exp, "tanh": torch.tanh, "sin": torch.sin, "cos": torch.cos,
    "sigmoid": torch.sigmoid, "softplus": lambda x: torch.logaddexp(x, torch.zeros_like(x)),
    "square": lambda x: x * x, "neg": torch.neg, "atan": torch.atan, "asinh": torch.asinh,
    "erf": torch.erf, "gelu": lambda x: torch.nn.functional.gelu(x),
    "silu": lambda x: x * torch.sigmoid(x), "expm1": torch.expm1, "log": torch.log,
    "sqrt": torch.sqrt, "reciprocal": torch.reciprocal, "log1p": torch.log1p,
}
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "maximum": torch.maximum, "minimum": torch.minimum, "atan2": torch.atan2,
    "hypot": torch.hypot,
}
# Each takes (x, dim): dim None reduces every element.
REDUCE = {
    "sum": lambda x, d: x.sum() if d is None else x.sum(d),
    "mean": lambda x, d: x.mean() if d is None else x.mean(d),
    "logsumexp": lambda x, d: torch.logsumexp(x.reshape(-1) if d is None else x, 0 if d is None else d),
    "norm": lambda x, d: torch.linalg.vector_norm(x, dim=d),
    "var": lambda x, d: torch.var(x, unbiased=False) if d is None else torch.var(x, d, unbiased=False),
    "max": lambda x, d: torch.amax(x) if d is None else torch.amax(x, d),
    "min": lambda x, d: torch.amin(x) if d is None else torch.amin(x, d),
}


def rows(x):
    """B of the losses: the first dimension of a tensor of 2 or more dimensions."""
    return x.shape[0] if x.dim() >= 2 else 1


LOSS = {
    "mse": lambda a, y: 0.5 * ((a - y) ** 2).sum() / rows(a),
    "bce_with_logits": lambda z, y: (-y * torch.nn.functional.logsigmoid(z)
                                     - (1 - y) * torch.nn.functional.logsigmoid(-z)).mean(),
    "softmax_xent": lambda z, y: -(y * torch.log_softmax(z, -1)).sum() / rows(z),
}


def huber(a, y, delta):
    d = (a - y).abs()
    return torch.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)).mean()


def parse(lines):
    """The cases of a dump: dicts with leaves, the node lines, out, v and
    tapegrad's value, grad, hvp, hessian."""
    cases, case = [], None
    for line in lines:
        w = line.split()
        if not w:
            continue
        if w[0] == "case":
            case = {"id": int(w[1]), "leaves": [], "nodes": [], "text": []}
            cases.append(case)
        elif w[0] in ("value", "grad", "hvp", "hessian", "v"):
            case[w[0]] = torch.tensor([float(s) for s in w[1:]], dtype=torch.float64)
        elif w[0] == "out":
            case["out"] = int(w[1])
            case["text"].append(line)
        elif w[1] == "leaf":
            nd = int(w[2])
            shape = [int(s) for s in w[3:3 + nd]]
            vals = [float(s) for s in w[3 + nd:]]
            case["leaves"].append(torch.tensor(vals, dtype=torch.float64).reshape(shape))
            case["text"].append(line)
        else:
            case["nodes"].append(w)
            case["text"].append(line)
    return cases


def evaluate(case, leaves):
    val = list(leaves)
    for w in case["nodes"]:
        assert int(w[0]) == len(val), "node ids must be consecutive"
        kind, a = w[1], w[2:]
        if kind == "u":
            y = UNARY[a[0]](val[int(a[1])])
        elif kind == "b":
            y = BINARY[a[0]](val[int(a[1])], val[int(a[2])])
        elif kind == "c":
            y = torch.tensor(float(a[0]), dtype=torch.float64)
        elif kind == "pow":
            y = val[int(a[0])] ** float(a[1])
        elif kind == "slice":
            x, axis, start, length = val[int(a[0])], int(a[1]), int(a[2]), int(a[3])
            y = x.narrow(axis, start, length)
        elif kind == "permute":
            y = val[int(a[0])].permute(1, 0)
        elif kind == "matmul":
            y = val[int(a[0])] @ val[int(a[1])]
        elif kind == "r":
            y = REDUCE[a[0]](val[int(a[1])], None if a[2] == "all" else int(a[2]))
        elif kind == "l":
            y = LOSS[a[0]](val[int(a[1])], val[int(a[2])])
        elif kind == "huber":
            y = huber(val[int(a[0])], val[int(a[1])], float(a[2]))
        else:
            raise ValueError("unknown node kind " + kind)
        val.append(y)
    return val[case["out"]].reshape(())


def reference(case):
    leaves = [x.clone().requires_grad_(True) for x in case["leaves"]]
    f = evaluate(case, leaves)
    # A leaf the tree does not use has gradient 0 (tapegrad's zero constant).
    grads = torch.autograd.grad(f, leaves, create_graph=True, allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(x) for g, x in zip(grads, leaves)]
    flat_g = torch.cat([g.reshape(-1) for g in grads])
    v = case["v"]
    at, vs = 0, []
    for x in leaves:
        vs.append(v[at:at + x.numel()].reshape(x.shape))
        at += x.numel()
    dot = sum((g * u).sum() for g, u in zip(grads, vs))
    # A gradient that does not depend on the leaves (f linear) has H v = 0.
    hv = (torch.autograd.grad(dot, leaves, allow_unused=True) if dot.requires_grad
          else [None] * len(leaves))
    hv = torch.cat([(h if h is not None else torch.zeros_like(x)).reshape(-1)
                    for h, x in zip(hv, leaves)])
    blocks = torch.autograd.functional.hessian(lambda *xs: evaluate(case, xs),
                                               tuple(case["leaves"]))
    n = flat_g.numel()
    h = torch.cat([torch.cat([blocks[i][j].reshape(leaves[i].numel(), leaves[j].numel())
                              for j in range(len(leaves))], 1)
                   for i in range(len(leaves))], 0).reshape(n * n)
    return {"value": f.detach().reshape(1), "grad": flat_g.detach(), "hvp": hv, "hessian": h}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as fh:
        cases = parse(fh.read().splitlines())
    if not cases:
        print("higher_ref.py: no cases in " + sys.argv[1])
        return 1
    bad, worst = 0, 0.0
    for case in cases:
        want = reference(case)
        errs = []
        for part in ("value", "grad", "hvp", "hessian"):
            got = case[part].reshape(-1)
            if got.numel() != want[part].numel():
                errs.append("%s: %d numbers, want %d" % (part, got.numel(), want[part].numel()))
                continue
            scale = want[part].abs().max().item()
            err = (got - want[part]).abs().max().item()
            rel = err / scale if scale > 0 else err
            worst = max(worst, rel)
            if not rel <= TOL:
                errs.append("%s: |got - want|_inf = %.3g, %.3g relative to |want|_inf = %.3g"
                            % (part, err, rel, scale))
        if errs:
            bad += 1
            print("FAIL: case %d:" % case["id"])
            for e in errs:
                print("    " + e)
            for line in case["text"]:
                print("      " + line)
    print("higher_ref.py: %d of %d cases agree with PyTorch to %g (worst relative difference %.3g)"
          % (len(cases) - bad, len(cases), TOL, worst))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
