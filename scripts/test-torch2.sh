#!/usr/bin/env bash
# The LibTorch 2.x leg: build everything (tests, examples, benchmarks) against
# pip's `torch` (LibTorch 2.x, with CUDA) in ./build-torch2 and run the suite on
# the CPU. The CUDA code paths (sync-debug test, CUDA benchmarks) compile
# whether or not this machine has a GPU; at run time they skip without one.
#
#   bash scripts/test-torch2.sh
#
# Environment:
#   FROST_TORCH2_VERSION  pip version of torch (default 2.11.0, the GPU machine's)
#   FROST_TORCH2_VENV     virtual environment to install it into (default
#                         ~/.cache/frost/torch-<version>-venv; reused when it
#                         already holds that version, so a second run on the same
#                         machine downloads nothing)
#   BUILD_DIR             default build-torch2
# Exit status 3 (and a message) when PyPI cannot be reached: the leg cannot run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VERSION=${FROST_TORCH2_VERSION:-2.11.0}
VENV=${FROST_TORCH2_VENV:-$HOME/.cache/frost/torch-$VERSION-venv}
BUILD_DIR=${BUILD_DIR:-build-torch2}
JOBS=$(nproc)

bash scripts/deps.sh

have_torch() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c "import sys, torch; sys.exit(0 if torch.__version__.split('+')[0] == '$VERSION' else 1)" \
      >/dev/null 2>&1
}

if ! have_torch; then
  echo "== torch2: installing torch==$VERSION into $VENV (once per machine)"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 needs python3-venv for `-m venv`.
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-venv
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$VERSION"; then
    echo "torch2: could not install torch==$VERSION from PyPI; this machine cannot run the" \
         "LibTorch 2.x leg (scripts/gpu-check.sh on the GPU machine remains the 2.x check)" >&2
    exit 3
  fi
fi
PREFIX=$("$VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
echo "== torch2: LibTorch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null) at $PREFIX"

gen=()
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
  gen=(-G Ninja)
fi
# No kernels of frost's own are compiled for a GPU: one architecture keeps
# Torch's CMake config from probing for a device.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
cuda=()
if command -v nvcc >/dev/null 2>&1; then
  # Torch's CMake config looks for the CUDA toolkit its wheel was built with.
  cuda=(-DCUDAToolkit_ROOT="$(dirname "$(dirname "$(command -v nvcc)")")")
fi
echo "== torch2: configure ($BUILD_DIR)"
cmake -S . -B "$BUILD_DIR" "${gen[@]}" "${cuda[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DFROST_BUILD_TESTS=ON -DFROST_BUILD_EXAMPLES=ON -DFROST_BUILD_BENCHMARKS=ON
echo "== torch2: build (-j$JOBS)"
cmake --build "$BUILD_DIR" -j"$JOBS"
echo "== torch2: test (CPU)"
ctest --test-dir "$BUILD_DIR" --output-on-failure
