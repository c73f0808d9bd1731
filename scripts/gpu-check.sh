#!/usr/bin/env bash
# scripts/gpu-check.sh — everything a session lent the GPU machine runs, in one go.
#
#   scripts/gpu-check.sh            # from the repository root
#
# 1. configures and builds tests, examples and benchmarks in build-gpu against
#    the LibTorch inside the machine's PyTorch (Release);
# 2. runs the whole ctest suite (with CUDA available the tests that train run
#    on CUDA too, the sync-debug test included);
# 3. runs the CUDA overhead benchmarks (frost_bench --benchmark_filter=device:cuda)
#    with JSON output and turns them into the overhead table
#    (scripts/bench-table.py);
# 4. runs the example trainer on CUDA with a larger model, when it was built;
# 5. runs frost-train data-parallel on CUDA (2 ranks: NCCL, else Gloo);
# 6. writes a markdown report to $OUT/gpu-report.md (./gpu-report.md when $OUT
#    is unset), with the logs next to it.
#
# Each part keeps going when an earlier one fails, so the report is complete;
# every part runs under a time limit taken from a total budget
# (FROST_GPU_BUDGET_S, default 530 s: a device call is limited to 10 minutes).
# Exit status: 0 when ctest passed, 1 otherwise (including "could not build").
# Local dry run of the flow (no GPU needed): FROST_GPU_BUDGET_S=300 OUT=/tmp/x scripts/gpu-check.sh
set -u

# ---------------------------------------------------------------------------
# Settings (environment overrides).
# ---------------------------------------------------------------------------
BUILD_DIR=${FROST_GPU_BUILD_DIR:-build-gpu}
JOBS=${FROST_GPU_JOBS:-16}
BUDGET_S=${FROST_GPU_BUDGET_S:-530}
BENCH_FILTER=${FROST_GPU_BENCH_FILTER:-device:cuda}
CTEST_JOBS=${FROST_GPU_CTEST_JOBS:-8}

# >>> The example trainer's command line on CUDA. NOT FINAL: the trainer's flags
# >>> may still change; adjust here (or set FROST_TRAIN_ARGS) when they do.
FROST_TRAIN_ARGS=${FROST_TRAIN_ARGS:---device cuda --model small --epochs 1}
# <<<

OUT_DIR=${OUT:-.}
REPORT="$OUT_DIR/gpu-report.md"
LOGS="$OUT_DIR/gpu-logs"
mkdir -p "$LOGS"
START=$(date +%s)

remaining() { echo $((BUDGET_S - ($(date +%s) - START))); }
elapsed() { echo $(($(date +%s) - START)); }

# run_limited CAP LOG CMD...: runs CMD with a limit of min(CAP, what the budget
# has left minus RESERVE seconds for the parts after it); returns its status,
# 124 on a timeout, 125 when no time was left to start it.
RESERVE=0
run_limited() {
  local cap=$1 log=$2
  shift 2
  local left=$(($(remaining) - RESERVE))
  local limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 10 ]; then
    echo "(skipped: no time left in the ${BUDGET_S}s budget)" >"$log"
    return 125
  fi
  echo "[gpu-check $(elapsed)s] $* (limit ${limit}s)" >&2
  timeout --kill-after=15 "$limit" "$@" >"$log" 2>&1
}

status_word() {
  case "$1" in
    0) echo "passed" ;;
    124 | 137) echo "**timed out**" ;;
    125) echo "**skipped (no time left)**" ;;
    126) echo "**not run (not built)**" ;;
    *) echo "**failed (exit $1)**" ;;
  esac
}

# ---------------------------------------------------------------------------
# Machine.
# ---------------------------------------------------------------------------
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
  head -n 4 | tr '\n' ';' | sed 's/;$//')
[ -n "$GPU" ] || GPU="(nvidia-smi not available)"
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)
TORCH_VER=$(python3 -c 'import torch;print(torch.__version__, "(CUDA", str(torch.version.cuda) + ", cuDNN", str(torch.backends.cudnn.version()) + ")")' 2>/dev/null)
[ -n "$TORCH_VER" ] || TORCH_VER="(python3 -c 'import torch' failed)"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  COMMIT="$COMMIT (+ uncommitted changes)"
fi

