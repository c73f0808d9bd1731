#!/usr/bin/env bash
# scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...] — fuzz one of frost's
# readers (fuzz/targets/TARGET.hpp) for SECONDS with libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer (Debian's clang 14, installed here on first use:
# scripts/deps.sh --fuzz); SECONDS 0 only builds it.
# Targets: checkpoint cli idx options safetensors state_dict.
#
# Seeds: fuzz/corpus/TARGET/ and fuzz/regressions/TARGET/ (read, never grown);
# what the fuzzer adds goes to build-fuzz/corpus/TARGET/. A crash, a hang or a
# sanitizer report is written to fuzz/regressions/TARGET/ (crash-<sha1>): fix it
# at the root in the reader and commit the file; ctest fuzz.replay.TARGET then
# replays it on every build (frost_fuzz_replay, g++, no clang).
#
# LibTorch is Debian's, built with g++ against libstdc++: clang compiles against
# the same libstdc++ (its default on Debian) and the same C++11 ABI, so it links.
# LibTorch itself is not instrumented: ASan sees frost's reads and writes, not
# those inside LibTorch's archive reader (a crash there still stops the run).
# The build and the run hold the shared build lock (/tmp/frost-build.lock) for
# their whole length, so that nothing else timed runs beside them (the team's
# protocol: one CPU-heavy job at a time). The script takes it itself (flock(1)'s
# re-exec idiom); do not wrap it in another `flock` of the same file: a second
# open of the lock would wait for the first one forever. FROST_FUZZ_NO_LOCK=1
# runs without it (a machine of your own).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${FROST_FUZZ_NO_LOCK:-0}" != 1 ] && [ "${FROST_FUZZ_LOCKED:-}" != "$0" ]; then
  exec env FROST_FUZZ_LOCKED="$0" flock /tmp/frost-build.lock "$0" "$@"
fi
targets="checkpoint cli idx options safetensors state_dict"
if [ $# -lt 2 ] || ! grep -qw -- "$1" <<<"$targets" || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...] (targets: $targets)" >&2
  exit 2
fi
target=$1 seconds=$2
shift 2

if ! command -v clang++-14 >/dev/null || ! [ -e /usr/lib/llvm-14/lib/libFuzzer.a ]; then
  bash "$root/scripts/deps.sh" --fuzz
fi

out=${FROST_FUZZ_BUILD:-$root/build-fuzz}
bin=$out/$target
mkdir -p "$out/corpus/$target" "$root/fuzz/regressions/$target"
# Rebuilt when a header it may include or its sources changed.
if [ ! -x "$bin" ] || [ -n "$(find "$root/include" "$root/fuzz" "$root/examples/common" \
     "$root/examples/train/cli.hpp" -newer "$bin" -name '*.[hc]pp' -print -quit)" ]; then
  echo "fuzz: building $bin with clang++-14"
  clang++-14 -std=c++17 -O1 -g -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -D_GLIBCXX_USE_CXX11_ABI=1 -DGLOG_CUSTOM_PREFIX_SUPPORT -DGFLAGS_IS_A_DLL=0 \
    -I"$root/include" -I"$root/examples" -I"$root/examples/common" \
    -isystem /usr/include/torch/csrc/api/include \
    "$root/fuzz/$target.cpp" -o "$bin" \
    -ltorch -ltorch_cpu -lc10 -lz -lpthread
fi

if [ "$seconds" -eq 0 ]; then exit 0; fi  # SECONDS 0: build only
echo "fuzz: $target for ${seconds}s"
cd "$out"
exec "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$root/fuzz/regressions/$target/" -dict="$root/fuzz/dict/$target.dict" \
  "$@" "$out/corpus/$target" "$root/fuzz/corpus/$target" "$root/fuzz/regressions/$target"
