#!/usr/bin/python3
"""W3 peer: PyTorch (CPU) large-batch MLP, 784-1024-1024-10, relu, softmax
cross-entropy (mean over the batch), plain SGD, float32, on Fashion-MNIST.

Usage: /usr/bin/python3 w3_torch.py THREADS [--batch 1024] [--steps 10] [--reps 3]
                                             [--lr 0.1] [--seed 1]

Weights N(0,1)/sqrt(fan_in), biases N(0,1) (as in W1).  One seeded shuffle into a
new tensor, mini-batches are pre-made row-slice views of it.  Timed as every
tool in the benchmark (and as tapegrad's w3_large.c): a first (cold)
repetition of --steps steps, reported apart as first_samples_per_s, then
--reps repetitions of --steps steps each; samples_per_s and fwd_s / bwd_s /
upd_s (per repetition, timed separately) are medians over them.  Each step
takes the next batch, so (1 + reps) * steps batches must fit in one epoch.

Output, one line:
peer=torch workload=W3 batch=1024 threads=1 steps=10 warm_reps=3
  samples_per_s=... first_samples_per_s=... train_s=... fwd_s=... bwd_s=... upd_s=... bwd_fwd=...
  loss_first=... loss_last=... test_accuracy=... peak_rss_mb=... torch=...
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("threads", type=int)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_np, lab = fmnist.load("train")
    xt_np, labt = fmnist.load("t10k")
    X = torch.from_numpy(x_np)
    L = torch.from_numpy(lab.astype(np.int64))
    B = args.batch
    steps, reps = max(1, args.steps), max(1, args.reps)
    n_used = (1 + reps) * steps * B
    if n_used > X.shape[0]:
        raise SystemExit("(1 + reps) * steps batches do not fit in one epoch")

    params = []
    for w, b in fmnist.init_params(args.seed, sizes=(784, 1024, 1024, 10)):
        params += [torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()]
    W1, B1, W2, B2, W3, B3 = params

    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(X.shape[0], generator=gen)[:n_used]
    Xs = X.index_select(0, perm)
    Ls = L.index_select(0, perm)
    batches = [(Xs[i:i + B], Ls[i:i + B]) for i in range(0, n_used, B)]

    def forward(xb):
        h = torch.relu(torch.addmm(B1, xb, W1))
        h = torch.relu(torch.addmm(B2, h, W2))
        return torch.addmm(B3, h, W3)

    losses = []
    clock = time.perf_counter
    runs = []
    for r in range(1 + reps):
        fwd_s = bwd_s = upd_s = 0.0
        t_start = clock()
        for xb, lb in batches[r * steps:(r + 1) * steps]:
            t0 = clock()
            loss = F.cross_entropy(forward(xb), lb)
            t1 = clock()
            loss.backward()
            t2 = clock()
            with torch.no_grad():
                for p in params:
                    p.sub_(p.grad, alpha=args.lr)
                    p.grad = None
            t3 = clock()
            fwd_s += t1 - t0
            bwd_s += t2 - t1
            upd_s += t3 - t2
            losses.append(loss.item())
        runs.append(dict(train_s=clock() - t_start, fwd_s=fwd_s, bwd_s=bwd_s, upd_s=upd_s))
    warm = {k: fmnist.median([r[k] for r in runs[1:]]) for k in runs[0]}
    train_s = warm["train_s"]

    with torch.no_grad():
        pred = forward(torch.from_numpy(xt_np)).argmax(dim=1)
        acc = (pred == torch.from_numpy(labt.astype(np.int64))).double().mean().item()

    print(fmnist.fmt(peer="torch", workload="W3", batch=B, threads=args.threads,
                     steps=steps, warm_reps=reps, samples_per_s=steps * B / train_s,
                     first_samples_per_s=steps * B / runs[0]["train_s"],
                     train_s=train_s, fwd_s=warm["fwd_s"], bwd_s=warm["bwd_s"],
                     upd_s=warm["upd_s"], bwd_fwd=warm["bwd_s"] / warm["fwd_s"],
                     loss_first=losses[0], loss_last=losses[-1],
                     test_accuracy=acc, peak_rss_mb=fmnist.peak_rss_mb(),
                     torch=torch.__version__))


if __name__ == "__main__":
    main()
