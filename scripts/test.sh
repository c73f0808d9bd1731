#!/usr/bin/env bash
# Build everything (library, tests, examples, benchmarks) in ./build, run the
# test suite with ctest, then check that frost can be consumed from CMake both
# as an installed package (find_package) and as a subdirectory.
#
#   bash scripts/test.sh
#
# Environment: BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo),
#              FROST_SKIP_PACKAGE_CHECK=1 to skip the consumer builds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
# Debian's OpenBLAS starts a pool of its own threads (one per core) next to
# LibTorch's: with both busy they fight over the cores (a ViT step took
# 345-392 ms instead of 146 ms, issue 30). frost-train sets it to one thread
# itself; this covers every test and benchmark program as well.
export OPENBLAS_NUM_THREADS=1
# ctest runs $(nproc) tests at once, and each LibTorch process starts one
# intra-op (OpenMP) thread per core, whose threads spin while they wait: two
# tests side by side on 2 cores slowed each other down by up to 6x (the
# EfficientNet cache test: 4.0 s alone, 25 s beside another with pip's torch
# 2.11; the suite 181 s -> 155 s of test time, the longest test 25 -> 17 s).
# Tests that want threads set them (frost-train: --threads, --jobs).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
# Line tables only (-g1): a failing test's backtrace still names functions,
# files and lines, and every unit compiles about 29 % faster than with -g
# (examples/quickstart.cpp: 26.0 s at -O2 -g, 18.5 s at -O2 -g1, 17.8 s at
# -O2; issue 30, docs/main-job.md). And -O1: the tests' and examples' units
# compile another 25 % faster (quickstart.cpp: 19.7 s at -O2 -g1, 14.5 s at
# -O1 -g1, 15.3 s at -O0 -g1), while frost-train, whose times are the
# measurements, keeps -O2 (examples/CMakeLists.txt). DEBUG_FLAGS="-O2 -g" for
# full debug info at full optimisation.
DEBUG_FLAGS=${DEBUG_FLAGS:--O1 -g1}
# The cores, not $(nproc) as is: GNU nproc answers OMP_NUM_THREADS when it is set
# (1 above: the build ran -j1).
JOBS=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)

bash scripts/deps.sh

gen=()
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
  gen=(-G Ninja)
fi

echo "== configure ($BUILD_DIR, $BUILD_TYPE)"
# FROST_TESTS_PCH: LibTorch's headers precompiled once for frost_tests' units
# (on 2 cores 273 s instead of 315 s for frost_tests; docs/main-job.md).
cmake -S . -B "$BUILD_DIR" "${gen[@]}" \
  -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
  -DFROST_BUILD_TESTS=ON -DFROST_BUILD_EXAMPLES=ON -DFROST_BUILD_BENCHMARKS=ON \
  -DFROST_TESTS_PCH=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$DEBUG_FLAGS -DNDEBUG"

echo "== build (-j$JOBS)"
cmake --build "$BUILD_DIR" -j"$JOBS"

echo "== packaging check"
if [ "${FROST_SKIP_PACKAGE_CHECK:-0}" != 1 ]; then
  pkg_root="$BUILD_DIR/package-check"
  rm -rf "$pkg_root"
  mkdir -p "$pkg_root"
  prefix="$(pwd)/$pkg_root/prefix"
  cmake --install "$BUILD_DIR" --prefix "$prefix" >/dev/null

  # 1. installed package: find_package(frost REQUIRED)
  cmake -S tests/package -B "$pkg_root/find_package" "${gen[@]}" \
    -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$pkg_root/find_package" -j"$JOBS"
  "$pkg_root/find_package/frost_consumer"
  # the installed package reads the predictor it installed, not the source tree's
  loaded=$(env -u FROST_PREDICTOR "$pkg_root/find_package/frost_consumer_predictor")
  case "$(realpath -m "$loaded")" in
    "$(realpath -m "$prefix")"/*) echo "installed package loads $loaded" ;;
    *) echo "installed package loaded the predictor from '$loaded', not from $prefix" >&2; exit 1 ;;
  esac

  # 2. source tree: add_subdirectory(<frost>)
  cmake -S tests/package -B "$pkg_root/add_subdirectory" "${gen[@]}" \
    -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DFROST_CONSUMER_USE_SUBDIRECTORY=ON \
    -DFROST_SOURCE_DIR="$(pwd)" >/dev/null
  cmake --build "$pkg_root/add_subdirectory" -j"$JOBS"
  "$pkg_root/add_subdirectory/frost_consumer"
  env -u FROST_PREDICTOR "$pkg_root/add_subdirectory/frost_consumer_predictor"
else
  echo "(skipped: FROST_SKIP_PACKAGE_CHECK=1)"
fi

echo "== test (-j$JOBS)"
# One test process per core: most of the suite is short processes whose
# time goes to loading LibTorch (on 2 cores 99 s with -j2, 126 s with -j1);
# no test asserts a duration, and the data-parallel tests (several ranks, a
# timeout each) are RUN_SERIAL, alone on the machine.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS"
