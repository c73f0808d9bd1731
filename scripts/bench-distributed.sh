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
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFROST_BUILD_BENCHMARKS=ON
fi
cmake --build "$BUILD_DIR" --target frost_bench_distributed -j1
exec "$BUILD_DIR/benchmarks/frost_bench_distributed" "$@"
