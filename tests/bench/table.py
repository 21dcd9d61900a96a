#!/usr/bin/python3
"""Prints the benchmark table (markdown) from the key=value lines of
tests/bench/run: the kind=best lines of every tool, ours included.

  table.py RESULTS_FILE

One table per OpenBLAS setting. Ratios are tapegrad's figure over the best
peer's (for speeds; higher is better) and over the sgemm limit.
"""

HOW = ("How it is timed, the same for every tool: each process runs a first (cold) "
       "repetition, then %s timed ones of the same work (W1: whole epochs of the training "
       "loop, data loading excluded; W2: one record + sweep, or taping + gradient, from "
       "scratch; W3 and the limits: 10 steps); a figure is the median of those timed "
       "repetitions, for the fastest thread configuration, and the median of %s such "
       "processes. The \"first\" rows are the cold first repetition alone (W1: the first "
       "epoch), which a user pays once per run. Test accuracy is after the first epoch.\n")
import sys

PEERS = [("tapegrad", "tapegrad"), ("torch", "PyTorch"), ("numpy", "numpy"),
         ("fann", "FANN"), ("adolc", "ADOL-C"), ("sgemm", "sgemm limit")]


def parse(path):
    best, meta = {}, {}
    for line in open(path):
        kv = dict(t.split("=", 1) for t in line.split() if "=" in t)
        if kv.get("kind") == "meta":
            meta = kv
        if kv.get("kind") != "best":
            continue
        key = (kv["coretype"], kv["workload"], kv.get("batch", ""), kv["peer"])
        best[key] = kv
    return best, meta


def num(kv, field):
    try:
        return float(kv[field])
    except (KeyError, TypeError, ValueError):
        return None


def fmt(v, unit=""):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return "%.0fk%s" % (v / 1000, unit) if abs(v) >= 10000 else "%.1fk%s" % (v / 1000, unit)
    if abs(v) >= 10:
        return "%.0f%s" % (v, unit)
    return "%.3g%s" % (v, unit)


def row(best, core, work, batch, label, field, higher=True, peers_field=None, unit=""):
    """One table row: field of every tool, and tapegrad's ratios."""
    cells, vals = [], {}
    for peer, _ in PEERS:
        kv = best.get((core, work, batch, peer))
        f = (peers_field or {}).get(peer, field)
        v = num(kv, f) if kv and f else None
        vals[peer] = v
        cells.append(fmt(v, unit))
    ours = vals["tapegrad"]
    others = [v for p, v in vals.items() if p not in ("tapegrad", "sgemm") and v]
    ratio = lim = "–"
    if ours and others:
        b = max(others) if higher else min(others)
        ratio = "%.2f×" % (ours / b if higher else b / ours)
    if ours and vals["sgemm"] and higher:
        lim = "%.0f %%" % (100 * ours / vals["sgemm"])
    return "| %s | %s | %s | %s |" % (label, " | ".join(cells), ratio, lim)


def main():
    best, meta = parse(sys.argv[1])
    cores = sorted({k[0] for k in best}, key=lambda c: (c == "unset", c))
    head = "| workload | " + " | ".join(n for _, n in PEERS) + " | tapegrad vs best peer | vs limit |"
    sep = "|" + "---|" * (len(PEERS) + 3)
    if meta:
        print("Machine: %s, %s cores, AVX-512 %s; OpenBLAS %s, torch %s, numpy %s, FANN %s, "
              "ADOL-C %s; %s; load average at start %s.\n" % (
                  meta.get("cpu", "?").replace("_", " "), meta.get("nproc", "?"),
                  meta.get("avx512", "?"), meta.get("openblas", "?"), meta.get("torch", "?"),
                  meta.get("numpy", "?"), meta.get("fann", "?"), meta.get("adolc", "?"),
                  meta.get("date", "?"), meta.get("loadavg", "?")))
    print(HOW % (meta.get("warm_reps", "3"), meta.get("reps", "3")))
    for core in cores:
        print("### OPENBLAS_CORETYPE=%s\n" % core)
        print(head)
        print(sep)
        for b in ("10", "128"):
            print(row(best, core, "W1", b, "W1 batch %s: samples/s" % b, "samples_per_s"))
            print(row(best, core, "W1", b, "W1 batch %s: first epoch samples/s" % b,
                      "first_samples_per_s"))
            print(row(best, core, "W1", b, "W1 batch %s: first epoch / warm epoch time" % b,
                      "first_over_warm", higher=False, peers_field={"sgemm": None}))
            print(row(best, core, "W1", b, "W1 batch %s: test accuracy" % b, "test_accuracy"))
            print(row(best, core, "W1", b, "W1 batch %s: backward / forward time" % b, "bwd_fwd",
                      higher=False))
            print(row(best, core, "W1", b, "W1 batch %s: peak RSS MB" % b, "peak_rss_mb",
                      higher=False))
        print(row(best, core, "W2", "", "W2: scalar-tape gradient ms (record + sweep)", "total_ms",
                  higher=False, peers_field={"adolc": "adolc_ms", "torch": None}))
        print(row(best, core, "W2", "", "W2: first gradient ms (cold)", "first_total_ms",
                  higher=False, peers_field={"adolc": "first_adolc_ms", "torch": None}))
        print(row(best, core, "W2", "", "W2: plain C function ms", "plain_ms", higher=False))
        print(row(best, core, "W2", "", "W2: hand-written gradient ms", "hand_ms", higher=False))
        print(row(best, core, "W2", "", "W2: scalar-tape gradient / plain C", "ratio_to_plain",
                  higher=False))
        print(row(best, core, "W2", "", "W2: tensor-op version ms", "tensor_ms", higher=False,
                  peers_field={"torch": "total_ms"}))
        print(row(best, core, "W2", "", "W2: tensor-op version, first ms (cold)", "first_tensor_ms",
                  higher=False, peers_field={"torch": "first_total_ms"}))
        print(row(best, core, "W2", "", "W2: bytes per node (per op), recorded", "bytes_per_node",
                  higher=False, peers_field={"adolc": "bytes_per_op"}))
        print(row(best, core, "W2", "", "W2: bytes per node with the sweep's gradients",
                  "swept_bytes_per_node", higher=False, peers_field={"adolc": None}))
        print(row(best, core, "W2", "", "W2: peak RSS MB", "peak_rss_mb", higher=False))
        print(row(best, core, "W3", "1024", "W3 batch 1024: samples/s", "samples_per_s"))
        print(row(best, core, "W3", "1024", "W3 batch 1024: first 10 steps samples/s",
                  "first_samples_per_s"))
        print()


if __name__ == "__main__":
    main()
