#!/usr/bin/env python3
"""The tables and picture of docs/data-parallel-link.md from a finished
`scripts/bench-distributed.sh --link` run (standard library only).

    python3 scripts/link_report.py out/link [--svg docs/data-parallel-link.svg]

Reads, per <rate>/seed<S>/: run/results.csv (frost-train's per-strategy
results), rank0.txt (its log: each strategy's 'gradients all-reduced: X MiB
per rank'), link.txt (the link's own tx byte counters of both namespaces), and
<rate>/report/summary.csv when `frost-train --report` made one (the paired
accuracy intervals and the frontier at each strategy's own cost).

Prints markdown: (1) per rate and strategy, step time, speed-up, frost's
bytes per step and accuracy; (2) per process, the link's counters against
frost's count; (3) the cost model (a model, not a measurement): a run's time
T(N, R) = C + W * 2(N-1)/N * 8 / R with C its measured time on the unshaped
link (validation passes included, as in the speed-up), W its all-reduced bytes (frost's count), N hosts, R the link
rate; checked against the shaped runs at N = 2, then predicted for N = 8, 64.
"""
import csv
import math
import os
import re
import sys
from collections import defaultdict

RATE_BITS = {"none": None}


def rate_bits(name):
    if name == "none":
        return None
    m = re.fullmatch(r"([0-9.]+)(k|m|g)?bit", name)
    if not m:
        raise SystemExit(f"link_report: rate directory '{name}' is not RATE like 200mbit or none")
    return float(m.group(1)) * {"k": 1e3, "m": 1e6, "g": 1e9, None: 1}[m.group(2)]


def t95(n):
    # two-sided 95 % Student t for n-1 degrees of freedom (n <= 11 here)
    table = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306,
             10: 2.262, 11: 2.228}
    return table.get(n, 1.96)


def mean_ci(xs):
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, float("nan")
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    return m, t95(n) * sd / math.sqrt(n)


def read_seed(d):
    rows = {r["strategy"]: r for r in csv.DictReader(open(os.path.join(d, "run", "results.csv")))}
    mib, name = {}, None
    for line in open(os.path.join(d, "rank0.txt")):
        m = re.match(r"== ([^:]+):", line)
        if m:
            name = m.group(1)
        m = re.search(r"gradients all-reduced: ([0-9.]+) MiB per rank", line)
        if m and name:
            mib[name] = float(m.group(1))
    link = dict(kv.split("=", 1) for kv in open(os.path.join(d, "link.txt")).read().split())
    # frost-train's own summary of the seed: each strategy's accuracy minus
    # the frontier's (full-<E>ep and full, interpolated) at its measured time
    # on this link
    front = {}
    sp = os.path.join(d, "run", "summary.csv")
    if os.path.exists(sp):
        for x in csv.DictReader(open(sp)):
            if x.get("vs_frontier_mean") and x.get("frontier") != "is the frontier":
                front[x["strategy"]] = float(x["vs_frontier_mean"])
    rows["__front__"] = front
    return rows, mib, link


