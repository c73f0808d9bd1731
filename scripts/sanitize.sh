#!/usr/bin/env bash
# Build and run the test suite under AddressSanitizer + UBSan in ./build-asan.
#
#   bash scripts/sanitize.sh [doctest options, e.g. -tc="freezeout*"]
#
# LibTorch itself is not instrumented; leak checking is off because LibTorch's
# process-lifetime allocations (op registry, thread pools) are reported as leaks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build-asan}

bash scripts/deps.sh

gen=()
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
  gen=(-G Ninja)
fi
# -O1: sanitizer builds at -O0 make the LibTorch-heavy tests very slow.
cmake -S . -B "$BUILD_DIR" "${gen[@]}" \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DFROST_SANITIZE=ON -DFROST_BUILD_TESTS=ON \
  -DFROST_BUILD_EXAMPLES=OFF -DFROST_BUILD_BENCHMARKS=OFF
cmake --build "$BUILD_DIR" -j"$(nproc)" --target frost_tests

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:strict_init_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export FROST_FASHION_MNIST=${FROST_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
"$BUILD_DIR/tests/frost_tests" "$@"
