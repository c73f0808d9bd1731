#!/bin/sh
# ctest scripts.minilm_weights_pinned: scripts/minilm-weights.sh trusts only the
# sha256 pinned in the repository, never a file a run left in the cache.
#
#   sh tests/minilm_weights_check.sh scripts/minilm-weights.sh
#
# Needs no venv and no network: FROST_MINILM_VENV points where no venv can be
# made, so a run that went on to install would stop at once.
set -u
script=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FROST_CACHE_DIR="$tmp/cache" FROST_MINILM_VENV="/dev/null/no-venv"
fail() {
  echo "minilm_weights_check: $*" >&2
  exit 1
}

pinned=$(sed -n 's/^MODEL_SHA256=//p' "$script")
echo "$pinned" | grep -Eq '^[0-9a-f]{64}$' || fail "no MODEL_SHA256=<64 hex digits> in $script"

# 1. --verify refuses a file that is not the package's: exit 4, and the message
#    names the file, its sha256, the pinned one and the fix.
wrong="$tmp/model.safetensors"
printf 'not the weights' >"$wrong"
got=$(sha256sum "$wrong" | cut -d' ' -f1)
out=$(bash "$script" --verify "$wrong" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 4 ] || fail "--verify of a wrong file exited $rc, not 4"
for part in "$wrong" "$got" "$pinned" "delete it and run"; do
  case $out in *"$part"*) ;; *) fail "the refusal does not say '$part'" ;; esac
done

# 2. The cache: a wrong model.safetensors next to a .sha256 that matches it is
#    not taken as the weights; it is moved aside to *.rejected.
dir="$FROST_CACHE_DIR/minilm-l6"
mkdir -p "$dir"
cp "$wrong" "$dir/"
printf 'x\n' >"$dir/vocab.txt"
printf '{}' >"$dir/tokenizer.json"
(cd "$dir" && sha256sum model.safetensors >model.safetensors.sha256)
out=$(bash "$script" 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "a cached file that is not the pinned one was used"
case $out in
  *"does not match the pinned sha256"*) ;;
  *) fail "the cached file's refusal does not say 'does not match the pinned sha256'" ;;
esac
[ -f "$dir/model.safetensors.rejected" ] && [ ! -f "$dir/model.safetensors" ] ||
  fail "the wrong cached file was not moved aside to model.safetensors.rejected"
echo "minilm_weights_check: both wrong files refused"
