"""L1's PyTorch side (tests/bench/linalg.c describes the work): float64, one
thread, the same three timings at the same sizes, medians (ms) of REPS after
two warm-ups, one key=value line per size. The matrices are PyTorch's own
random draws of the same distribution (the timings do not depend on the
values of a well-conditioned system).
    torch_linalg.py [REPS]
"""
import statistics
import sys
import time

import torch

torch.set_num_threads(1)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 9
gen = torch.Generator().manual_seed(23)
for n in (50, 100, 200, 400):
    a0 = torch.randn(n, n, dtype=torch.float64, generator=gen) + n * torch.eye(n, dtype=torch.float64)
    b0 = torch.randn(n, 1, dtype=torch.float64, generator=gen)
    eye = torch.eye(n, dtype=torch.float64)

    def run(what):
        a = a0.clone().requires_grad_(what > 0)
        b = b0.clone().requires_grad_(what == 1)
        if what < 2:
            x = torch.linalg.solve(a, b)
            if what:
                x.sum().backward()
            return
        s = a @ a.T / n + eye
        (torch.linalg.cholesky(s).sum() + torch.logdet(s)).backward()

    med = []
    for what in range(3):
        ms = []
        for r in range(-2, reps):
            t0 = time.perf_counter()
            run(what)
            if r >= 0:
                ms.append(1e3 * (time.perf_counter() - t0))
        med.append(statistics.median(ms))
    print(f"tool=torch bench=linalg n={n} solve_ms={med[0]:.4f} solve_grad_ms={med[1]:.4f} "
          f"cholesky_logdet_grad_ms={med[2]:.4f}")
