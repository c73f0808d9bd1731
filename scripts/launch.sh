#!/usr/bin/env bash
# Starts N local ranks of a data-parallel program, as
# `torchrun --standalone --nproc-per-node N` would, for users without torchrun:
#
#   bash scripts/launch.sh -n 2 -- build/examples/frost-train --compare full,autofreeze
#
# Every rank gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR
# (127.0.0.1) and MASTER_PORT (-p, default 29500). Rank 0 prints to this
# terminal; rank R > 0 writes <logs>/rank<R>.log (-l, default out/launch-logs).
# When a rank fails, the others are stopped, the failing rank and its log are
# named, and the script exits with that rank's status. -t sets
# FROST_DIST_TIMEOUT (seconds a rank waits for another before failing).
#
# Several hosts: -N NS0,NS1,... starts rank r inside network namespace NSr
# (`ip netns exec`, root; scripts/netns-hosts.sh makes two joined by a shaped
# link), -a ADDR is rank 0's address as the others reach it (MASTER_ADDR: the
# c10d store is on rank 0), -i IFNAME the interface Gloo binds in each rank
# (GLOO_SOCKET_IFNAME; otherwise Gloo takes the address the host name
# resolves to, which inside a namespace is not on its link). --pin puts rank
# r on core r mod the cores (taskset): one rank per core, as one per host.
#
#   scripts/netns-hosts.sh up 200mbit -- sh -c 'scripts/launch.sh -n 2 \
#     -N $FROST_NS_A,$FROST_NS_B -a $FROST_NS_ADDR_A -i $FROST_NS_IF -- build/examples/frost-train'
set -euo pipefail

usage() {
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
  echo "usage: $0 -n N [-p PORT] [-l LOGDIR] [-t SECONDS] [-N NS,NS...] [-a ADDR] [-i IFNAME] [--pin]" \
       "-- program [args...]"
}

nproc_=""
port=${MASTER_PORT:-29500}
logs=out/launch-logs
timeout_=""
addr=127.0.0.1
netns=()
ifname=""
pin=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|-p|-l|-t|-N|-a|-i)
      if [ $# -lt 2 ] || [ "$2" = "--" ]; then
        echo "launch.sh: $1 needs a value" >&2; usage >&2; exit 2
      fi ;;
  esac
  case "$1" in
    -n) nproc_=$2; shift 2 ;;
    -p) port=$2; shift 2 ;;
    -l) logs=$2; shift 2 ;;
    -t) timeout_=$2; shift 2 ;;
    -N) IFS=, read -r -a netns <<<"$2"; shift 2 ;;
    -a) addr=$2; shift 2 ;;
    -i) ifname=$2; shift 2 ;;
    --pin) pin=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "launch.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if ! [[ "$nproc_" =~ ^[1-9][0-9]*$ ]]; then
  echo "launch.sh: give the number of ranks with -n N (N >= 1)" >&2; exit 2
fi
if [ $# -eq 0 ]; then
  echo "launch.sh: give the program after --" >&2; exit 2
fi
if [ ${#netns[@]} -gt 0 ]; then
  if [ "${#netns[@]}" -ne "$nproc_" ]; then
    echo "launch.sh: -N names ${#netns[@]} namespaces for -n $nproc_ ranks; give one per rank" >&2; exit 2
  fi
  for ns in "${netns[@]}"; do
    if ! ip netns exec "$ns" true 2>/dev/null; then
      echo "launch.sh: cannot enter network namespace '$ns' (does it exist? root?)" >&2; exit 2
    fi
  done
  if [ "$addr" = 127.0.0.1 ]; then
    echo "launch.sh: with -N give -a, rank 0's address on the link (127.0.0.1 is each namespace's own)" >&2
    exit 2
  fi
fi
mkdir -p "$logs"
cores=$(nproc)

pids=()
ranks=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap 'cleanup; exit 130' INT TERM

for ((r = 0; r < nproc_; r++)); do
  # In a namespace each rank is alone on its "host", as torchrun on each
  # host would say.
  local_rank=$r local_world=$nproc_
  [ ${#netns[@]} -gt 0 ] && local_rank=0 local_world=1
  env_=(RANK=$r LOCAL_RANK=$local_rank WORLD_SIZE=$nproc_ LOCAL_WORLD_SIZE=$local_world
        MASTER_ADDR=$addr MASTER_PORT=$port)
  [ -n "$timeout_" ] && env_+=(FROST_DIST_TIMEOUT=$timeout_)
  [ -n "$ifname" ] && env_+=(GLOO_SOCKET_IFNAME=$ifname)
  # Each wrapper execs the next: the pid is the rank's own.
  pre=()
  [ "$pin" -eq 1 ] && pre+=(taskset -c $((r % cores)))
  [ ${#netns[@]} -gt 0 ] && pre+=(ip netns exec "${netns[$r]}")
  if [ "$r" -eq 0 ]; then
    "${pre[@]}" env "${env_[@]}" "$@" &
  else
    "${pre[@]}" env "${env_[@]}" "$@" >"$logs/rank$r.log" 2>&1 &
  fi
  pids+=($!)
  ranks[$!]=$r
done

status=0
running=("${pids[@]}")
while [ ${#running[@]} -gt 0 ]; do
  set +e
  wait -n -p done_pid "${running[@]}"
  rc=$?
  set -e
  still=()
  for p in "${running[@]}"; do [ "$p" != "$done_pid" ] && still+=("$p"); done
  running=("${still[@]}")
  if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
    status=$rc
    r=${ranks[$done_pid]}
    where="this terminal"
    [ "$r" -ne 0 ] && where="$logs/rank$r.log"
    echo "launch.sh: rank $r exited with status $rc (its output: $where); stopping the others" >&2
    cleanup
  fi
done
exit "$status"
