#!/usr/bin/env python3
"""Turn frost_bench's Google Benchmark JSON into the markdown overhead tables.

    build/benchmarks/frost_bench --benchmark_out=bench.json --benchmark_out_format=json
    scripts/bench-table.py bench.json [more.json ...] [--device cpu|cuda] [--section NAME]

Benchmark names are `family/key:value/...` (see benchmarks/bench_controller.cpp):

  train/model:M/criterion:C/schedule:S/device:D   a training step with and without
                                                   the controller (overhead counters)
  ctl/model:M/criterion:C/schedule:S/mode:step|decision/device:D
                                                   the controller's calls alone

Prints (python3 standard library only):
  1. the overhead table: per training benchmark the plain step, the controller's
     host time per step, overhead_pct (direct, steady clock around the calls),
     overhead_diff_pct (difference of the two step times), the extra cost of a
     decision point (from ctl/.../mode:decision minus mode:step on the same model
     and device) and the overhead amortised over one epoch of the real run;
  2. the controller-alone table (us per step and ATen calls per step by model);
  3. the decision-point table.
Targets: 0.5% on CPU and on CUDA (issue 19) (override with --target-cpu / --target-cuda),
judged on overhead_pct (no decision point in the step).
"""
import argparse
import json
import sys
from collections import OrderedDict

SUFFIXES = ("iterations:", "repeats:", "threads:", "manual_time", "real_time",
            "process_time", "min_time:", "min_warmup_time:")


def parse_name(name):
    """'train/model:tiny/criterion:Never/.../iterations:60/manual_time' -> dict."""
    parts = name.split("/")
    out = {"family": parts[0]}
    for p in parts[1:]:
        if p.startswith(SUFFIXES):
            continue
        if ":" in p:
            k, v = p.split(":", 1)
            out[k] = v
    return out


def load(paths):
    """All benchmark runs from the files; medians when repetitions were used.
    A benchmark present in several files is taken from the last one."""
    runs, errors, context = OrderedDict(), [], {}
    for path in paths:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            errors.append("%s: %s" % (path, e))
            continue
        context.update(data.get("context", {}))
        benches = data.get("benchmarks", [])
        has_median = any(b.get("aggregate_name") == "median" for b in benches)
        for b in benches:
            if has_median:
                if b.get("aggregate_name") != "median":
                    continue
            elif b.get("run_type") == "aggregate":
                continue
            name = b.get("run_name") or b.get("name", "")
            if b.get("error_occurred"):
                errors.append("%s: %s" % (name, b.get("error_message", "error")))
                continue
            info = parse_name(name)
            info["raw"] = b
            runs.pop(name, None)
            runs[name] = info
    return list(runs.values()), errors, context


def fmt(x, digits=2):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return ("%%.%df" % digits) % x


def key(r, *fields):
    return tuple(r.get(f, "") for f in fields)


def overhead_table(runs, targets):
    train = [r for r in runs if r["family"] == "train" and r.get("criterion") != "none"]
    plain = {key(r, "model", "device"): r for r in runs
             if r["family"] == "train" and r.get("criterion") == "none"}
    ctl = {key(r, "model", "criterion", "schedule", "device", "mode"): r
           for r in runs if r["family"] == "ctl"}
    lines = []
    if not train:
        return lines
    lines.append("| device | model | criterion | schedule | plain step ms | controller ms/step "
                 "| overhead % (direct) | % vs fastest step | overhead % (difference) | decision point +ms "
                 "| decisions/epoch | amortised % | target | verdict |")
    lines.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    misses = []
    for r in train:
        c = r["raw"]
        dev = r.get("device", "?")
        target = targets.get(dev)
        direct = c.get("overhead_pct")
        diff = c.get("overhead_diff_pct")
        plain_ms = c.get("plain_ms")
        ctl_ms = c.get("ctl_ms")
        # Extra cost of a decision point: mode:decision minus mode:step, same model/device.
        extra_ms = None
        kd = (r.get("model"), r.get("criterion"), r.get("schedule"), dev, "decision")
        ks = (r.get("model"), r.get("criterion"), r.get("schedule"), dev, "step")
        if kd in ctl and ks in ctl:
            # Decisions happen in before_step/after_step; observe() is the same in
            # both modes, so leave its (noisy) time out of the difference.
            def host_part(raw):
                return raw.get("before_us", 0.0) + raw.get("after_us", 0.0)
            extra_ms = max(0.0, (host_part(ctl[kd]["raw"]) - host_part(ctl[ks]["raw"])) / 1e3)
        dpe = c.get("decisions_per_epoch")
        spe = c.get("steps_per_epoch")
        amort = None
        if direct is not None and plain_ms:
            amort = direct
            if dpe and spe and extra_ms is not None:
                amort = 100.0 * (ctl_ms + extra_ms * dpe / spe) / plain_ms
        if target is None or direct is None:
            verdict = "–"
        elif direct <= target and (c.get("overhead_vs_min_pct") is None
                                   or c["overhead_vs_min_pct"] <= target):
            verdict = "meets"
        else:
            verdict = "**misses**"
            misses.append("%s %s/%s: %.2f%% > %.2f%%" % (dev, r.get("criterion"),
                                                           r.get("schedule"), direct, target))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            dev, r.get("model", "?"), r.get("criterion", "?"), r.get("schedule", "?"),
            fmt(plain_ms), fmt(ctl_ms, 3), fmt(direct), fmt(c.get("overhead_vs_min_pct")),
            fmt(diff),
            "–" if not dpe else fmt(extra_ms, 3), fmt(dpe, 0) if dpe else "0",
            fmt(amort), "≤ %s%%" % fmt(target, 1) if target is not None else "–", verdict))
    for k, r in plain.items():
        lines.append("")
        lines.append("Plain step alone (train/.../criterion:none), %s %s: %s ms." % (
            k[1], k[0], fmt(r["raw"].get("plain_ms"))))
    return lines, misses


