#!/bin/sh
# ctest scripts.effnet_weights_pinned and scripts.minilm_weights_pinned: the
# weights scripts trust only the sha256 pinned in the repository, never a file
# a run left in the cache with a .sha256 of its own.
#
#   sh tests/weights_pinned_check.sh scripts/effnet-weights.sh
#   sh tests/weights_pinned_check.sh scripts/minilm-weights.sh
#
# Needs no venv and no network: the script's venv variable points where no
# venv can be (made), so a run that went on to install would stop at once.
set -u
script=$1
name=$(basename "$script" .sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FROST_CACHE_DIR="$tmp/cache"
# what differs between the two: the pin's variable, the weights file, the
# cache folder, the files next to it, and the venv variable
case $name in
  effnet-weights)
    pin=OUT_SHA256 file=efficientnet-lite0.safetensors sub=effnet-lite0
    export FROST_EFFNET_VENV="$tmp/no-venv" ;;
  minilm-weights)
    pin=MODEL_SHA256 file=model.safetensors sub=minilm-l6
    export FROST_MINILM_VENV="/dev/null/no-venv" ;;
  *) echo "weights_pinned_check: no case for $script" >&2; exit 2 ;;
esac
fail() {
  echo "weights_pinned_check ($name): $*" >&2
  exit 1
}

pinned=$(sed -n "s/^$pin=//p" "$script")
echo "$pinned" | grep -Eq '^[0-9a-f]{64}$' || fail "no $pin=<64 hex digits> in $script"

# 1. --verify refuses a file that is not the pinned one: exit 4, and the
#    message names the file, its sha256, the pinned one and the fix.
wrong="$tmp/$file"
printf 'not the weights' >"$wrong"
got=$(sha256sum "$wrong" | cut -d' ' -f1)
out=$(bash "$script" --verify "$wrong" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 4 ] || fail "--verify of a wrong file exited $rc, not 4"
for part in "$wrong" "$got" "$pinned" "delete it and run"; do
  case $out in *"$part"*) ;; *) fail "the refusal does not say '$part'" ;; esac
done

# 2. The cache: a wrong weights file next to a .sha256 that matches it (what
#    the EfficientNet script used to check against) is not taken as the weights.
dir="$FROST_CACHE_DIR/$sub"
mkdir -p "$dir"
cp "$wrong" "$dir/"
case $name in
  effnet-weights) touch "$dir/efficientnet-lite0.tensors.tsv" ;;
  minilm-weights) printf 'x\n' >"$dir/vocab.txt"; printf '{}' >"$dir/tokenizer.json" ;;
esac
(cd "$dir" && sha256sum "$file" >"$file.sha256")
out=$(bash "$script" 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "a cached file that is not the pinned one was used"
case $out in
  *"does not match the pinned sha256"*) ;;
  *) fail "the cached file's refusal does not say 'does not match the pinned sha256'" ;;
esac
# MiniLM's script moves the refused copy aside, where nothing reads it
if [ "$name" = minilm-weights ]; then
  [ -f "$dir/$file.rejected" ] && [ ! -f "$dir/$file" ] ||
    fail "the wrong cached file was not moved aside to $file.rejected"
fi
echo "weights_pinned_check ($name): both wrong files refused"
