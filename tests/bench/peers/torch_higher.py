"""H2 for PyTorch: the workloads of tests/bench/higher.c, float64, one
thread, timed as there (samples of INNER calls after two warm-up samples;
median per call, range, ratio of medians):
  a  W1's loss (784-100-10 sigmoid with biases, quadratic cost, batch 128):
     function + gradient; function + Hessian-vector product by double
     backward (autograd.grad with create_graph=True, then the gradient of
     g.v); torch.autograd.functional.hvp.
  b  W2's function on a [10^6] tensor through slices: the forward alone
     (recording for autograd, as tapegrad's tape does; and, for information,
     under no_grad); forward-mode AD (torch.autograd.forward_ad) of it along v.
  c  the Rosenbrock sum of 100 variables: function + gradient;
     torch.autograd.functional.hessian (default, one backward per row) and,
     for information, with vectorize=True.
usage: torch_higher.py [samples]"""
import statistics
import sys
import time

import torch
import torch.autograd.forward_ad as fwAD
from torch.autograd.functional import hessian, hvp

torch.set_num_threads(1)
samples = int(sys.argv[1]) if len(sys.argv) > 1 else 9
g = torch.Generator().manual_seed(7)


def rnd(*s, scale):
    return (torch.rand(*s, generator=g, dtype=torch.float64) - 0.5) * scale


B, D0, D1, D2 = 128, 784, 100, 10
x, y = rnd(B, D0, scale=2), rnd(B, D2, scale=1)
shapes = [(D0, D1), (1, D1), (D1, D2), (1, D2)]
params = [rnd(*s, scale=0.2) for s in shapes]
vs = [rnd(*s, scale=2) for s in shapes]


def loss(w1, b1, w2, b2):
    h = torch.sigmoid(x @ w1 + b1)
    return 0.5 * ((torch.sigmoid(h @ w2 + b2) - y) ** 2).sum() / B


def a_grad():
    p = [q.clone().requires_grad_(True) for q in params]
    loss(*p).backward()


def a_double_backward():
    p = [q.clone().requires_grad_(True) for q in params]
    gs = torch.autograd.grad(loss(*p), p, create_graph=True)
    torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(gs, vs)), p)


def a_functional():
    hvp(loss, tuple(params), tuple(vs))


N = 1000000
bx, bv = rnd(N, scale=2), rnd(N, scale=2)


def w2(z):
    a, b = z[:-1], z[1:]
    return (a * b + torch.sin(a) * torch.exp(-b)).sum()


def b_f():
    w2(bx.clone().requires_grad_(True)).item()


def b_plain():
    with torch.no_grad():
        w2(bx).item()


def b_jvp():
    with fwAD.dual_level():
        fwAD.unpack_dual(w2(fwAD.make_dual(bx, bv))).tangent.item()


M = 100
cx = rnd(M, scale=2)


def rosen(z):
    a, b = z[:-1], z[1:]
    return (100 * (b - a * a) ** 2 + (1 - a) ** 2).sum()


def c_grad():
    z = cx.clone().requires_grad_(True)
    rosen(z).backward()


def c_hessian():
    hessian(rosen, cx)


def c_hessian_vec():
    hessian(rosen, cx, vectorize=True)


def measure(fn, inner):
    ts = []
    for s in range(-2, samples):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        if s >= 0:
            ts.append((time.perf_counter() - t0) / inner)
    return statistics.median(ts), min(ts), max(ts)


def fmt(key, m):
    return f"{key}_ms={1e3*m[0]:.4f} {key}_range={1e3*m[1]:.4f}-{1e3*m[2]:.4f}"


ga, db, fh = measure(a_grad, 4), measure(a_double_backward, 4), measure(a_functional, 4)
print(f"tool=torch workload=H2a {fmt('grad', ga)} {fmt('hvp', db)} {fmt('functional_hvp', fh)} "
      f"hvp_over_grad={db[0]/ga[0]:.2f} functional_hvp_over_grad={fh[0]/ga[0]:.2f} "
      f"samples={samples}", flush=True)
bf, bp, bj = measure(b_f, 1), measure(b_plain, 1), measure(b_jvp, 1)
print(f"tool=torch workload=H2b {fmt('f', bf)} {fmt('f_nograd', bp)} {fmt('f_jvp', bj)} "
      f"jvp_over_f={bj[0]/bf[0]:.2f} jvp_over_f_nograd={bj[0]/bp[0]:.2f} "
      f"samples={samples}", flush=True)
cg, ch, cv = measure(c_grad, 400), measure(c_hessian, 4), measure(c_hessian_vec, 4)
print(f"tool=torch workload=H2c {fmt('grad', cg)} {fmt('hessian', ch)} "
      f"{fmt('hessian_vectorize', cv)} hessian_over_grad={ch[0]/cg[0]:.2f} "
      f"samples={samples}", flush=True)
