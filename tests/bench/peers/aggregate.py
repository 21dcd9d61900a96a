#!/usr/bin/python3
"""Aggregation helper of run_peers.sh (see the format described there).

  aggregate.py median KEY DIR [EXTRA...] < rep lines   -> one kind=config line
      Picks the repetition whose KEY is the median (DIR: max = higher is better,
      min = lower is better; with an even count the better of the two middle
      ones), keeps all its fields, adds KEY_min, KEY_max and reps=N, and puts
      EXTRA key=value pairs first (keys the line already has are not repeated).
  aggregate.py best < kind=config lines                -> kind=best lines
      For each (peer, workload, batch, coretype) the configuration with the most
      repetitions (under screening, the one that was repeated) and among those
      the best primary value (the line's primary=KEY and dir=max|min fields).
"""
import sys


def parse(line):
    kv = []
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            kv.append((k, v))
    return kv


FRONT = ("kind", "peer", "workload", "coretype", "batch", "n", "threads", "blas_threads")


def emit(kv):
    rank = {k: i for i, k in enumerate(FRONT)}
    kv = sorted(kv, key=lambda p: rank.get(p[0], len(FRONT)))  # stable for the rest
    print(" ".join("%s=%s" % (k, v) for k, v in kv), flush=True)


def median(key, direction, extra):
    reps = [parse(l) for l in sys.stdin if l.strip() and "=" in l]
    reps = [r for r in reps if key in dict(r)]
    if not reps:
        return 1
    reps.sort(key=lambda r: float(dict(r)[key]), reverse=(direction == "max"))
    chosen = reps[(len(reps) - 1) // 2]
    vals = [float(dict(r)[key]) for r in reps]
    have = {k for k, _ in chosen}
    head = [("kind", "config")]
    for e in extra:
        k, v = e.split("=", 1)
        if k not in have:
            head.append((k, v))
    head += [("primary", key), ("dir", direction), ("reps", str(len(reps)))]
    tail = [(key + "_min", "%.6g" % min(vals)), (key + "_max", "%.6g" % max(vals))]
    emit(head + [(k, v) for k, v in chosen if k not in ("reps",)] + tail)
    return 0


def best():
    groups = {}
    order = []
    for line in sys.stdin:
        kv = parse(line)
        d = dict(kv)
        if d.get("kind") != "config":
            continue
        g = (d.get("peer"), d.get("workload"), d.get("batch", d.get("n", "")), d.get("coretype"))
        if g not in groups:
            groups[g] = []
            order.append(g)
        groups[g].append(kv)
    for g in order:
        def score(kv):
            d = dict(kv)
            v = float(d[d["primary"]])
            return (int(d.get("reps", 1)), v if d["dir"] == "max" else -v)
        top = max(groups[g], key=score)
        n = len(groups[g])
        emit([("kind", "best")] + [(k, v) for k, v in top if k != "kind"] + [("configs", str(n))])
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "median":
        sys.exit(median(sys.argv[2], sys.argv[3], sys.argv[4:]))
    if len(sys.argv) == 2 and sys.argv[1] == "best":
        sys.exit(best())
    sys.exit(__doc__)
