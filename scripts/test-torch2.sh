#!/usr/bin/env bash
# The LibTorch 2.x leg, and the GPU check's dry run: build everything (tests,
# examples, benchmarks) against pip's `torch` (LibTorch 2.x, with CUDA) in
# ./build-torch2 the way the GPU machine builds it, and run the suite on the CPU.
#   1. scripts/gpu-prepare.sh fills .gpu-carry/ (what the GPU machine lacks);
#   2. scripts/gpu-check.sh --dry-run configures against pip's torch and that
#      folder only (Debian's packages hidden from CMake), builds the GPU check's
#      targets, fails if any header came from Debian's dev packages, and runs
#      every part of the GPU check on the CPU at tiny sizes, with the device's
#      test selection: the whole ctest suite but compile_fail.* (report in
#      build-torch2/gpu-dry-run/gpu-report.md);
#   3. builds the remaining targets in the same tree and runs compile_fail.*,
#      the one test the dry run leaves out: every test runs once.
# The CUDA code paths (sync-debug test, CUDA benchmarks) compile whether or not
# this machine has a GPU; at run time they skip without one.
#
#   bash scripts/test-torch2.sh
#   bash scripts/test-torch2.sh --install-only   # only the cached venv (below)
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
JOBS=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # GNU nproc answers OMP_NUM_THREADS

bash scripts/deps.sh
# One intra-op thread per test process, as in scripts/test.sh (why: there);
# the GPU check's dry run below inherits it.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

have_torch() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c "import sys, torch; sys.exit(0 if torch.__version__.split('+')[0] == '$VERSION' else 1)" \
      >/dev/null 2>&1
}

install_only=0
[ "${1:-}" = --install-only ] && install_only=1

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
[ "$install_only" -eq 1 ] && exit 0
echo "== torch2: LibTorch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null)"

echo "== torch2: prepare .gpu-carry (scripts/gpu-prepare.sh)"
bash scripts/gpu-prepare.sh
echo "== torch2: the GPU check's dry run (scripts/gpu-check.sh --dry-run, $BUILD_DIR)"
dry_rc=0
FROST_GPU_PYTHON="$VENV/bin/python" FROST_GPU_BUILD_DIR="$BUILD_DIR" FROST_GPU_JOBS="$JOBS" \
  OUT="$BUILD_DIR/gpu-dry-run" bash scripts/gpu-check.sh --dry-run || dry_rc=$?
sed -n '/^## Summary/,$p' "$BUILD_DIR/gpu-dry-run/gpu-report.md" 2>/dev/null || true
echo "== torch2: build the rest (-j$JOBS)"
cmake --build "$BUILD_DIR" -j"$JOBS"
# The dry run ran every other test (scripts/gpu-check.sh: CTEST_SELECT).
echo "== torch2: test (CPU): compile_fail.*, the rest ran in the dry run"
ctest --test-dir "$BUILD_DIR" --output-on-failure -R '^compile_fail'
if [ "$dry_rc" -ne 0 ]; then
  echo "torch2: the GPU check's dry run failed ($BUILD_DIR/gpu-dry-run/gpu-report.md)" >&2
  exit 1
fi
