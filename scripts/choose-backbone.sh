#!/usr/bin/env bash
# Choose the backbone arms' settings on the VALIDATION split (issue 32; the
# grid, the stages and the rule: docs/where-frost-pays.md, "Settings chosen on
# validation").
#
#   bash scripts/choose-backbone.sh STAGE [OUT_DIR]   # STAGE: body | split | rate | table
#
#   body   pre-training epochs {4, 8, 16} (BODIES="4 8" for some): full and probe at the default rate
#   split  on the chosen body (PRETRAIN_EPOCHS=N): lpft-25/50/75, static-25/50/75, probe
#   rate   on the chosen body: full, probe, $LPFT, $STATIC at rates {5e-4, 1e-3, 2e-3, 4e-3}
#   table  no runs: every arm's table and the rule's choices
#
# Seeds 0 and 1; one strategy per frost-train process, two processes at once,
# each pinned to its own core with one thread. A run whose results.csv exists
# is not run again (a stage cut short continues). The test accuracy is never read.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STAGE=${1:?"usage: choose-backbone.sh body|split|rate|table [OUT_DIR]"}
OUT=${2:-out/choose-backbone}
export FROST_TRAIN=${FROST_TRAIN:-build/examples/frost-train}
export PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-4}
export LPFT=${LPFT:-lpft-50} STATIC=${STATIC:-static-50}
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"

python3 - "$STAGE" "$OUT" <<'EOF'
import csv, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from queue import Queue

stage, out = sys.argv[1], sys.argv[2]
train = os.environ["FROST_TRAIN"]
pe = os.environ["PRETRAIN_EPOCHS"]
SEEDS = [0, 1]
RATES = ["5e-4", "1e-3", "2e-3", "4e-3"]

def arms(stage):
    """(run name, strategy, extra args); names carry the setting."""
    if stage == "body":
        # full first: each (body, seed) pre-trains once, the probe finds it cached
        bodies = os.environ.get("BODIES", "4 8 16").split()  # a hold of the lock may take a few
        return ([(f"pe{e}-full", "full", ["--pretrain-epochs", e]) for e in bodies] +
                [(f"pe{e}-probe", "probe", ["--pretrain-epochs", e]) for e in bodies])
    if stage == "split":
        return [(f"pe{pe}-{s}", s, ["--pretrain-epochs", pe])
                for s in ("lpft-25", "lpft-50", "lpft-75", "static-25", "static-50", "static-75")]
    if stage == "rate":
        return [(f"pe{pe}-{s}-lr{r}", s, ["--pretrain-epochs", pe, "--lr", r])
                for s in ("full", "probe", os.environ["LPFT"], os.environ["STATIC"]) for r in RATES
                if r != "1e-3"]
    return []

def run(job, core):
    name, strategy, extra, seed = job
    d = os.path.join(out, f"{name}-s{seed}")
    if os.path.exists(os.path.join(d, "results.csv")):
        return
    args = ["taskset", "-c", str(core), train, "--strategy", strategy, "--seed", str(seed),
            "--frontier", "none", "--cache", os.path.join(out, "cache"),
            "--out", d, "--no-progress", "--quiet"] + extra
    t0 = time.time()
    with open(d + ".log", "w") as log:
        rc = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT)
    print(f"{time.strftime('%H:%M:%S')} {name} seed {seed}: {time.time() - t0:.0f} s"
          + ("" if rc == 0 else f" FAILED (see {d}.log)"), flush=True)

if stage in ("body", "split", "rate"):
    jobs = [(n, s, e, seed) for (n, s, e) in arms(stage) for seed in SEEDS]
    cores = Queue()
    for c in (0, 1):
        cores.put(c)
    def worker(job):
        c = cores.get()
        try:
            run(job, c)
        finally:
            cores.put(c)
    if stage == "body":  # the pre-training runs before anything reads the cache
        full = [j for j in jobs if j[1] == "full"]
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(worker, full))
        jobs = [j for j in jobs if j[1] != "full"]
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(worker, jobs))

# The table: every run found, mean validation accuracy over the seeds.
rows = {}
for d in sorted(os.listdir(out)):
    p = os.path.join(out, d, "results.csv")
    if not os.path.exists(p) or "-s" not in d:
        continue
    name, seed = d.rsplit("-s", 1)
    with open(p) as f:
        r = list(csv.DictReader(f))[0]
    rows.setdefault(name, {})[seed] = r
print(f"{'arm':32} {'seeds':>5} {'val acc':>8} {'per seed':>16} {'work avoided':>13} {'measured s':>10}")
for name in sorted(rows):
    rs = rows[name]
    va = [float(r["val_accuracy"]) for r in rs.values()]
    wa = [float(r["work_avoided"]) for r in rs.values()]
    ms = [float(r["measured_s"]) for r in rs.values()]
    print(f"{name:32} {len(rs):>5} {sum(va)/len(va):8.2f} {' '.join(f'{v:.1f}' for v in va):>16} "
          f"{100*sum(wa)/len(wa):12.1f}% {sum(ms)/len(ms):10.1f}")
EOF
