#!/usr/bin/env python3
"""Summarises frost-from-scratch CSV lines (several files, several seeds) as
the markdown table of docs/from-scratch.md: per strategy, accuracy (mean over
seeds), the paired difference to the control with a 95% t-interval, the
wall-clock speed-up over the control of the same seed (control = 1.00x), and
when blocks froze (median epoch per block over the seeds; '-' never)."""
import csv, statistics, sys
from collections import defaultdict

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}

def interval(xs):
    m = statistics.mean(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, T975.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / len(xs) ** 0.5

runs = defaultdict(dict)  # strategy -> seed -> row
order = []
for path in sys.argv[1:]:
    with open(path) as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            if row["strategy"] not in order:
                order.append(row["strategy"])
            runs[row["strategy"]][row["seed"]] = row

ctl = runs.get("control", {})
print("| strategy | seeds | accuracy | vs control (95% CI) | speed-up (95% CI) | blocks frozen (in epoch 1) | median epoch each block froze (stem, layer1.0 ... layer3.1) |")
print("|---|---|---|---|---|---|---|")
for s in order:
    seeds = sorted(runs[s])
    acc = [float(runs[s][k]["accuracy"]) for k in seeds]
    paired = [k for k in seeds if k in ctl]
    d = [float(runs[s][k]["accuracy"]) - float(ctl[k]["accuracy"]) for k in paired]
    sp = [float(ctl[k]["seconds"]) / float(runs[s][k]["seconds"]) for k in paired]
    frozen = [int(runs[s][k]["frozen_blocks"]) for k in seeds]
    early = [sum(1 for v in runs[s][k]["frozen_at"].split() if v != "-" and float(v) < 1.0)
             for k in seeds]
    cols = list(zip(*[runs[s][k]["frozen_at"].split() for k in seeds]))
    med = []
    for c in cols:
        vals = sorted(float("inf") if v == "-" else float(v) for v in c)
        m = vals[len(vals) // 2]
        med.append("-" if m == float("inf") else f"{m:.2f}")
    dm, dh = interval(d) if d else (float("nan"), float("nan"))
    sm, sh = interval(sp) if sp else (float("nan"), float("nan"))
    print(f"| {s} | {len(seeds)} | {100 * statistics.mean(acc):.2f}% | "
          f"{100 * dm:+.2f} ± {100 * dh:.2f} pt | {sm:.2f}x ± {sh:.2f} | "
          f"{statistics.mean(frozen):.1f} of {len(cols)} ({statistics.mean(early):.1f}) | {' '.join(med)} |")
