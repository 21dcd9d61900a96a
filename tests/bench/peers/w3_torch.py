#!/usr/bin/python3
"""W3 peer: PyTorch (CPU) large-batch MLP, 784-1024-1024-10, relu, softmax
cross-entropy (mean over the batch), plain SGD, float32, on Fashion-MNIST.

Usage: /usr/bin/python3 w3_torch.py THREADS [--batch 1024] [--samples 20480]
                                             [--lr 0.1] [--seed 1]

Weights N(0,1)/sqrt(fan_in), biases N(0,1) (as in W1).  One seeded shuffle into a
new tensor, mini-batches are pre-made row-slice views of it; one warm-up step
(not timed), then --samples samples (whole batches) are timed.  To keep a
repetition short this is a fixed number of samples, not a whole epoch: the
line says samples=N.  fwd_s / bwd_s / upd_s are timed separately.

Output, one line:
peer=torch workload=W3 batch=1024 threads=1 samples=20480 steps=20
  samples_per_s=... train_s=... fwd_s=... bwd_s=... upd_s=... bwd_fwd=...
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
    ap.add_argument("--samples", type=int, default=20480)
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
    steps = max(1, args.samples // B)
    n_used = (steps + 1) * B
    if n_used > X.shape[0]:
        raise SystemExit("--samples too large for one epoch")

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

    fwd_s = bwd_s = upd_s = 0.0
    losses = []
    clock = time.perf_counter
    t_start = None
    for k, (xb, lb) in enumerate(batches):
        if k == 1:
            t_start = clock()
            fwd_s = bwd_s = upd_s = 0.0
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
    train_s = clock() - t_start

    with torch.no_grad():
        pred = forward(torch.from_numpy(xt_np)).argmax(dim=1)
        acc = (pred == torch.from_numpy(labt.astype(np.int64))).double().mean().item()

    print(fmnist.fmt(peer="torch", workload="W3", batch=B, threads=args.threads,
                     samples=steps * B, steps=steps, samples_per_s=steps * B / train_s,
                     train_s=train_s, fwd_s=fwd_s, bwd_s=bwd_s, upd_s=upd_s,
                     bwd_fwd=bwd_s / fwd_s, loss_first=losses[0], loss_last=losses[-1],
                     test_accuracy=acc, peak_rss_mb=fmnist.peak_rss_mb(),
                     torch=torch.__version__))


if __name__ == "__main__":
    main()
