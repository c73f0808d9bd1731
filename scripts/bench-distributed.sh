#!/usr/bin/env bash
# Build frost_bench_distributed and run it: step time and bytes per step of
# 2-rank data-parallel training (Gloo, CPU) against the number of frozen
# blocks, frost's frozen-aware GradientSync next to a plain all-reduce of every
# gradient. Prints the markdown tables of docs/benchmarks.md.
#
#   scripts/bench-distributed.sh                 # from anywhere in the repository
#   scripts/bench-distributed.sh --steps 2 --reps 2   # options go to the benchmark (--help)
#
# Environment: BUILD_DIR (default build; configured already, or configured here
# with the defaults). Only this target is built: a full build is not needed.
#
# Over a real, shaped link (issue 34; root: network namespaces):
#
#   scripts/bench-distributed.sh --link [--rates none,1gbit,200mbit] [--seeds 0,1,2]
#       [--out out/link] [--strategies LIST] [-- more frost-train flags]
#
# For each rate and seed: two namespaces joined by a veth pair shaped to the
# rate (scripts/netns-hosts.sh; none: unshaped), one frost-train rank in each
# (scripts/launch.sh -N, pinned one per core, one thread each), the c10d store
# on the first; the link's own byte counters are read before and after
# (<out>/<rate>/seed<S>/link.txt) beside frost's count (rank0.txt, the
# table). A finished (rate, seed) is skipped, so the run can be split into
# several calls. Then scripts/link_report.py <out> writes the table and the
# picture (docs/data-parallel-link.md). --frozen K1,K2,... instead: one
# short run (--epochs 1) of static freezing per K with the first K blocks
# (stem = block 0) frozen from step 0, per rate, to <out>/<rate>/frozen<K>:
# the link's counters against frost's count for each number of frozen blocks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}

link_bench() {
  local rates=none,1gbit,200mbit seeds=0,1,2 out=out/link
  local strategies=full,full-repeat,static,autofreeze,dyf,smartfrz
  local extra=() frozen=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --frozen) frozen=$2; shift 2 ;;
      --rates) rates=$2; shift 2 ;;
      --seeds) seeds=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --strategies) strategies=$2; shift 2 ;;
      --) shift; extra=("$@"); break ;;
      *) echo "bench-distributed.sh --link: unknown option '$1'" >&2; exit 2 ;;
    esac
  done
  local exe=${FROST_TRAIN:-$BUILD_DIR/examples/frost-train}
  [ -x "$exe" ] || cmake --build "$BUILD_DIR" --target frost-train -j1
  export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
  local rate run dir k blocks steps runs args
  mkdir -p "$out"
  for rate in ${rates//,/ }; do
    runs=()
    if [ -n "$frozen" ]; then
      for k in ${frozen//,/ }; do runs+=("frozen$k"); done
    else
      for k in ${seeds//,/ }; do runs+=("seed$k"); done
    fi
    for run in "${runs[@]}"; do
      dir=$out/$rate/$run
      args=(--compare "$strategies" --seed "${run#seed}")
      if [ -n "$frozen" ]; then
        k=${run#frozen}
        blocks=$(seq -s, 0 $((k - 1))); steps=$(seq -s, 0 $((k - 1)) | sed 's/[0-9]\+/0/g')
        args=(--strategy static --set "static:criterion.blocks=$blocks"
              --set "static:criterion.steps=$steps" --epochs 1 --frontier none)
      fi
      if [ -f "$dir/link.txt" ] && [ -f "$dir/run/results.csv" ]; then
        echo "== $rate, $run: done already ($dir)"; continue
      fi
      rm -rf "$dir"; mkdir -p "$dir"
      echo "== $rate, $run -> $dir ($(date -u +%H:%M:%S))"
      # The counters are read in each namespace (ip netns exec mounts its /sys).
      LINK_DIR=$dir bash scripts/netns-hosts.sh up "$rate" -- bash -c '
        set -u
        tx() { ip netns exec "$1" cat "/sys/class/net/$FROST_NS_IF/statistics/tx_bytes"; }
        a0=$(tx "$FROST_NS_A"); b0=$(tx "$FROST_NS_B"); t0=$(date +%s.%N)
        bash scripts/launch.sh -n 2 -N "$FROST_NS_A,$FROST_NS_B" -a "$FROST_NS_ADDR_A" \
          -i "$FROST_NS_IF" --pin -l "$LINK_DIR/logs" -- "$@" >"$LINK_DIR/rank0.txt"
        rc=$?
        t1=$(date +%s.%N)
        echo "rate=$FROST_NS_RATE tx_a=$(( $(tx "$FROST_NS_A") - a0 ))" \
             "tx_b=$(( $(tx "$FROST_NS_B") - b0 )) seconds=$(echo "$t1 - $t0" | bc) rc=$rc" \
             >"$LINK_DIR/link.txt"
        # what the shaper itself counted (sent, dropped, overlimits), both directions
        for ns in "$FROST_NS_A" "$FROST_NS_B"; do tc -n "$ns" -s qdisc show dev "$FROST_NS_IF"; done \
          >"$LINK_DIR/tc.txt"
        exit $rc' link "$exe" "${args[@]}" --cache "$out/cache" --out "$dir/run" --no-progress \
          "${extra[@]}"
      cat "$dir/link.txt"
    done
  done
}
if [ "${1:-}" = "--link" ]; then
  shift
  link_bench "$@"
  exit 0
fi

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFROST_BUILD_BENCHMARKS=ON
fi
cmake --build "$BUILD_DIR" --target frost_bench_distributed -j1
exec "$BUILD_DIR/benchmarks/frost_bench_distributed" "$@"
