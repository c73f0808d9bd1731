#!/usr/bin/env bash
# The measured share f of each block prefix's work (docs/where-frost-pays.md):
# builds scripts/block_costs.cpp with build/'s LibTorch flags and runs it on
# one thread (run it alone on the machine: it times).
#
#   bash scripts/block-costs.sh [OUT_CSV]     # default out/block-costs.csv
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-out/block-costs.csv}
BIN=build/block-costs
mkdir -p "$(dirname "$OUT")"
if [ ! -x "$BIN" ] || [ scripts/block_costs.cpp -nt "$BIN" ]; then
  c++ -std=c++17 -O2 -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI=1 -Iexamples/common -Iinclude \
    -isystem /usr/include/torch/csrc/api/include scripts/block_costs.cpp -o "$BIN" \
    -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -Wl,--as-needed
fi
OPENBLAS_NUM_THREADS=1 "$BIN" | tee "$OUT"
