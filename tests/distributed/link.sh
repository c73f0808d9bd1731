#!/usr/bin/env bash
# ctest dist.link: data parallel over a real, shaped network link.
#
#   bash tests/distributed/link.sh BUILD/tests/frost_dist_tests SCRIPTS_DIR [RATE]
#
# Brings up two network namespaces joined by a veth pair shaped to RATE
# (default 200mbit; scripts/netns-hosts.sh), starts one rank in each with
# scripts/launch.sh -N (Gloo bound to the link, the c10d store on the first),
# and checks, from the link's own counters against frost's count:
#  1. bytes each rank sent per phase within 5 % of frost's all-reduced bytes
#     (x 2(N-1)/N = 1 for two ranks), with 0, 1, 2 and 3 of 4 blocks frozen;
#  2. unfreezing every block brings the bytes back to the phase with none
#     frozen, on the same GradientSync (one bucket rebuild per change);
#  3. a rank killed mid-run (its process ends, no goodbye) is named by the
#     other over the link within the timeout (FROST_DIST_TIMEOUT 8 s + 10 s,
#     the loopback test's promise).
# Skips (exit 77) where namespaces cannot be made (not root, no CAP_NET_ADMIN).
set -euo pipefail

bin=${1:?frost_dist_tests path}
scripts=${2:?scripts directory}
rate=${3:-200mbit}

if [ "${FROST_LINK_INNER:-}" != 1 ]; then
  # Outer: bring the hosts up around this same script (they go on any exit).
  set +e
  FROST_LINK_INNER=1 bash "$scripts/netns-hosts.sh" up "$rate" -- bash "$0" "$@"
  rc=$?
  [ "$rc" -eq 77 ] && echo "dist.link SKIPPED: two network namespaces could not be made (see above)"
  exit "$rc"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/frost_link_XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
check() {  # check DESCRIPTION CONDITION(awk expression on $0 is not needed: 0/1)
  if [ "$2" = 1 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

echo "link: $FROST_NS_A ($FROST_NS_ADDR_A) <-> $FROST_NS_B ($FROST_NS_ADDR_B), $FROST_NS_IF, $FROST_NS_RATE"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# --- 1, 2: bytes on the wire, frozen blocks, unfreezing ----------------------------
set +e
FROST_TEST_WORKER=link FROST_TEST_OUT=$work FROST_TEST_STEPS=8 \
  timeout 90 bash "$scripts/launch.sh" -n 2 -N "$FROST_NS_A,$FROST_NS_B" -a "$FROST_NS_ADDR_A" \
    -i "$FROST_NS_IF" -t 20 -l "$work" -- "$bin"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "FAIL the two ranks over the link exited with $rc"; cat "$work"/rank*.log 2>/dev/null
  exit 1
fi
for r in 0 1; do
  echo "rank $r: frozen steps frost_bytes wire_tx_bytes rebuilds"
  cat "$work/rank$r.txt"
  lines=$(wc -l <"$work/rank$r.txt")
  check "rank $r wrote 5 phases" "$([ "$lines" -eq 5 ] && echo 1 || echo 0)"
  # Each phase: wire within 5 % of frost's count (two ranks: 2(N-1)/N = 1).
  while read -r k steps frost wire rebuilds; do
    ok=$(awk -v f="$frost" -v w="$wire" 'BEGIN { print (f > 0 && w >= 0.95 * f && w <= 1.05 * f) ? 1 : 0 }')
    ratio=$(awk -v f="$frost" -v w="$wire" 'BEGIN { printf "%.4f", (f > 0) ? w / f : 0 }')
    check "rank $r, $k of 4 blocks frozen: wire/frost = $ratio (within 5 %)" "$ok"
  done <"$work/rank$r.txt"
  # Bytes fall with every frozen block; unfreezing brings them back.
  read -r b0 b1 b2 b3 b4 < <(awk '{ printf "%s ", $3 } END { print "" }' "$work/rank$r.txt")
  check "rank $r: frost's bytes fall as blocks freeze ($b0 > $b1 > $b2 > $b3)" \
    "$([ "$b0" -gt "$b1" ] && [ "$b1" -gt "$b2" ] && [ "$b2" -gt "$b3" ] && echo 1 || echo 0)"
  check "rank $r: unfrozen again, the same bytes as before freezing ($b4 = $b0)" \
    "$([ "$b4" -eq "$b0" ] && echo 1 || echo 0)"
  # One GradientSync throughout: 1 build + 4 changes of what trains.
  rb=$(awk 'END { print $5 }' "$work/rank$r.txt")
  check "rank $r: buckets rebuilt on each change, never re-wrapped ($rb builds = 1 + 4 changes)" \
    "$([ "$rb" -eq 5 ] && echo 1 || echo 0)"
done

# --- 3: a rank killed over the link is named within the timeout -------------------
# Started directly (launch.sh would stop rank 0 as soon as rank 1 dies, and the
# promise is rank 0's own message).
rm -f "$work"/rank*.txt "$work"/rank*.log
t0=$(date +%s)
for r in 0 1; do
  ns=$FROST_NS_A; [ "$r" -eq 1 ] && ns=$FROST_NS_B
  timeout 60 ip netns exec "$ns" env RANK=$r WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR="$FROST_NS_ADDR_A" \
    MASTER_PORT=29500 GLOO_SOCKET_IFNAME="$FROST_NS_IF" FROST_DIST_TIMEOUT=8 FROST_TEST_WORKER=link \
    FROST_TEST_OUT="$work" FROST_TEST_STEPS=40 FROST_TEST_DIE_RANK=1 FROST_TEST_DIE_STEP=5 \
    "$bin" >"$work/rank$r.log" 2>&1 &
  eval "pid$r=$!"
done
set +e
wait "$pid1"; rc1=$?
wait "$pid0"; rc0=$?
set -e
t1=$(date +%s)
echo "killed-rank run: rank 0 exited $rc0 after $((t1 - t0)) s, rank 1 exited $rc1"
sed -n '1,5p' "$work/rank0.log"
check "rank 1 died as told (status 7)" "$([ "$rc1" -eq 7 ] && echo 1 || echo 0)"
check "rank 0 failed (status 2)" "$([ "$rc0" -eq 2 ] && echo 1 || echo 0)"
check "rank 0 names rank 1" "$(grep -q 'frost: rank 0 of 2.*rank 1 stopped responding' "$work/rank0.log" && echo 1 || echo 0)"
check "within the timeout: $((t1 - t0)) s < 8 + 10 s" "$([ $((t1 - t0)) -lt 18 ] && echo 1 || echo 0)"
exit "$fail"
