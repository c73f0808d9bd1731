#!/bin/sh
# ctest scripts.wordnet_reader: scripts/wordnet_prepare.py's reader of WordNet's
# data.noun (wndb(5WN)) on the constructed excerpt tests/data/wordnet/data.noun,
# with the system python3 (the reader needs only the standard library):
#   1. every synset's offset, supersense (lexnames(5WN)) and definition (the
#      quoted examples removed; w_cnt read as hexadecimal, 0b = 11 words) equal
#      tests/data/wordnet/expected.tsv (checked by hand against the excerpt);
#   2. a line whose offset is not its byte offset, a verb line, an unknown
#      lexicographer file and a line without the gloss separator are refused
#      (exit 2), the message naming the file and line.
#   sh wordnet_reader_check.sh SCRIPT DATA_DIR
set -eu
script=$1
dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 "$script" --list "$dir/data.noun" > "$tmp/got.tsv"
if ! cmp -s "$tmp/got.tsv" "$dir/expected.tsv"; then
  echo "FAIL: the reader's output differs from expected.tsv:" >&2
  diff "$dir/expected.tsv" "$tmp/got.tsv" >&2 || true
  exit 1
fi
echo "ok: $(wc -l < "$tmp/got.tsv") synsets as expected"

# refuse NAME SED_EXPR PATTERN: the excerpt edited by SED_EXPR must be refused
# with exit 2 and a message matching PATTERN.
refuse() {
  sed "$2" "$dir/data.noun" > "$tmp/bad.noun"
  set +e
  python3 "$script" --list "$tmp/bad.noun" > /dev/null 2> "$tmp/err"
  rc=$?
  set -e
  if [ "$rc" -ne 2 ] || ! grep -q "$3" "$tmp/err"; then
    echo "FAIL: $1: exit $rc, message: $(cat "$tmp/err")" >&2
    exit 1
  fi
  echo "ok: $1 refused: $(cat "$tmp/err")"
}
refuse "shifted offset" '4s/^00000356/00000357/' 'bad.noun:4: synset_offset 357 is not the line'
refuse "verb line" '3s/^00000194 06 n/00000194 06 v/' "bad.noun:3: ss_type 'v' is not n"
refuse "verb lexicographer file" '3s/^00000194 06 n/00000194 31 n/' 'bad.noun:3: lex_filenum 31 is not a noun file'
refuse "no gloss separator" '5s/ | / /' "bad.noun:5: no ' | ' before the gloss"
