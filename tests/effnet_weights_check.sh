#!/bin/sh
# ctest scripts.effnet_weights_pinned: scripts/effnet-weights.sh trusts only the
# sha256 pinned in the repository, never one a run wrote itself.
#
#   sh tests/effnet_weights_check.sh scripts/effnet-weights.sh
#
# Needs no venv and no network: FROST_EFFNET_VENV points at nothing, so a run
# that went on to convert would stop at once (exit 1) instead of installing torch.
set -u
script=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FROST_CACHE_DIR="$tmp/cache" FROST_EFFNET_VENV="$tmp/no-venv"
fail() {
  echo "effnet_weights_check: $*" >&2
  exit 1
}

pinned=$(sed -n 's/^OUT_SHA256=//p' "$script")
echo "$pinned" | grep -Eq '^[0-9a-f]{64}$' || fail "no OUT_SHA256=<64 hex digits> in $script"

# 1. --verify refuses a file that is not the conversion: exit 4, and the message
#    names the file, its sha256, the pinned one and the fix.
wrong="$tmp/efficientnet-lite0.safetensors"
printf 'not the weights' >"$wrong"
got=$(sha256sum "$wrong" | cut -d' ' -f1)
out=$(bash "$script" --verify "$wrong" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 4 ] || fail "--verify of a wrong file exited $rc, not 4"
for part in "$wrong" "$got" "$pinned" "delete it and run"; do
  case $out in *"$part"*) ;; *) fail "the refusal does not say '$part'" ;; esac
done

# 2. The cache: a wrong file next to a .sha256 that matches it (what the script
#    used to check against) is not taken as the weights.
dir="$FROST_CACHE_DIR/effnet-lite0"
mkdir -p "$dir"
cp "$wrong" "$dir/"
touch "$dir/efficientnet-lite0.tensors.tsv"
(cd "$dir" && sha256sum efficientnet-lite0.safetensors >efficientnet-lite0.safetensors.sha256)
out=$(bash "$script" 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "a cached file that is not the pinned conversion was used"
case $out in
  *"does not match the pinned sha256"*) ;;
  *) fail "the cached file's refusal does not say 'does not match the pinned sha256'" ;;
esac
echo "effnet_weights_check: both wrong files refused"
