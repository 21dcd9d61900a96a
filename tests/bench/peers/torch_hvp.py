"""H1 for PyTorch: the same network loss as tests/bench/hvp_mlp.c, float64,
one thread, timed as the function alone, function + gradient, and function +
Hessian-vector product by double backward (autograd.grad with
create_graph=True, then the gradient of g.v), and forward-mode AD
(torch.autograd.forward_ad) of the network's output along v1. Medians after
two warm-ups."""
import statistics
import sys
import time

import torch
import torch.autograd.forward_ad as fwAD

torch.set_num_threads(1)
B, D0, D1, D2 = 256, 256, 128, 10
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 9
g = torch.Generator().manual_seed(7)
def rnd(*s, scale):
    return (torch.rand(*s, generator=g, dtype=torch.float64) - 0.5) * scale
x, y = rnd(B, D0, scale=2), rnd(B, D2, scale=2)
w1, w2 = rnd(D0, D1, scale=0.2), rnd(D1, D2, scale=0.2)
v1, v2 = rnd(D0, D1, scale=2), rnd(D1, D2, scale=2)

def run(what):
    a = w1.clone().requires_grad_(True)
    b = w2.clone().requires_grad_(True)
    f = 0.5 * ((torch.tanh(x @ a) @ b - y) ** 2).sum() / B
    if what == 1:
        f.backward()
    elif what == 3:
        with fwAD.dual_level():
            out = torch.tanh(x @ fwAD.make_dual(w1, v1)) @ w2
            return fwAD.unpack_dual(out).tangent[0, 0].item()
    elif what == 2:
        ga, gb = torch.autograd.grad(f, (a, b), create_graph=True)
        torch.autograd.grad((ga * v1).sum() + (gb * v2).sum(), (a, b))
    return f.item()

med = []
for what in range(4):
    for _ in range(2):
        run(what)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(what)
        ts.append(time.perf_counter() - t0)
    med.append(statistics.median(ts))
print(f"tool=torch workload=H1 f_ms={1e3*med[0]:.3f} grad_ms={1e3*med[1]:.3f} "
      f"hvp_ms={1e3*med[2]:.3f} jvp_ms={1e3*med[3]:.3f} hvp_over_grad={med[2]/med[1]:.2f} "
      f"grad_over_f={med[1]/med[0]:.2f} reps={reps}")
