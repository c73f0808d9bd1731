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
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  echo "usage: $0 -n N [-p PORT] [-l LOGDIR] [-t SECONDS] -- program [args...]"
}

nproc_=""
port=${MASTER_PORT:-29500}
logs=out/launch-logs
timeout_=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n|-p|-l|-t)
      if [ $# -lt 2 ] || [ "$2" = "--" ]; then
        echo "launch.sh: $1 needs a value" >&2; usage >&2; exit 2
      fi ;;
  esac
  case "$1" in
    -n) nproc_=$2; shift 2 ;;
    -p) port=$2; shift 2 ;;
    -l) logs=$2; shift 2 ;;
    -t) timeout_=$2; shift 2 ;;
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
mkdir -p "$logs"

pids=()
ranks=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap 'cleanup; exit 130' INT TERM

for ((r = 0; r < nproc_; r++)); do
  env_=(RANK=$r LOCAL_RANK=$r WORLD_SIZE=$nproc_ LOCAL_WORLD_SIZE=$nproc_
        MASTER_ADDR=127.0.0.1 MASTER_PORT=$port)
  [ -n "$timeout_" ] && env_+=(FROST_DIST_TIMEOUT=$timeout_)
  if [ "$r" -eq 0 ]; then
    env "${env_[@]}" "$@" &
  else
    env "${env_[@]}" "$@" >"$logs/rank$r.log" 2>&1 &
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
