"""U1 for PyTorch: forward + backward of y = op(x) on a 1-D float64 tensor of
10^6 elements with dy = 1 (y.backward(ones)), one thread, the same inputs
and ranges as tests/bench/unary_speed.c. Medians after two warm-ups.
    usage: /usr/bin/python3 torch_unary.py [reps] [n] [op...]   (default: all)"""
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 9
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
ops = [("exp", torch.exp, -5, 5), ("log", torch.log, 0.01, 10), ("sin", torch.sin, -5, 5),
       ("cos", torch.cos, -5, 5), ("tan", torch.tan, -1.5, 1.5), ("tanh", torch.tanh, -5, 5),
       ("sigmoid", torch.sigmoid, -5, 5), ("erf", torch.erf, -3, 3),
       ("log1p", torch.log1p, -0.99, 10), ("expm1", torch.expm1, -5, 5),
       ("softplus", F.softplus, -5, 5), ("gelu", F.gelu, -5, 5), ("silu", F.silu, -5, 5)]
i = torch.arange(n, dtype=torch.float64) * 0.6180339887498949
frac = i - torch.floor(i)
ones = torch.ones(n, dtype=torch.float64)
wanted = sys.argv[3:]
for name, fn, lo, hi in ops:
    if wanted and name not in wanted:
        continue
    x = (lo + (hi - lo) * frac).requires_grad_(True)
    ts = []
    for r in range(reps + 2):
        x.grad = None
        t0 = time.perf_counter()
        fn(x).backward(ones)
        if r >= 2:
            ts.append(time.perf_counter() - t0)
    print(f"tool=torch workload=U1 op={name} n={n} fwd_bwd_ms={1e3 * statistics.median(ts):.3f}")
