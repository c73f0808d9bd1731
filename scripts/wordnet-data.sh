#!/usr/bin/env bash
# frost-train --model minilm-l6's text task as a file C++ reads:
#
#   ${FROST_CACHE_DIR:-$HOME/.cache/frost}/wordnet-supersense/supersense.safetensors
#
# (what frost_train::default_text_data_path() looks for): WordNet 3.0's noun
# glosses (Debian's wordnet-base) labelled with their supersense, split by
# synset and tokenized by scripts/wordnet_prepare.py (docs/minilm.md).
#
#   bash scripts/wordnet-data.sh [wordnet_prepare.py options...]   # prints the path on success
#
# Steps, each skipped when already done:
#   1. scripts/deps.sh --minilm: Debian's wordnet-base (/usr/share/wordnet/data.noun);
#   2. scripts/minilm-weights.sh: the weights package's tokenizer.json (BERT's
#      uncased WordPiece, the vocabulary the weights were trained with) and the
#      venv it keeps (~/.cache/frost/minilm-venv);
#   3. pip installs into that venv tokenizers (the tokenizer), safetensors and
#      numpy (the writer);
#   4. wordnet_prepare.py, cached: it does nothing when the file's frost.prep_key
#      (a sha256 of data.noun, tokenizer.json, the script and the options) is current.
# Only Debian's mirror and PyPI are contacted, and only the first time.
#
# Environment: FROST_CACHE_DIR (default ~/.cache/frost), FROST_MINILM_VENV
# (the venv, default ~/.cache/frost/minilm-venv), FROST_TEXT_DATA (the output file).
# Exit status 3 when PyPI cannot be reached.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CACHE=${FROST_CACHE_DIR:-$HOME/.cache/frost}
OUT=${FROST_TEXT_DATA:-$CACHE/wordnet-supersense/supersense.safetensors}
VENV=${FROST_MINILM_VENV:-$HOME/.cache/frost/minilm-venv}
PACKAGES=(tokenizers==0.23.3 safetensors==0.7.0 numpy==2.2.6)

bash scripts/deps.sh --minilm >/dev/null
TOKENIZER=$(bash scripts/minilm-weights.sh --dir | tail -n 1)/tokenizer.json

if ! "$VENV/bin/python" -c "import tokenizers, safetensors.numpy, numpy" 2>/dev/null; then
  echo "== wordnet-data: pip install ${PACKAGES[*]} (into $VENV)" >&2
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2; then
    echo "wordnet-data: pip could not install ${PACKAGES[*]} (is PyPI reachable?)" >&2
    exit 3
  fi
fi

"$VENV/bin/python" scripts/wordnet_prepare.py --tokenizer "$TOKENIZER" --out "$OUT" "$@" >&2
echo "$OUT"
