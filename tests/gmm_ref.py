"""An independent float64 implementation of the ADBench/GradBench GMM
objective in PyTorch (autograd for the gradient), the oracle of
tests/test_gmm.sh and the peer of the W4 benchmark.

It is written from the definition, not from examples/gmm.c: it centres the
points first (x_i - mu_k, [K,N,D]) and multiplies by L_k with einsum, fills
L_k by assigning into a zero tensor, takes the Frobenius norms from exp(q)
and the strictly-lower entries separately, and uses torch's multigammaln.

    gmm_ref.py D K N GAMMA M --check DUMP
        compares DUMP (the output of `gmm --dump D K N GAMMA M`: the value,
        then the gradient w.r.t. alphas, means, icf, one number a line) with
        this implementation; exit 0 when every part agrees to 1e-10
        relative (|got - want|_inf <= 1e-10 |want|_inf per part), else 1.
"""
import math
import sys

import numpy as np
import torch


def data(d, k, n):
    """The data of examples/gmm.c's gen(): value i (over alphas, means, icf,
    x in that order) is s * (2u - 1), u the top 53 bits of splitmix64
    output i of seed 42 as a fraction; s = 1, 1, 0.5, 2."""
    t = d * (d + 1) // 2
    sizes = [k, k * d, k * t, n * d]
    total = sum(sizes)
    with np.errstate(over="ignore"):
        z = np.uint64(42) + np.arange(1, total + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    v = 2.0 * ((z >> np.uint64(11)).astype(np.float64) * 2.0**-53) - 1.0
    parts, at = [], 0
    for size, scale, shape in zip(sizes, (1.0, 1.0, 0.5, 2.0), ((k,), (k, d), (k, t), (n, d))):
        parts.append(torch.from_numpy(scale * v[at:at + size]).reshape(shape))
        at += size
    return parts


def lower_factors(icf, d):
    """L [K,D,D]: exp(q) on the diagonal, then icf[:, d:] down each column
    in turn below it (column 0 rows 1..d-1, column 1 rows 2..d-1, ...)."""
    k = icf.shape[0]
    L = torch.zeros(k, d, d, dtype=icf.dtype)
    L[:, range(d), range(d)] = torch.exp(icf[:, :d])
    rows = [r for c in range(d) for r in range(c + 1, d)]
    cols = [c for c in range(d) for r in range(c + 1, d)]
    L[:, rows, cols] = icf[:, d:]
    return L


def objective(alphas, means, icf, x, gamma, m):
    n, d = x.shape
    k = alphas.shape[0]
    q = icf[:, :d]
    L = lower_factors(icf, d)
    centred = x[None, :, :] - means[:, None, :]                    # [K,N,D]
    Lx = torch.einsum("krc,knc->knr", L, centred)                  # [K,N,D]
    terms = alphas[:, None] + q.sum(1)[:, None] - 0.5 * (Lx**2).sum(2)
    loglik = (-0.5 * n * d * math.log(2 * math.pi) + torch.logsumexp(terms, 0).sum()
              - n * torch.logsumexp(alphas, 0))
    nw = d + m + 1
    frob = (torch.exp(q)**2).sum() + (icf[:, d:]**2).sum()
    lmgamma = torch.special.multigammaln(torch.tensor(0.5 * nw, dtype=torch.float64), d)
    log_prior = (-0.5 * gamma**2 * frob + m * q.sum()
                 + k * (nw * d * math.log(gamma / math.sqrt(2)) - lmgamma))
    return loglik + log_prior


def value_and_grad(d, k, n, gamma, m):
    alphas, means, icf, x = data(d, k, n)
    params = [p.clone().requires_grad_(True) for p in (alphas, means, icf)]
    f = objective(*params, x, gamma, m)
    f.backward()
    return f.item(), [p.grad.reshape(-1) for p in params]


def check(d, k, n, gamma, m, path):
    want_f, want_g = value_and_grad(d, k, n, gamma, m)
    with open(path) as fh:
        got = torch.tensor([float(line) for line in fh if line.strip()], dtype=torch.float64)
    sizes = [g.numel() for g in want_g]
    if got.numel() != 1 + sum(sizes):
        print(f"FAIL: D={d} K={k} N={n}: {path} holds {got.numel()} numbers, want {1 + sum(sizes)}")
        return 1
    ok = True
    rel = abs(got[0].item() - want_f) / abs(want_f)
    print(f"D={d} K={k} N={n} gamma={gamma} m={m}: objective {got[0].item():.17g} "
          f"(PyTorch {want_f:.17g}), relative error {rel:.2e}")
    ok &= rel <= 1e-10
    at = 1
    for name, want in zip(("alphas", "means", "icf"), want_g):
        part = got[at:at + want.numel()]
        at += want.numel()
        err = (part - want).abs().max().item() / want.abs().max().item()
        print(f"  d/d {name} [{want.numel()}]: max error / max |gradient| = {err:.2e}")
        ok &= err <= 1e-10
    if not ok:
        print(f"FAIL: D={d} K={k} N={n}: tapegrad and PyTorch differ by more than 1e-10 relative")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 8 or sys.argv[6] != "--check":
        sys.exit(__doc__)
    torch.set_num_threads(1)
    D, K, N = (int(a) for a in sys.argv[1:4])
    sys.exit(check(D, K, N, float(sys.argv[4]), float(sys.argv[5]), sys.argv[7]))