{
  echo "# frost GPU check"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| GPU | $GPU |"
  echo "| CPU | $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |"
  echo "| LibTorch | $TORCH_VER |"
  echo "| commit | $COMMIT |"
  echo "| CMake prefix | ${TORCH_PREFIX:-(none)} |"
  echo
} >"$REPORT"

# ---------------------------------------------------------------------------
# 1. Configure and build.
# ---------------------------------------------------------------------------
GEN=()
KEEP_GOING=(-k)
if command -v ninja >/dev/null 2>&1; then
  GEN=(-G Ninja)
  KEEP_GOING=(-k 0)
fi
if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then GEN=(); fi  # keep the generator it was made with
if [ -f "$BUILD_DIR/build.ninja" ]; then KEEP_GOING=(-k 0); fi

RESERVE=330  # ctest + benchmarks + trainers need time after the build
run_limited 120 "$LOGS/configure.log" \
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DCMAKE_BUILD_TYPE=Release \
  -DFROST_BUILD_TESTS=ON -DFROST_BUILD_EXAMPLES=ON -DFROST_BUILD_BENCHMARKS=ON
CONFIGURE_RC=$?
BUILD_RC=126
if [ "$CONFIGURE_RC" -eq 0 ]; then
  # Keep going past a failing target so the others (tests, benchmarks) still build.
  run_limited 330 "$LOGS/build.log" cmake --build "$BUILD_DIR" -j "$JOBS" -- "${KEEP_GOING[@]}"
  BUILD_RC=$?
fi
BUILD_SECS=$(elapsed)
{
  echo "## Build"
  echo
  echo "- configure: $(status_word "$CONFIGURE_RC")"
  echo "- build (-j$JOBS, Release): $(status_word "$BUILD_RC"), ${BUILD_SECS}s since start"
  for t in tests/frost_tests benchmarks/frost_bench examples/frost-train examples/frost-schedule; do
    if [ -x "$BUILD_DIR/$t" ]; then echo "  - \`$t\` built"; else echo "  - \`$t\` **not built**"; fi
  done
  if [ "$CONFIGURE_RC" -ne 0 ]; then
    echo
    echo '```'
    tail -n 30 "$LOGS/configure.log"
    echo '```'
  elif [ "$BUILD_RC" -ne 0 ]; then
    echo
    echo "Build log (first errors, or the last lines):"
    echo
    echo '```'
    { grep -E -m 25 'error|Error' "$LOGS/build.log" || tail -n 25 "$LOGS/build.log"; } | cut -c1-300
    echo '```'
  fi
  echo
} >>"$REPORT"

# ---------------------------------------------------------------------------
# 2. The test suite.
# ---------------------------------------------------------------------------
RESERVE=240  # benchmarks + trainers
CTEST_RC=126
if [ -x "$BUILD_DIR/tests/frost_tests" ]; then
  # shellcheck disable=SC2016  # $1/$2 expand in the inner shell
  run_limited 200 "$LOGS/ctest.log" \
    bash -c 'cd "$1" && exec ctest --output-on-failure -j "$2" --timeout 180' _ "$BUILD_DIR" "$CTEST_JOBS"
  CTEST_RC=$?
fi
{
  echo "## Tests (ctest)"
  echo
  if [ "$CTEST_RC" -eq 126 ]; then
    echo "**Not run: frost_tests was not built.**"
  else
    echo "ctest: $(status_word "$CTEST_RC")"
    echo
    echo '```'
    grep -E 'tests passed|tests failed|Total Test time' "$LOGS/ctest.log" || echo "(no ctest summary; see gpu-logs/ctest.log)"
    echo '```'
    if grep -q -E '^\s*[0-9]+ - ' "$LOGS/ctest.log"; then
      echo
      echo "Failed or timed-out tests:"
      echo
      echo '```'
      sed -n '/The following tests FAILED/,$p' "$LOGS/ctest.log" | head -n 40
      echo '```'
    fi
    CUDA_TESTS=$(grep -c -i -E 'cuda' "$LOGS/ctest.log" || true)
    echo
    echo "Lines of the ctest log mentioning CUDA: $CUDA_TESTS."
  fi
  echo
} >>"$REPORT"