def fmt(x, p=2):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{p}f}"


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    root = args[0]
    svg = args[args.index("--svg") + 1] if "--svg" in args else None
    frozen_dir = args[args.index("--frozen") + 1] if "--frozen" in args else None
    rates = sorted((r for r in os.listdir(root) if r != "cache" and os.path.isdir(os.path.join(root, r))),
                   key=lambda r: -(rate_bits(r) or 1e12))
    data = {}  # rate -> seed -> (rows, mib, link)
    for r in rates:
        for s in sorted(os.listdir(os.path.join(root, r))):
            d = os.path.join(root, r, s)
            if s.startswith("seed") and os.path.exists(os.path.join(d, "link.txt")) and \
                    os.path.exists(os.path.join(d, "run", "results.csv")):
                data.setdefault(r, {})[int(s[4:])] = read_seed(d)
    strategies = []
    for r in data.values():
        for rows, _, _ in r.values():
            for k in rows:
                if k not in strategies and k != "__front__":
                    strategies.append(k)

    # (1) per rate and strategy
    print("| link | strategy | seeds | step ms | speed-up (min-max) | frost MB/step | test acc % | vs full [95% CI] |"
          " vs frontier at own cost [95% CI] |")
    print("|---|---|---:|---:|---|---:|---:|---|---|")
    speed = defaultdict(dict)  # strategy -> rate -> mean speed-up
    for r in rates:
        seeds = data.get(r, {})
        summ = {}
        sp = os.path.join(root, r, "report", "summary.csv")
        if os.path.exists(sp):
            summ = {x["strategy"]: x for x in csv.DictReader(open(sp))}
        for st in strategies:
            step_ms, sus, mbs, accs, diffs, fronts = [], [], [], [], [], []
            for seed, (rows, mib, link) in sorted(seeds.items()):
                if st not in rows:
                    continue
                x = rows[st]
                steps = float(x["steps"])
                step_ms.append(1000 * (float(x["measured_s"]) - float(x["validation_s"] or 0)) / steps)
                if x["speedup"]:
                    sus.append(float(x["speedup"]))
                if st in mib:
                    mbs.append(mib[st] * 2 ** 20 / 1e6 / steps)
                accs.append(float(x["test_accuracy"]))
                if st in rows["__front__"]:
                    fronts.append(rows["__front__"][st])
                if "full" in rows:
                    diffs.append(float(x["test_accuracy"]) - float(rows["full"]["test_accuracy"]))
            if not step_ms:
                continue
            su = sum(sus) / len(sus) if sus else float("nan")
            speed[st][r] = su
            dm, dh = mean_ci(diffs) if diffs else (float("nan"), float("nan"))
            front = "n/a"
            if st in summ and summ[st].get("vs_frontier_mean"):
                f = summ[st]
                lo, hi = f.get("vs_frontier_lo"), f.get("vs_frontier_hi")
                front = f"{float(f['vs_frontier_mean']):+.2f}" + (
                    f" [{float(lo):+.2f}, {float(hi):+.2f}]" if lo and hi else "") + \
                    (f" ({f['frontier']})" if f.get("frontier") else "")
            elif st in summ and summ[st].get("frontier"):
                front = summ[st]["frontier"]
            elif fronts:
                fm, fh = mean_ci(fronts)
                front = f"{fm:+.2f}" + (f" [{fm - fh:+.2f}, {fm + fh:+.2f}]" if not math.isnan(fh) else "")
            ci = f" [{dm - dh:+.2f}, {dm + dh:+.2f}]" if not math.isnan(dh) else ""
            print(f"| {r} | {st} | {len(step_ms)} | {sum(step_ms) / len(step_ms):.1f} | "
                  f"{su:.2f}x ({min(sus):.2f}-{max(sus):.2f}) | "
                  f"{fmt(sum(mbs) / len(mbs) if mbs else None, 3)} | {sum(accs) / len(accs):.2f} | "
                  f"{dm:+.2f}{ci} | {front} |")

    accuracy_over_seeds(data, strategies)

    # (2) the link's counters against frost's count, per process
    print()
    print("| link | seed | rank 1 sent (counter) MB | frost's count x 2(N-1)/N MB | ratio | rank 0 sent MB |"
          " rank 0 minus weight broadcasts MB | ratio | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for r in rates:
        for seed, (rows, mib, link) in sorted(data.get(r, {}).items()):
            frost = sum(mib.values()) * 2 ** 20  # x 2(N-1)/N = 1 for N = 2
            # every run's GradientSync broadcasts rank 0's weights once (rank 1
            # sends none of it): every parameter, 4 bytes each = full's bytes per step
            per_full = mib["full"] * 2 ** 20 / float(rows["full"]["steps"]) if "full" in mib else 0
            bcast = per_full * len(mib)
            a, b = float(link["tx_a"]), float(link["tx_b"])
            ratios += [b / frost, (a - bcast) / frost]
            print(f"| {r} | {seed} | {b / 1e6:.1f} | {frost / 1e6:.1f} | {b / frost:.4f} | {a / 1e6:.1f} | "
                  f"{(a - bcast) / 1e6:.1f} | {(a - bcast) / frost:.4f} | {float(link['seconds']):.0f} |")

    # (3) the cost model
    base = data.get("none")
    if base:
        print()
        C, W = defaultdict(list), defaultdict(list)
        for seed, (rows, mib, link) in base.items():
            for st, x in rows.items():
                if st == "__front__":
                    continue
                if st in mib:
                    # all of the run's measured time, validation passes included: the
                    # speed-up column is measured that way too
                    C[st].append(float(x["measured_s"]))
                    W[st].append(mib[st] * 2 ** 20)
        C = {k: sum(v) / len(v) for k, v in C.items()}
        W = {k: sum(v) / len(v) for k, v in W.items()}

        def T(st, n, rbits):
            return C[st] + (W[st] * 2 * (n - 1) / n * 8 / rbits if rbits else 0.0)

        print("Model check at N = 2, per shaped run (speed-up over full, measured vs model). C and W of the")
        print("same seed's unshaped run; a seed without one uses seed-independent strategies only (W within")
        print("1 % of the unshaped runs': an adaptive criterion decides differently per seed):")
        print()
        print("| link | seed | strategy | measured | model |")
        print("|---|---:|---|---:|---:|")
        for r in rates:
            rb = rate_bits(r)
            if rb is None:
                continue
            for seed, (rows, mib, link) in sorted(data.get(r, {}).items()):
                if "full" not in rows:
                    continue
                if seed in base:
                    brows, bmib, _ = base[seed]
                    Cs = {k: float(v["measured_s"]) for k, v in brows.items() if k in bmib}
                    Ws = {k: bmib[k] * 2 ** 20 for k in Cs}
                else:
                    Cs = {k: C[k] for k in C if k in mib and abs(mib[k] * 2 ** 20 - W[k]) <= 0.01 * W[k]}
                    Ws = {k: W[k] for k in Cs}
                if "full" not in Cs:
                    continue
                tf = Cs["full"] + Ws["full"] * 8 / rb
                for st in strategies:
                    if st in Cs and st in rows and st != "full" and rows[st].get("speedup"):
                        print(f"| {r} | {seed} | {st} | {float(rows[st]['speedup']):.2f}x | "
                              f"{tf / (Cs[st] + Ws[st] * 8 / rb):.2f}x |")
        print()
        print("MODEL (not measured): speed-up over full fine-tuning, each host with the same per-host batch")
        print("and compute as measured here, ring all-reduce, no overlap of compute and communication:")
        print()
        hdr = [(n, rb) for n in (2, 8, 64) for rb in (10e9, 1e9, 100e6)]
        print("| strategy | " + " | ".join(f"N={n}, {rb / 1e9:g} Gbit/s" for n, rb in hdr) + " |")
        print("|---|" + "---:|" * len(hdr))
        for st in strategies:
            if st in C and st != "full":
                print(f"| {st} | " + " | ".join(f"{T('full', n, rb) / T(st, n, rb):.2f}x" for n, rb in hdr) + " |")
        print()
        print("Compute C (s per run, unshaped) and bytes W (MB per run, frost's count):",
              ", ".join(f"{k} {C[k]:.1f} s / {W[k] / 1e6:.0f} MB" for k in C))
        if svg:
            write_svg(svg, strategies, speed, rates, C, W, T)
            print(f"\npicture: {svg}")
    if frozen_dir:
        frozen_table(frozen_dir)


def accuracy_over_seeds(data, strategies):
    """Accuracy does not depend on the link (the same seed trains bit for bit
    the same at every rate; checked here): one row per strategy over every
    seed run at any rate, paired differences against full with a 95 % t
    interval."""
    by_seed = {}
    for r, seeds in data.items():
        for seed, (rows, _, _) in seeds.items():
            acc = {k: float(v["test_accuracy"]) for k, v in rows.items() if k != "__front__"}
            if seed in by_seed:
                for k in acc.keys() & by_seed[seed].keys():
                    if acc[k] != by_seed[seed][k]:
                        raise SystemExit(f"link_report: seed {seed}, {k}: test accuracy differs between "
                                         f"rates ({acc[k]} vs {by_seed[seed][k]}); runs are not deterministic")
                by_seed[seed].update(acc)
            else:
                by_seed[seed] = acc
    print()
    print(f"Accuracy over seeds {sorted(by_seed)} (identical at every link rate for a seed, so pooled):")
    print()
    print("| strategy | seeds | test acc % (mean) | vs full, paired [95% CI] |")
    print("|---|---:|---:|---|")
    for st in strategies:
        accs = [a[st] for a in by_seed.values() if st in a]
        diffs = [a[st] - a["full"] for a in by_seed.values() if st in a and "full" in a]
        if not accs:
            continue
        dm, dh = mean_ci(diffs) if diffs else (float("nan"), float("nan"))
        ci = f" [{dm - dh:+.2f}, {dm + dh:+.2f}]" if not math.isnan(dh) else ""
        print(f"| {st} | {len(accs)} | {sum(accs) / len(accs):.2f} | {dm:+.2f}{ci} |")


def frozen_table(root):
    """`bench-distributed.sh --link --frozen K,...`: per rate and K, rank 1's
    link counter (it sends gradients and collectives only; rank 0 also the
    weight broadcast and the store) against frost's count."""
    print()
    print("| link | blocks frozen (stem = block 0) | frost's count MB | rank 1 sent (counter) MB | ratio |")
    print("|---|---:|---:|---:|---:|")
    for r in sorted(os.listdir(root)):
        d = os.path.join(root, r)
        if r == "cache" or not os.path.isdir(d):
            continue
        for run in sorted((x for x in os.listdir(d) if x.startswith("frozen")), key=lambda x: int(x[6:])):
            try:
                link = dict(kv.split("=", 1) for kv in open(os.path.join(d, run, "link.txt")).read().split())
                text = open(os.path.join(d, run, "rank0.txt")).read()
            except OSError:
                continue
            m = re.search(r"gradients all-reduced: ([0-9.]+) MiB per rank", text)
            if not m:
                continue
            frost = float(m.group(1)) * 2 ** 20
            b = float(link["tx_b"])
            ratio = f"{b / frost:.3f}" if frost > 0 else "n/a"
            print(f"| {r} | {run[6:]} | {frost / 1e6:.2f} | {b / 1e6:.2f} | {ratio} |")


def write_svg(path, strategies, speed, rates, C, W, T):
    w, h, l, r_, t, b = 720, 420, 70, 170, 40, 60
    xmin, xmax = math.log10(20e6), math.log10(20e9)
    ymax = 1.0
    for st in C:
        if st != "full":
            ymax = max(ymax, T("full", 64, 20e6) / T(st, 64, 20e6))
    for st in speed:
        ymax = max([ymax] + [v for v in speed[st].values() if not math.isnan(v)])
    ymax = math.ceil(ymax * 2) / 2

    def X(bits):
        return l + (math.log10(bits) - xmin) / (xmax - xmin) * (w - l - r_)

    def Y(v):
        return t + (1 - v / ymax) * (h - t - b)

    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">speed-up over full fine-tuning against link rate '
           f'(2 ranks; points measured, lines the cost model)</text>']
    for v in [x / 2 for x in range(0, int(ymax * 2) + 1)]:
        out.append(f'<line x1="{l}" x2="{w - r_}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{l - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}x</text>')
    for bits, lab in [(20e6, "20M"), (50e6, "50M"), (100e6, "100M"), (200e6, "200M"), (500e6, "500M"),
                      (1e9, "1G"), (2e9, "2G"), (5e9, "5G"), (10e9, "10G"), (20e9, "20G")]:
        out.append(f'<line x1="{X(bits):.1f}" x2="{X(bits):.1f}" y1="{t}" y2="{h - b}" stroke="#eee"/>')
        out.append(f'<text x="{X(bits):.1f}" y="{h - b + 16}" text-anchor="middle">{lab}</text>')
    out.append(f'<text x="{(l + w - r_) / 2}" y="{h - 18}" text-anchor="middle">link rate, bit/s (log); '
               f'unshaped veth drawn at the right edge</text>')
    out.append(f'<line x1="{l}" x2="{w - r_}" y1="{Y(1):.1f}" y2="{Y(1):.1f}" stroke="#999" stroke-dasharray="4 3"/>')
    k = 0
    for st in strategies:
        if st == "full" or st not in C:
            continue
        c = colors[k % len(colors)]
        k += 1
        pts = []
        for i in range(0, 61):
            bits = 10 ** (xmin + (xmax - xmin) * i / 60)
            pts.append(f"{X(bits):.1f},{Y(T('full', 2, bits) / T(st, 2, bits)):.1f}")
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{" ".join(pts)}"/>')
        for r in rates:
            v = speed.get(st, {}).get(r)
            if v is None or math.isnan(v):
                continue
            bits = rate_bits(r) or 20e9
            out.append(f'<circle cx="{X(bits):.1f}" cy="{Y(v):.1f}" r="4" fill="{c}"/>')
        ly = t + 16 * k
        out.append(f'<line x1="{w - r_ + 10}" x2="{w - r_ + 30}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{w - r_ + 36}" y="{ly + 4}">{st}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
