#!/usr/bin/python3
"""W2 peer: PyTorch whole-tensor version of the scalar-tape function, float64.

    f(x) = sum_{i<n-1} (x_i x_{i+1} + sin(x_i) exp(-x_{i+1})),  x_i = cos(0.37 i)

written as (x[:-1]*x[1:] + sin(x[:-1])*exp(-x[1:])).sum(), then backward().

Usage: /usr/bin/python3 torch_w2.py THREADS [--n N] [--reps R]

Timed as every tool in the benchmark: a first (cold) repetition, reported
apart as first_total_ms, then R repetitions whose medians are reported, in
milliseconds:
fwd_ms (building the graph and computing f), bwd_ms (f.backward()), total_ms
(their sum, i.e. one gradient from scratch), plus the gradient check against
the hand-written formula and the peak RSS.

Output, one line:
peer=torch workload=W2 n=1000000 threads=1 reps=5 f=... fwd_ms=... bwd_ms=...
  total_ms=... max_err=... peak_rss_mb=... torch=1.13.0a0
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402  (for peak_rss_mb / fmt)

import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("threads", type=int)
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    n = args.n
    x0 = torch.cos(0.37 * torch.arange(n, dtype=torch.float64))
    fwd, bwd = [], []
    first_ms = 0.0
    f = None
    g = None
    for r in range(args.reps + 1):
        x = x0.clone().requires_grad_()
        t0 = time.perf_counter()
        a, b = x[:-1], x[1:]
        f = (a * b + torch.sin(a) * torch.exp(-b)).sum()
        t1 = time.perf_counter()
        f.backward()
        t2 = time.perf_counter()
        g = x.grad
        if r:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
        else:
            first_ms = 1e3 * (t2 - t0)

    # check against the hand-written gradient
    with torch.no_grad():
        a, b = x0[:-1], x0[1:]
        e = torch.exp(-b)
        ref = torch.zeros_like(x0)
        ref[:-1] += b + torch.cos(a) * e
        ref[1:] += a - torch.sin(a) * e
        err = (g - ref).abs().max().item()

    def med(v):
        v = sorted(v)
        k = len(v)
        return v[k // 2] if k % 2 else 0.5 * (v[k // 2 - 1] + v[k // 2])

    fm, bm = 1e3 * med(fwd), 1e3 * med(bwd)
    tot = 1e3 * med([p + q for p, q in zip(fwd, bwd)])
    print(fmnist.fmt(peer="torch", workload="W2", n=n, threads=args.threads, reps=args.reps,
                     f="%.17g" % f.item(), fwd_ms=fm, bwd_ms=bm, total_ms=tot, first_total_ms=first_ms,
                     max_err="%.3g" % err, peak_rss_mb=fmnist.peak_rss_mb(),
                     torch=torch.__version__))


if __name__ == "__main__":
    main()
