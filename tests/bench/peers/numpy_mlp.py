#!/usr/bin/python3
"""W1 peer: numpy float32, "fully matrix-based" backprop of a 784-100-10 sigmoid MLP.

Usage: /usr/bin/python3 numpy_mlp.py BATCH [--samples N] [--reps R] [--seed S]
(BLAS threads come from OPENBLAS_NUM_THREADS; numpy uses Debian's libblas.so.3,
which is OpenBLAS when libopenblas0 is the selected alternative.)

One matrix forward and one matrix backward per mini-batch of m rows:
  z1 = X W1 + b1, a1 = s(z1), z2 = a1 W2 + b2, a2 = s(z2)
  delta2 = (a2 - y) * s'(z2)            s'(z) = a (1 - a)
  delta1 = (delta2 W2^T) * s'(z1)
  dW2 = a1^T delta2, db2 = sum_rows delta2, dW1 = X^T delta1, db1 = sum_rows delta1
  w -= eta/m * dW  (quadratic cost averaged over the batch, eta = 3.0)
Same data handling as torch_mlp.py: one seeded shuffle per epoch into a new
array, mini-batches are pre-made row-slice views of it; the timed loop excludes
loading and the shuffle.  fwd_s, bwd_s (deltas and gradients) and upd_s are
timed separately.  Timed as every W1 tool (fmnist.epochs): 1 + R epochs in
one process, the first (cold) one reported apart as first_*, the rest as
medians; test accuracy after the first epoch.

Prints one key=value line like torch_mlp.py with peer=numpy.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402

import numpy as np  # noqa: E402


def sigmoid_(z):
    """In-place logistic function on a float32 array: z <- 1/(1+exp(-z))."""
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += np.float32(1.0)
    np.reciprocal(z, out=z)
    return z


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("batch", type=int)
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--reps", type=int, default=3, help="warm epochs after the first")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eta", type=float, default=3.0)
    args = ap.parse_args()
    np.seterr(over="ignore")  # exp overflow -> inf -> sigmoid 0, as intended

    X, lab = fmnist.load("train")
    Xt, labt = fmnist.load("t10k")
    Y = fmnist.one_hot(lab)
    n = X.shape[0]
    samples = min(args.samples, n)
    (W1, b1), (W2, b2) = fmnist.init_params(args.seed)
    B = args.batch
    eta = np.float32(args.eta)
    one = np.float32(1.0)

    rng = np.random.default_rng(args.seed)
    acc = None

    def epoch():
        nonlocal acc, W1, W2, b1, b2
        t = time.perf_counter()
        perm = rng.permutation(n)[:samples]
        Xs = X[perm]
        Ys = Y[perm]
        batches = [(Xs[i:i + B], Ys[i:i + B]) for i in range(0, samples, B)]
        shuffle_s = time.perf_counter() - t

        fwd_s = bwd_s = upd_s = 0.0
        clock = time.perf_counter
        t_start = clock()
        for xb, yb in batches:
            t0 = clock()
            a1 = xb @ W1
            a1 += b1
            sigmoid_(a1)
            a2 = a1 @ W2
            a2 += b2
            sigmoid_(a2)
            t1 = clock()
            d2 = a2 - yb
            d2 *= a2
            d2 *= one - a2
            d1 = d2 @ W2.T
            d1 *= a1
            d1 *= one - a1
            gW2 = a1.T @ d2
            gb2 = d2.sum(axis=0)
            gW1 = xb.T @ d1
            gb1 = d1.sum(axis=0)
            t2 = clock()
            s = eta / np.float32(xb.shape[0])
            gW1 *= s
            W1 -= gW1
            gW2 *= s
            W2 -= gW2
            gb1 *= s
            b1 -= gb1
            gb2 *= s
            b2 -= gb2
            t3 = clock()
            fwd_s += t1 - t0
            bwd_s += t2 - t1
            upd_s += t3 - t2
        train_s = clock() - t_start
        if acc is None:  # after the first epoch, as every W1 tool reports
            h = sigmoid_(Xt @ W1 + b1)
            o = sigmoid_(h @ W2 + b2)
            acc = float(np.mean(np.argmax(o, axis=1) == labt))
        return dict(train_s=train_s, fwd_s=fwd_s, bwd_s=bwd_s, upd_s=upd_s,
                    shuffle_s=shuffle_s)

    timing = fmnist.epochs(epoch, args.reps, samples)
    assert W1.dtype == np.float32 and b2.dtype == np.float32

    print(fmnist.fmt(peer="numpy", workload="W1", batch=B, samples=samples,
                     steps=-(-samples // B), **timing, test_accuracy=acc,
                     peak_rss_mb=fmnist.peak_rss_mb(), numpy=np.__version__))


if __name__ == "__main__":
    main()