# ---------------------------------------------------------------------------
# 3. CUDA overhead benchmarks.
# ---------------------------------------------------------------------------
RESERVE=150  # trainers
BENCH_RC=126
BENCH_JSON="$OUT_DIR/gpu-bench.json"
if [ -x "$BUILD_DIR/benchmarks/frost_bench" ]; then
  run_limited 240 "$LOGS/bench.log" "$BUILD_DIR/benchmarks/frost_bench" \
    --benchmark_filter="$BENCH_FILTER" \
    --benchmark_out="$BENCH_JSON" --benchmark_out_format=json
  BENCH_RC=$?
fi
{
  echo "## Controller overhead on CUDA (ViT-B/16, batch 64, 224x224, fp32)"
  echo
  echo "frost_bench --benchmark_filter='$BENCH_FILTER': $(status_word "$BENCH_RC")"
  echo
  if [ -s "$BENCH_JSON" ]; then
    python3 scripts/bench-table.py "$BENCH_JSON" --device cuda --heading-level 3 ||
      echo "(bench-table.py failed)"
  elif [ ! -x "$BUILD_DIR/benchmarks/frost_bench" ]; then
    echo "**Not run: frost_bench was not built.**"
  else
    echo '```'
    tail -n 30 "$LOGS/bench.log"
    echo '```'
  fi
  echo
} >>"$REPORT"

# ---------------------------------------------------------------------------
# 4. The example trainer on CUDA.
# ---------------------------------------------------------------------------
RESERVE=95  # the data-parallel run after it
{
  echo "## Example trainer on CUDA"
  echo
} >>"$REPORT"
if [ -x "$BUILD_DIR/examples/frost-train" ]; then
  # shellcheck disable=SC2086  # FROST_TRAIN_ARGS is a list of flags
  run_limited 120 "$LOGS/train.log" "$BUILD_DIR/examples/frost-train" $FROST_TRAIN_ARGS
  TRAIN_RC=$?
  {
    echo "\`frost-train $FROST_TRAIN_ARGS\`: $(status_word "$TRAIN_RC")"
    echo
    echo '```'
    tail -n 40 "$LOGS/train.log" | cut -c1-300
    echo '```'
    echo
  } >>"$REPORT"
else
  echo "Not run: \`$BUILD_DIR/examples/frost-train\` does not exist." >>"$REPORT"
  echo >>"$REPORT"
fi

# ---------------------------------------------------------------------------
# 5. Data-parallel on CUDA: two ranks of frost-train (NCCL; on a single GPU
#    NCCL may refuse two ranks on one device, then Gloo on CUDA tensors).
# ---------------------------------------------------------------------------
RESERVE=5
{
  echo "## Data-parallel on CUDA (2 ranks, scripts/launch.sh)"
  echo
} >>"$REPORT"
DP_ARGS="--device cuda --strategy autofreeze --epochs 1 --train-limit 2000 --no-progress"
if [ -x "$BUILD_DIR/examples/frost-train" ]; then
  for backend in nccl gloo; do
    # shellcheck disable=SC2086
    FROST_DIST_BACKEND=$backend run_limited 90 "$LOGS/dp-$backend.log" \
      bash scripts/launch.sh -n 2 -p 29517 -t 60 -l "$LOGS/dp-$backend-ranks" -- \
      "$BUILD_DIR/examples/frost-train" $DP_ARGS --out "$OUT_DIR/dp-$backend"
    DP_RC=$?
    {
      echo "\`FROST_DIST_BACKEND=$backend scripts/launch.sh -n 2 -- frost-train $DP_ARGS\`: $(status_word "$DP_RC")"
      echo
      echo '```'
      tail -n 15 "$LOGS/dp-$backend.log" | cut -c1-300
      echo '```'
      echo
    } >>"$REPORT"
    [ "$DP_RC" -eq 0 ] && break
  done
else
  echo "Not run: \`$BUILD_DIR/examples/frost-train\` does not exist." >>"$REPORT"
fi

{
  echo "## Summary"
  echo
  echo "- build: $(status_word "$BUILD_RC"); ctest: $(status_word "$CTEST_RC"); CUDA benchmarks: $(status_word "$BENCH_RC")"
  echo "- total time: $(elapsed)s (budget ${BUDGET_S}s); logs in gpu-logs/, benchmark JSON in gpu-bench.json"
} >>"$REPORT"

echo "[gpu-check $(elapsed)s] report: $REPORT" >&2
[ "$CTEST_RC" -eq 0 ] && exit 0
exit 1
