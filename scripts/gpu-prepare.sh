#!/usr/bin/env bash
# scripts/gpu-prepare.sh — run on the CPU machine (Debian 12, scripts/deps.sh
# done): gathers into ONE git-ignored folder everything the GPU machine lacks,
# so that `scripts/gpu-check.sh` builds and runs there with nothing fetched.
# (`scripts/gpu-check.sh --prepare` runs this.)
#
#   bash scripts/gpu-prepare.sh [DIR]      # DIR default .gpu-carry (FROST_GPU_CARRY)
#
# The GPU machine (the device tool's H200) has pip's torch 2.11 (LibTorch, CUDA
# 13, NCCL), CMake, ninja, nvcc and g++, but none of: Boost, doctest, CLI11,
# nlohmann-json, Google Benchmark, Gloo headers, zlib headers, Fashion-MNIST.
# The folder holds, copied from this machine's Debian packages:
#   include/  only the headers frost's build uses: the closure of the Boost
#             headers frost includes (as g++ -M finds it, plus boost/config
#             whole, for another compiler version), doctest, CLI11,
#             nlohmann-json, Google Benchmark, Gloo (frost::distributed's
#             ProcessGroupGloo), zlib.h and zconf.h;
#   lib/      Google Benchmark 1.7.1 as Debian built it (libbenchmark.so.1debian:
#             needs only libc/libstdc++, so it loads on the GPU machine's newer
#             system) and libbenchmark_main.a; zlib itself (libz.so.1) is on
#             every Linux system, only its header is carried;
#   lib/cmake/ small package configs (BoostConfig, doctestConfig + doctest's
#             doctest_discover_tests scripts, CLI11Config, nlohmann_jsonConfig,
#             benchmarkConfig) that point at this folder, found through
#             CMAKE_PREFIX_PATH;
#   data/fashion-mnist/  the four Fashion-MNIST .gz files (30 MiB, whole);
#   data/pretrained/effnet-lite0/efficientnet-lite0.safetensors  the
#             EfficientNet-Lite0 weights (18.8 MB) for gpu-check.sh's part 6,
#             when `bash scripts/effnet-weights.sh` has written them
#             (FROST_EFFNET_WEIGHTS: another copy), they match the sha256
#             pinned in that script, and the total stays within 64 MiB;
#             otherwise left out, the reason in MANIFEST.txt, and part 6 skips;
#   data/pretrained/     anything else in FROST_PRETRAINED_DIR, when set.
# The shipped predictor (data/smartfrz-predictor.pt) is tracked and travels
# with the working tree. Ends with the folder's size and the size of what the
# device tool sends (tracked + untracked-not-ignored files + this folder), and
# fails when that is over the tool's 64 MiB.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=${1:-${FROST_GPU_CARRY:-.gpu-carry}}
DATA=${FROST_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
LIMIT_MIB=64
INC=/usr/include

bash scripts/deps.sh >/dev/null

rm -rf "$DIR"
mkdir -p "$DIR/include" "$DIR/lib/cmake" "$DIR/data/fashion-mnist" "$DIR/data/pretrained"
abs=$(cd "$DIR" && pwd)

copy_rel() {  # copy_rel FILE...: copies /usr/include/<rel> to $DIR/include/<rel>
  local f rel
  for f in "$@"; do
    rel=${f#"$INC"/}
    mkdir -p "$DIR/include/$(dirname "$rel")"
    cp -p "$f" "$DIR/include/$rel"
  done
}

# --- Boost: the closure of what frost includes. -----------------------------
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
grep -rhoE '#include <boost/[^>]+>' include examples tests benchmarks | sort -u >"$probe/boost.cpp"
if [ ! -s "$probe/boost.cpp" ]; then
  echo "gpu-prepare: found no Boost include in the sources" >&2
  exit 1
fi
g++ -std=c++17 -M "$probe/boost.cpp" -o "$probe/boost.d"
mapfile -t boost_files < <(tr ' \\' '\n\n' <"$probe/boost.d" | grep -E "^$INC/boost/" | sort -u)
copy_rel "${boost_files[@]}"
cp -rp "$INC/boost/config" "$DIR/include/boost/"  # every compiler's and library's config
echo "gpu-prepare: Boost: ${#boost_files[@]} headers ($(tr '\n' ' ' <"$probe/boost.cpp" | sed 's/#include //g'))"

# --- Header-only libraries and the small ones, whole. -----------------------
for d in doctest CLI nlohmann gloo benchmark; do
  [ -d "$INC/$d" ] || { echo "gpu-prepare: $INC/$d missing (scripts/deps.sh)" >&2; exit 1; }
  cp -rp "$INC/$d" "$DIR/include/"
done
cp -p "$INC/zlib.h" "$INC/zconf.h" "$DIR/include/"
libdir=/usr/lib/x86_64-linux-gnu
cp -p "$libdir/libbenchmark.so.1.7.1" "$DIR/lib/libbenchmark.so.1debian"
cp -p "$libdir/libbenchmark_main.a" "$DIR/lib/"

# --- Package configs pointing at this folder (relative to themselves). -------
cfg() {  # cfg NAME VERSION BODY: lib/cmake/NAME/{NAMEConfig,NAMEConfigVersion}.cmake
  local name=$1 version=$2 body=$3 d="$DIR/lib/cmake/$1"
  if ! [[ "$version" =~ ^[0-9]+(\.[0-9]+)+$ ]]; then
    echo "gpu-prepare: could not read the version of $name ('$version')" >&2
    exit 1
  fi
  mkdir -p "$d"
  {
    echo "# Written by scripts/gpu-prepare.sh: $name from the prepared folder."
    echo 'get_filename_component(_gpu_carry "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)'
    echo "$body"
    echo 'unset(_gpu_carry)'
  } >"$d/${name}Config.cmake"
  cat >"$d/${name}ConfigVersion.cmake" <<EOF
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION AND PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
EOF
}
boost_ver=$(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' "$INC/boost/version.hpp" | tr _ .)
[ "$(tr -cd . <<<"$boost_ver" | wc -c)" -eq 1 ] && boost_ver="$boost_ver.0"
cfg Boost "$boost_ver" '
if(NOT TARGET Boost::headers)
  add_library(Boost::headers INTERFACE IMPORTED)
  set_target_properties(Boost::headers PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_gpu_carry}/include")
  add_library(Boost::boost INTERFACE IMPORTED)
  set_target_properties(Boost::boost PROPERTIES INTERFACE_LINK_LIBRARIES Boost::headers)
endif()
set(Boost_INCLUDE_DIRS "${_gpu_carry}/include")
set(Boost_FOUND TRUE)'
cfg doctest "$(awk '/define DOCTEST_VERSION_(MAJOR|MINOR|PATCH) /{printf "%s%s", sep, $3; sep="."}' \
  "$INC/doctest/doctest.h")" '
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")  # include(doctest)
if(NOT TARGET doctest::doctest)
  add_library(doctest::doctest INTERFACE IMPORTED)
  set_target_properties(doctest::doctest PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_gpu_carry}/include")
endif()'
cp -p /usr/lib/cmake/doctest/doctest.cmake /usr/lib/cmake/doctest/doctestAddTests.cmake \
  "$DIR/lib/cmake/doctest/"
cfg CLI11 "$(sed -n 's/^#define CLI11_VERSION "\(.*\)"/\1/p' "$INC/CLI/Version.hpp")" '
if(NOT TARGET CLI11::CLI11)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_gpu_carry}/include")
endif()'
json_ver=$(cat "$INC"/nlohmann/json.hpp "$INC"/nlohmann/detail/*.hpp 2>/dev/null |
  awk '/define NLOHMANN_JSON_VERSION_(MAJOR|MINOR|PATCH) /{printf "%s%s", sep, $3; sep="."}')
cfg nlohmann_json "$json_ver" '
if(NOT TARGET nlohmann_json::nlohmann_json)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_gpu_carry}/include")
endif()'
cfg benchmark 1.7.1 '
include(CMakeFindDependencyMacro)
find_dependency(Threads)
if(NOT TARGET benchmark::benchmark)
  add_library(benchmark::benchmark SHARED IMPORTED)
  set_target_properties(benchmark::benchmark PROPERTIES
    IMPORTED_LOCATION "${_gpu_carry}/lib/libbenchmark.so.1debian"
    IMPORTED_SONAME libbenchmark.so.1debian
    INTERFACE_INCLUDE_DIRECTORIES "${_gpu_carry}/include"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(benchmark::benchmark_main STATIC IMPORTED)
  set_target_properties(benchmark::benchmark_main PROPERTIES
    IMPORTED_LOCATION "${_gpu_carry}/lib/libbenchmark_main.a"
    INTERFACE_LINK_LIBRARIES benchmark::benchmark)
endif()'

# --- Data. ------------------------------------------------------------------
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$DATA/$f.gz" ] || { echo "gpu-prepare: $DATA/$f.gz missing" >&2; exit 1; }
  cp -p "$DATA/$f.gz" "$DIR/data/fashion-mnist/"
done
if [ -n "${FROST_PRETRAINED_DIR:-}" ]; then
  cp -rp "$FROST_PRETRAINED_DIR"/. "$DIR/data/pretrained/"
fi
[ -f data/smartfrz-predictor.pt ] || echo "gpu-prepare: warning: data/smartfrz-predictor.pt missing" >&2

# --- Sizes, and the EfficientNet-Lite0 weights if they fit. ------------------
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
tree_b=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null |
  awk '{s += $1} END {print s + 0}')
EFFNET=${FROST_EFFNET_WEIGHTS:-${FROST_CACHE_DIR:-$HOME/.cache/frost}/effnet-lite0/efficientnet-lite0.safetensors}
prepare_hint="bash scripts/effnet-weights.sh && bash scripts/gpu-check.sh --prepare"
if [ ! -f "$EFFNET" ]; then
  effnet_note="effnet-lite0 weights: not carried: $EFFNET missing"
elif ! bash scripts/effnet-weights.sh --verify "$EFFNET" >/dev/null 2>&1; then
  # a file that is not the pinned conversion is not carried (the GPU run
  # would be of unknown weights); effnet-weights.sh says why
  effnet_note="effnet-lite0 weights: not carried: $EFFNET has sha256 $(sha256sum "$EFFNET" | cut -c1-16)..., not the one pinned in scripts/effnet-weights.sh (--verify FILE says more)"
else
  w_b=$(stat -c %s "$EFFNET")
  sum_b=$(($(du -sb "$DIR" | cut -f1) + tree_b + w_b))
  if [ "$sum_b" -gt $((LIMIT_MIB * 1048576)) ]; then
    effnet_note="effnet-lite0 weights: not carried: with them $(mib "$sum_b") MiB, over the device tool's $LIMIT_MIB MiB"
  else
    mkdir -p "$DIR/data/pretrained/effnet-lite0"
    cp -p "$EFFNET" "$DIR/data/pretrained/effnet-lite0/efficientnet-lite0.safetensors"
    effnet_note="effnet-lite0 weights: carried ($(mib "$w_b") MiB, sha256 as pinned in scripts/effnet-weights.sh)"
  fi
fi
echo "gpu-prepare: $effnet_note"
case "$effnet_note" in *"not carried"*) echo "gpu-prepare: (to carry them: $prepare_hint)" ;; esac
folder_b=$(du -sb "$DIR" | cut -f1)
total_b=$((folder_b + tree_b))
{
  echo "prepared $(date -u "+%Y-%m-%d %H:%M UTC") from commit $(git describe --always --dirty=+uncommitted 2>/dev/null || echo "?")"
  echo "folder $(mib "$folder_b") MiB; working tree $(mib "$tree_b") MiB; together $(mib "$total_b") MiB (limit $LIMIT_MIB MiB)"
  echo "$effnet_note"
  (cd "$DIR" && du -sh include lib data/fashion-mnist data/pretrained | sed 's/^/  /')
} | tee "$DIR/MANIFEST.txt"
echo "gpu-prepare: $abs ready; name '$DIR' in the device tool's carry"
if [ "$total_b" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "gpu-prepare: working tree + folder over the device tool's $LIMIT_MIB MiB" >&2
  exit 1
fi
