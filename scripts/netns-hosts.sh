#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair,
# shaped in both directions to RATE with tc's token bucket (tbf), so that a
# data-parallel run meets a limited network link the way two real hosts would.
#
#   sudo scripts/netns-hosts.sh up 200mbit -- COMMAND [ARGS...]
#       brings the hosts up, runs COMMAND (in this, the root, namespace) with
#       FROST_NS_A, FROST_NS_B (the namespaces), FROST_NS_ADDR_A, FROST_NS_ADDR_B
#       (their addresses), FROST_NS_IF (the link's interface name in both) and
#       FROST_NS_RATE in its environment, and removes everything it made when
#       COMMAND ends, fails or is interrupted (INT, TERM, HUP); exits with
#       COMMAND's status.
#   sudo scripts/netns-hosts.sh up 1gbit
#       brings them up and leaves them (prints the state file's path and its
#       variables); `down STATEFILE` removes them.
#   sudo scripts/netns-hosts.sh down [STATEFILE]
#       removes what STATEFILE names (without one: every set this script left
#       up, as listed in /run/frost-netns).
#
# RATE: tc's units (1gbit, 200mbit, 50mbit, ...), or "none" for an unshaped
# link. Addresses: 192.0.2.1 and 192.0.2.2/30 (TEST-NET-1, RFC 5737: never
# routed), inside the namespaces only; the namespaces have no other interface
# than loopback and the link, and no route but the link's own /30, so no other
# address can be reached from them. IPv6 is off on the link (no router or
# neighbour discovery adds bytes to its counters).
#
# Needs CAP_NET_ADMIN and CAP_SYS_ADMIN (ip netns mounts a namespace file):
# root. Refuses, saying so, without them (exit 77, the ctest skip code).
set -euo pipefail

readonly STATE_DIR=${FROST_NETNS_STATE_DIR:-/run/frost-netns}
readonly PREFIX=frost-h          # every namespace this script makes starts with it
readonly IFNAME=fr0              # the link's name inside both namespaces
readonly ADDR_A=192.0.2.1 ADDR_B=192.0.2.2 PREFIXLEN=30

usage() {
  sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
  echo "usage: $0 up RATE [-- COMMAND...] | down [STATEFILE]"
}
die() { echo "netns-hosts.sh: $*" >&2; exit 2; }