def ctl_table(runs, mode):
    rows = [r for r in runs if r["family"] == "ctl" and r.get("mode") == mode]
    if not rows:
        return []
    models = list(OrderedDict.fromkeys(key(r, "device", "model") for r in rows))
    combos = list(OrderedDict.fromkeys(key(r, "criterion", "schedule") for r in rows))
    by = {key(r, "criterion", "schedule", "device", "model"): r["raw"] for r in rows}
    head = "| criterion | schedule | " + " | ".join(
        "%s %s us (ops)" % (m, d) for d, m in models) + " |"
    lines = [head, "|---|---|" + "---:|" * len(models)]
    for crit, sched in combos:
        cells = []
        for d, m in models:
            c = by.get((crit, sched, d, m))
            if c is None:
                cells.append("")
            else:
                cells.append("%s (%d)" % (fmt(c.get("ctl_us")), int(c.get("aten_ops", 0))))
        lines.append("| %s | %s | %s |" % (crit, sched, " | ".join(cells)))
    sizes = []
    for d, m in models:
        r = next(r for r in rows if key(r, "device", "model") == (d, m))["raw"]
        sizes.append("%s: %d blocks, %d tensors, %.2fM params" % (
            m, int(r.get("map_blocks", 0)), int(r.get("block_tensors", 0)),
            r.get("block_params_M", 0.0)))
    lines.append("")
    lines.append("Block maps: " + "; ".join(sizes) + ".")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", help="Google Benchmark JSON files")
    ap.add_argument("--device", choices=["cpu", "cuda"], help="only this device")
    ap.add_argument("--target-cpu", type=float, default=0.5)
    ap.add_argument("--target-cuda", type=float, default=0.5)
    ap.add_argument("--section", choices=["all", "overhead", "ctl", "decision"], default="all")
    ap.add_argument("--heading-level", type=int, default=3)
    a = ap.parse_args()

    runs, errors, context = load(a.json)
    if a.device:
        runs = [r for r in runs if r.get("device") == a.device]
    targets = {"cpu": a.target_cpu, "cuda": a.target_cuda}
    h = "#" * a.heading_level
    out = []
    misses = []
    if a.section in ("all", "overhead"):
        res = overhead_table(runs, targets)
        if res:
            lines, misses = res
            out += ["%s Controller overhead in a training step" % h, ""]
            out += ["`overhead % (direct)` = controller's calls (steady clock) / plain step, medians; "
                    "no decision point falls in the timed steps. `% vs fastest step` divides by the fastest "
                    "plain step instead (the idle-machine figure; the verdict needs both within the "
                    "target). `amortised %` adds the extra "
                    "cost of the decision points spread over one epoch of the real run "
                    "(decisions/epoch at the criterion's default rate).", ""]
            out += lines + [""]
    if a.section in ("all", "ctl"):
        lines = ctl_table(runs, "step")
        if lines:
            out += ["%s The controller alone, per step (no decision point)" % h, ""]
            out += ["before_step + after_backward + after_step with gradients already in "
                    "place; microseconds per step, (ATen calls per step).", ""]
            out += lines + [""]
    if a.section in ("all", "decision"):
        lines = ctl_table(runs, "decision")
        if lines:
            out += ["%s The controller alone at a decision point" % h, ""]
            out += ["Every step a decision point (one host read of a [blocks] tensor); "
                    "microseconds per step, (ATen calls in such a step).", ""]
            out += lines + [""]
    if misses:
        out += ["Targets missed: " + "; ".join(misses) + ".", ""]
    if errors:
        out += ["Benchmarks that failed or could not be read:", ""]
        out += ["- " + e for e in errors] + [""]
    if not runs and not errors:
        out += ["(no benchmark results)", ""]
    sys.stdout.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
