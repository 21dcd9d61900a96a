"""Fashion-MNIST loader shared by the Python peers of the tapegrad benchmark.

Reads the Debian `dataset-fashion-mnist` IDX files (gzip) with gzip + numpy.
Images are returned as float32 in [0, 1] (pixel / 255), labels as uint8.
The directory can be overridden with the FMNIST_DIR environment variable.
"""
import gzip
import os
import resource

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def _read_idx(path, magic, ndim):
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    head = np.frombuffer(raw, dtype=">u4", count=1 + ndim)
    if int(head[0]) != magic:
        raise ValueError("%s: bad IDX magic %#x" % (path, int(head[0])))
    shape = tuple(int(d) for d in head[1:])
    offset = 4 * (1 + ndim)
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def load(split, directory=None):
    """split is 'train' or 't10k'; returns (images float32 [N,784], labels uint8 [N])."""
    d = directory or os.environ.get("FMNIST_DIR", DEFAULT_DIR)
    imgs = _read_idx(os.path.join(d, split + "-images-idx3-ubyte.gz"), 0x00000803, 3)
    labs = _read_idx(os.path.join(d, split + "-labels-idx1-ubyte.gz"), 0x00000801, 1)
    n = imgs.shape[0]
    x = np.empty((n, imgs.shape[1] * imgs.shape[2]), dtype=np.float32)
    np.multiply(imgs.reshape(n, -1), np.float32(1.0 / 255.0), out=x, casting="unsafe")
    return x, labs.copy()


def one_hot(labels, classes=10):
    y = np.zeros((labels.shape[0], classes), dtype=np.float32)
    y[np.arange(labels.shape[0]), labels] = 1.0
    return y


def init_params(seed, sizes=(784, 100, 10)):
    """Weights N(0,1)/sqrt(fan_in) stored [fan_in, fan_out], biases N(0,1), float32."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = rng.standard_normal(fan_out).astype(np.float32)
        params.append((w, b))
    return params


def peak_rss_mb():
    """Peak resident set size of this process in MB (ru_maxrss is KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median(v):
    v = sorted(v)
    k = len(v)
    return v[k // 2] if k % 2 else 0.5 * (v[k // 2 - 1] + v[k // 2])


def epochs(run, reps, samples):
    """The timing every W1 tool follows: calls run() (one epoch, returning a
    dict of seconds with train_s, the epoch's training loop) 1 + reps times
    in this process. The first, cold epoch is reported apart (first_s,
    first_samples_per_s); every other figure is the median over the reps
    warm epochs. Returns the key=value fields."""
    if reps < 1:
        raise SystemExit("--reps must be at least 1")
    runs = [run() for _ in range(1 + reps)]
    warm = runs[1:]
    out = {"warm_reps": reps}
    ep = median([r["train_s"] for r in warm])
    out["samples_per_s"] = samples / ep
    out["first_samples_per_s"] = samples / runs[0]["train_s"]
    out["epoch_s"] = ep
    out["first_s"] = runs[0]["train_s"]
    out["first_over_warm"] = runs[0]["train_s"] / ep
    for k in runs[0]:
        if k != "train_s":
            out[k] = median([r[k] for r in warm])
    if "fwd_s" in out and "bwd_s" in out:
        out["bwd_fwd"] = out["bwd_s"] / out["fwd_s"]
    out["epochs_s"] = ",".join("%.4f" % r["train_s"] for r in runs)
    return out


def fmt(**kv):
    """One machine-readable line of key=value pairs (floats with 6 significant digits)."""
    out = []
    for k, v in kv.items():
        if isinstance(v, float):
            v = "%.6g" % v
        out.append("%s=%s" % (k, v))
    return " ".join(out)
