#!/usr/bin/python3
"""W1 peer: PyTorch (CPU) training of a 784-100-10 sigmoid MLP on Fashion-MNIST.

Usage: /usr/bin/python3 torch_mlp.py BATCH THREADS [--samples N] [--reps R] [--seed S]

Model and training exactly as the tapegrad W1 workload: sigmoid on both layers,
quadratic cost C = 1/2 * sum_outputs (a - y)^2 averaged over the rows of the
mini-batch, plain SGD with eta = 3.0 (so w -= eta/m * sum of per-sample
gradients), weights N(0,1)/sqrt(fan_in), biases N(0,1), float32, one seeded
shuffle per epoch.  The data set is shuffled once per epoch into a new tensor
and the mini-batches are pre-made views (row slices) of it, so the timed loop
is a plain loop over pre-made tensors.

Timing covers the training loop only (not loading, not the shuffle, which is
reported separately as shuffle_s).  Forward (up to the scalar loss), backward
(loss.backward()) and the SGD update are timed separately per step; on CPU the
ops are synchronous so wall-clock stamps between them are exact.  Timed as
every W1 tool (fmnist.epochs): 1 + R epochs in one process, the first (cold)
one reported apart as first_*, the rest as medians; test accuracy after the
first epoch.

Prints one line of key=value pairs, e.g.
peer=torch workload=W1 batch=10 threads=1 samples=60000 steps=6000 warm_reps=3
samples_per_s=... first_samples_per_s=... epoch_s=... first_s=... fwd_s=...
bwd_s=... upd_s=... bwd_fwd=... shuffle_s=... epochs_s=... test_accuracy=...
peak_rss_mb=... torch=1.13.0a0
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("batch", type=int)
    ap.add_argument("threads", type=int)
    ap.add_argument("--samples", type=int, default=60000,
                    help="train on the first N samples of each shuffled epoch")
    ap.add_argument("--reps", type=int, default=3, help="warm epochs after the first")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eta", type=float, default=3.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_np, lab = fmnist.load("train")
    xt_np, labt = fmnist.load("t10k")
    X = torch.from_numpy(x_np)
    Y = torch.from_numpy(fmnist.one_hot(lab))
    Xt = torch.from_numpy(xt_np)
    labt_t = torch.from_numpy(labt.astype(np.int64))
    n = X.shape[0]
    samples = min(args.samples, n)

    (w1, b1), (w2, b2) = fmnist.init_params(args.seed)
    W1 = torch.from_numpy(w1).requires_grad_()
    B1 = torch.from_numpy(b1).requires_grad_()
    W2 = torch.from_numpy(w2).requires_grad_()
    B2 = torch.from_numpy(b2).requires_grad_()
    params = (W1, B1, W2, B2)
    eta = args.eta
    B = args.batch

    gen = torch.Generator().manual_seed(args.seed)
    acc = None

    def epoch():
        nonlocal acc
        t = time.perf_counter()
        perm = torch.randperm(n, generator=gen)[:samples]
        Xs = X.index_select(0, perm)
        Ys = Y.index_select(0, perm)
        batches = [(Xs[i:i + B], Ys[i:i + B]) for i in range(0, samples, B)]
        shuffle_s = time.perf_counter() - t

        fwd_s = bwd_s = upd_s = 0.0
        clock = time.perf_counter
        t_start = clock()
        for xb, yb in batches:
            t0 = clock()
            a1 = torch.sigmoid(torch.addmm(B1, xb, W1))
            a2 = torch.sigmoid(torch.addmm(B2, a1, W2))
            loss = (a2 - yb).pow(2).sum() * (0.5 / xb.shape[0])
            t1 = clock()
            loss.backward()
            t2 = clock()
            with torch.no_grad():
                for p in params:
                    p.sub_(p.grad, alpha=eta)
                    p.grad = None
            t3 = clock()
            fwd_s += t1 - t0
            bwd_s += t2 - t1
            upd_s += t3 - t2
        train_s = clock() - t_start
        if acc is None:  # after the first epoch, as every W1 tool reports
            with torch.no_grad():
                h = torch.sigmoid(torch.addmm(B1, Xt, W1))
                o = torch.sigmoid(torch.addmm(B2, h, W2))
                acc = (o.argmax(dim=1) == labt_t).double().mean().item()
        return dict(train_s=train_s, fwd_s=fwd_s, bwd_s=bwd_s, upd_s=upd_s,
                    shuffle_s=shuffle_s)

    timing = fmnist.epochs(epoch, args.reps, samples)
    print(fmnist.fmt(peer="torch", workload="W1", batch=B, threads=args.threads,
                     samples=samples, steps=-(-samples // B), **timing, test_accuracy=acc,
                     peak_rss_mb=fmnist.peak_rss_mb(), torch=torch.__version__))


if __name__ == "__main__":
    main()
