#!/usr/bin/env bash
# Install the Debian 12 packages frost needs, only those that are missing.
# Idempotent and fast (one dpkg query) when everything is already present.
set -euo pipefail

PACKAGES=(
  build-essential    # g++, make
  cmake              # >= 3.18 (Debian 12: 3.25)
  ninja-build
  libtorch-dev       # LibTorch 1.13 (CPU) + its CMake config
  libopenblas0-pthread  # LibTorch's BLAS: Debian's default reference BLAS runs matmuls
                        # ~10x slower (3 vs 30 GFLOP/s measured); this takes over libblas.so.3
  libgloo-dev        # Gloo headers: frost::distributed (c10d ProcessGroupGloo); also
                     # referenced by the LibTorch CMake config
  libboost-dev       # Boost.Hana (header-only)
  doctest-dev        # tests
  libbenchmark-dev   # benchmarks
  zlib1g-dev         # examples read the gzip'd IDX files
  libcli11-dev       # frost-train's command line (example trainer only; header-only)
  nlohmann-json3-dev # frost-train's steps.jsonl (example trainer only; header-only)
  dataset-fashion-mnist  # /usr/share/datasets/fashion-mnist/*.gz
)
# Optional group, for scripts/fuzz.sh only (CI and test.sh never need clang):
# `deps.sh --fuzz` installs libFuzzer and the clang that builds the fuzz targets.
if [ "${1:-}" = "--fuzz" ]; then
  PACKAGES=(clang libfuzzer-14-dev)
fi
# Optional group, for --model minilm-l6's text task only (scripts/wordnet-data.sh):
# `deps.sh --minilm` installs WordNet 3.0 (/usr/share/wordnet/data.noun).
if [ "${1:-}" = "--minilm" ]; then
  PACKAGES=(wordnet-base)
fi

# One dpkg query for all packages; a package dpkg has never heard of is missing.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null \
  | awk '$NF == "installed" && $(NF-1) == "ok" {print $1}' || true)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! grep -qx "$p" <<<"$installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
