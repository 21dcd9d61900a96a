"""W4 for PyTorch: the GMM objective of tests/gmm_ref.py (vectorised float64
PyTorch, the oracle of tests/test_gmm.sh) on the data of examples/gmm.c,
one thread, timed as the objective alone (no graph recorded) and as the
objective plus its full gradient (autograd, alphas means icf). Medians of
REPS after two warm-ups, one key=value line per size.
    usage: torch_gmm.py [REPS [D K N]...]"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from gmm_ref import data, objective  # noqa: E402  (tests/gmm_ref.py)

torch.set_num_threads(1)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
sizes = [tuple(int(v) for v in sys.argv[i:i + 3]) for i in range(2, len(sys.argv), 3)]
sizes = sizes or [(2, 5, 1000), (10, 25, 1000), (20, 50, 1000), (64, 100, 1000)]
gamma, m = 1.0, 0.0


def median_ms(fn):
    for _ in range(2):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


for d, k, n in sizes:
    alphas, means, icf, x = data(d, k, n)

    def f():
        with torch.no_grad():
            return objective(alphas, means, icf, x, gamma, m).item()

    def grad():
        p = [a.clone().requires_grad_(True) for a in (alphas, means, icf)]
        objective(*p, x, gamma, m).backward()
        return p[0].grad[0].item()

    tf, tg = median_ms(f), median_ms(grad)
    print(f"tool=torch workload=W4 D={d} K={k} N={n} f_ms={tf:.3f} grad_ms={tg:.3f} "
          f"grad_over_f={tg / tf:.2f} reps={reps}", flush=True)