# The rights: root, or both capabilities in the effective set.
check_rights() {
  local caps
  caps=$(awk '/^CapEff:/ {print $2}' /proc/self/status 2>/dev/null || echo 0)
  # CAP_NET_ADMIN = bit 12, CAP_SYS_ADMIN = bit 21
  if (( (16#${caps:-0} >> 12 & 1) == 0 || (16#${caps:-0} >> 21 & 1) == 0 )); then
    echo "netns-hosts.sh: needs CAP_NET_ADMIN and CAP_SYS_ADMIN to make network namespaces," \
         "a veth pair and tc qdiscs (user $(id -un), effective capabilities 0x${caps}); run it" \
         "as root (sudo), or in a container started with --cap-add NET_ADMIN --cap-add SYS_ADMIN" >&2
    exit 77
  fi
  for tool in ip tc; do
    command -v "$tool" >/dev/null || { echo "netns-hosts.sh: '$tool' not found (Debian: iproute2)" >&2; exit 77; }
  done
}

# RATE -> tbf's burst: at least one GSO packet (64 KiB) and what the link
# sends in 4 ms (a 250 Hz timer tick), so the bucket never throttles below
# RATE.
burst_for() {
  local rate=$1 bits
  bits=$(awk -v r="$rate" 'BEGIN {
    n = r + 0; u = tolower(substr(r, length(n "") + 1));
    m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : (u == "bit" || u == "") ? 1 : -1;
    if (m < 0 || n <= 0) print -1; else printf "%.0f", n * m }')
  [ "$bits" -gt 0 ] 2>/dev/null || die "RATE '$rate': give tc's units, e.g. 1gbit, 200mbit, 500kbit, or none"
  local b=$(( bits / 8 / 250 ))
  (( b < 70000 )) && b=70000
  echo "$b"
}

# --- up -------------------------------------------------------------------------
NS_A="" NS_B="" STATE_FILE="" MADE_A=0 MADE_B=0

teardown() {
  # Only what this run made; `ip netns del` removes the veth pair and its
  # qdiscs with the namespace.
  set +e
  (( MADE_A )) && ip netns del "$NS_A" 2>/dev/null
  (( MADE_B )) && ip netns del "$NS_B" 2>/dev/null
  [ -n "$STATE_FILE" ] && rm -f "$STATE_FILE"
  MADE_A=0 MADE_B=0
}

bring_up() {
  local rate=$1 id
  id="$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
  NS_A="$PREFIX-$id-a" NS_B="$PREFIX-$id-b"
  ip netns add "$NS_A" || die "could not make network namespace $NS_A"
  MADE_A=1
  ip netns add "$NS_B" || die "could not make network namespace $NS_B"
  MADE_B=1
  # Created inside the namespaces: the root namespace never holds the pair.
  ip link add "$IFNAME" netns "$NS_A" type veth peer name "$IFNAME" netns "$NS_B" \
    || die "could not make the veth pair (kernel without veth?)"
  local ns addr
  for ns in "$NS_A" "$NS_B"; do
    addr=$ADDR_A; [ "$ns" = "$NS_B" ] && addr=$ADDR_B
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
      2>/dev/null || true  # a kernel without IPv6: nothing to silence
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/$PREFIXLEN" dev "$IFNAME"
    if [ "$rate" != none ]; then
      tc -n "$ns" qdisc add dev "$IFNAME" root tbf rate "$rate" burst "$(burst_for "$rate")" latency 50ms \
        || die "tc could not shape $IFNAME to $rate (kernel without sch_tbf?)"
    fi
    ip -n "$ns" link set "$IFNAME" up
  done
  # Both ends up: bounded, 50 tries of 0.1 s.
  local i
  for ((i = 0; i < 50; i++)); do
    if ip -n "$NS_A" -o link show "$IFNAME" | grep -q LOWER_UP &&
       ip -n "$NS_B" -o link show "$IFNAME" | grep -q LOWER_UP; then
      return 0
    fi
    sleep 0.1
  done
  die "the link did not come up within 5 s"
}

write_env() {
  cat <<EOF
FROST_NS_A=$NS_A
FROST_NS_B=$NS_B
FROST_NS_ADDR_A=$ADDR_A
FROST_NS_ADDR_B=$ADDR_B
FROST_NS_IF=$IFNAME
FROST_NS_RATE=$1
EOF
}

cmd_up() {
  [ $# -ge 1 ] || die "up needs a RATE (1gbit, 200mbit, ..., none)"
  local rate=$1; shift
  [ "$rate" = none ] || burst_for "$rate" >/dev/null
  if [ $# -gt 0 ]; then
    [ "$1" = "--" ] || die "after RATE: -- COMMAND [ARGS...], or nothing"
    shift
    [ $# -gt 0 ] || die "give the command after --"
  fi
  check_rights
  trap 'teardown' EXIT
  trap 'teardown; trap - EXIT; exit 130' INT
  trap 'teardown; trap - EXIT; exit 143' TERM
  trap 'teardown; trap - EXIT; exit 129' HUP
  bring_up "$rate"
  if [ $# -gt 0 ]; then
    # The command runs as a child (not exec): this shell stays to clean up.
    set +e
    env $(write_env "$rate") "$@" &
    local child=$!
    # A signal to us ends the command too, then the trap removes the hosts.
    trap 'kill -TERM $child 2>/dev/null; wait $child; teardown; trap - EXIT; exit 130' INT
    trap 'kill -TERM $child 2>/dev/null; wait $child; teardown; trap - EXIT; exit 143' TERM
    trap 'kill -TERM $child 2>/dev/null; wait $child; teardown; trap - EXIT; exit 129' HUP
    wait $child
    local rc=$?
    set -e
    exit "$rc"  # the EXIT trap tears down
  fi
  mkdir -p "$STATE_DIR"
  STATE_FILE="$STATE_DIR/$NS_A.env"
  write_env "$rate" >"$STATE_FILE"
  trap - EXIT INT TERM HUP  # left up on purpose: `down` removes them
  STATE_FILE=""
  echo "$STATE_DIR/$NS_A.env"
  cat "$STATE_DIR/$NS_A.env"
}

cmd_down() {
  check_rights
  local files=()
  if [ $# -ge 1 ]; then
    files=("$1")
  else
    shopt -s nullglob
    files=("$STATE_DIR"/"$PREFIX"-*.env)
    shopt -u nullglob
    [ ${#files[@]} -gt 0 ] || { echo "netns-hosts.sh: nothing left up (no state files in $STATE_DIR)"; return 0; }
  fi
  local f a b
  for f in "${files[@]}"; do  # bounded: the files listed
    [ -f "$f" ] || die "no state file '$f'"
    a=$(sed -n 's/^FROST_NS_A=//p' "$f"); b=$(sed -n 's/^FROST_NS_B=//p' "$f")
    # Only names this script makes: never another namespace.
    [[ "$a" == "$PREFIX"-*-a && "$b" == "$PREFIX"-*-b ]] || die "'$f' names no namespaces of this script"
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    rm -f "$f"
    echo "removed $a and $b"
  done
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
