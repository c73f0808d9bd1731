#!/usr/bin/env bash
# Choose SimFreeze's R, C and AutoFreeze's interval on the VALIDATION split
# (issue 29, item 3; the grid and the rule: docs/main-job.md, "Settings chosen
# on validation").
#
#   bash scripts/choose-on-validation.sh [OUT_DIR]      # default out/choose-on-validation
#   TABLE_ONLY=1 bash scripts/choose-on-validation.sh [OUT_DIR]   # no runs, the table only
#
# Runs every arm for seeds 0 and 1, one frost-train process at a time (one
# thread each), each into OUT_DIR/<arm>-s<seed>; a run whose results.csv
# exists is not run again, so a killed sweep continues where it stopped. The
# pre-trained bodies are cached in OUT_DIR/cache (pre-training once per seed).
# Then prints the table: per arm the mean validation accuracy over the seeds,
# its difference to full fine-tuning's mean, the mean work avoided, and the
# choice the rule makes. The test accuracy is not read.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${1:-out/choose-on-validation}
TRAIN=${FROST_TRAIN:-build/examples/train/frost-train}
SEEDS=(0 1)
# arm name | strategy | --set options (space-separated)
ARMS=(
  "full|full|"
  "sf-R10-C10|simfreeze-nostop|criterion.record_steps=10 criterion.compare_steps=10"
  "sf-R10-C20|simfreeze-nostop|criterion.record_steps=10 criterion.compare_steps=20"
  "sf-R20-C10|simfreeze-nostop|criterion.record_steps=20 criterion.compare_steps=10"
  "sf-R20-C20|simfreeze-nostop|criterion.record_steps=20 criterion.compare_steps=20"
  "sf-R40-C10|simfreeze-nostop|criterion.record_steps=40 criterion.compare_steps=10"
  "sf-R40-C20|simfreeze-nostop|criterion.record_steps=40 criterion.compare_steps=20"
  "af-i20|autofreeze-nostop|criterion.interval=20"
  "af-i30|autofreeze-nostop|criterion.interval=30"
  "af-i40|autofreeze-nostop|criterion.interval=40"
)

mkdir -p "$OUT"
if [ -z "${TABLE_ONLY:-}" ]; then
  [ -x "$TRAIN" ] || { echo "no frost-train at $TRAIN (build target frost-train, or set FROST_TRAIN)" >&2; exit 1; }
  # arm by arm, both seeds each: a sweep cut short has whole arms
  for arm in "${ARMS[@]}"; do
    IFS='|' read -r name strategy sets <<<"$arm"
    for seed in "${SEEDS[@]}"; do
      dir="$OUT/$name-s$seed"
      [ -f "$dir/results.csv" ] && continue
      args=(--strategy "$strategy" --seed "$seed" --frontier none --cache "$OUT/cache"
            --out "$dir" --no-progress --quiet)
      # the history is given explicitly: the grid is the printed algorithm's (global)
      case $strategy in simfreeze*) args+=(--set criterion.history=global) ;; esac
      for s in $sets; do args+=(--set "$s"); done
      echo "$(date -u +%H:%M:%S) $name seed $seed: ${args[*]}"
      start=$(date +%s)
      "$TRAIN" "${args[@]}" >"$OUT/$name-s$seed.log" 2>&1 ||
        { echo "failed: see $OUT/$name-s$seed.log" >&2; exit 1; }
      echo "  $(( $(date +%s) - start )) s"
    done
  done
fi

# The table and the rule (docs/main-job.md): eligible = mean val acc >= full's - 0.5
# points; among them the most mean work avoided (within 1 point counts as equal:
# then the higher val acc); none eligible: the best val acc. Per criterion.
python3 - "$OUT" "${SEEDS[@]}" -- "${ARMS[@]}" <<'EOF'
import csv, os, sys
args = sys.argv[1:]
out, rest = args[0], args[1:]
seeds = rest[:rest.index("--")]
arms = [a.split("|")[0] for a in rest[rest.index("--") + 1:]]

def row(name, seed):
    path = os.path.join(out, f"{name}-s{seed}", "results.csv")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1, f"{path}: expected one run, found {len(rows)}"
    return rows[0]

stats = {}
for name in arms:
    rs = [row(name, s) for s in seeds]
    if any(r is None for r in rs):
        continue
    val = [float(r["val_accuracy"]) for r in rs]  # already in %
    wa = [100 * float(r["work_avoided"]) for r in rs]
    # blocks frozen for good: the freeze steps that are not "-" (7 blocks: stem, 0..5)
    frozen = [sum(t != "-" for t in r["freeze_steps"].split()) for r in rs]
    stats[name] = dict(val=val, wa=wa, frozen=frozen, mval=sum(val) / len(val),
                       mwa=sum(wa) / len(wa))
if "full" not in stats:
    sys.exit("full fine-tuning has not run for every seed yet: no table")
ref = stats["full"]["mval"]

def choose(prefix):
    cands = [(n, s) for n, s in stats.items() if n.startswith(prefix)]
    if not cands:
        return None, ""
    ok = [(n, s) for n, s in cands if s["mval"] >= ref - 0.5]
    if not ok:
        return max(cands, key=lambda c: c[1]["mval"])[0], "none within 0.5: best val acc"
    top = max(s["mwa"] for _, s in ok)
    near = [(n, s) for n, s in ok if s["mwa"] >= top - 1.0]
    return max(near, key=lambda c: c[1]["mval"])[0], "within 0.5 of full, most work avoided"

chosen = dict(choose(p) for p in ("sf-", "af-"))
seeds_s = ",".join(seeds)
print("| arm | seeds | val acc % per seed | val acc % mean | vs full | work avoided % per seed "
      "| work avoided % mean | blocks frozen per seed | chosen |")
print("|---|---|---|---:|---:|---|---:|---|---|")
for name in arms:
    if name not in stats:
        print(f"| {name} | {seeds_s} | (not run) | | | | | | |")
        continue
    s = stats[name]
    per = " / ".join(f"{v:.1f}" for v in s["val"])
    wper = " / ".join(f"{v:.0f}" for v in s["wa"])
    print(f"| {name} | {seeds_s} | {per} | {s['mval']:.2f} | {s['mval'] - ref:+.2f} | {wper} | "
          f"{s['mwa']:.1f} | {' / '.join(map(str, s['frozen']))} | {chosen.get(name, '')} |")
EOF
