#!/usr/bin/env bash
# scripts/gpu-check.sh — the GPU check: one command on the lent GPU machine,
# proven on the CPU machine first.
#
#   bash scripts/gpu-check.sh --prepare   # CPU machine: fill .gpu-carry/ (scripts/gpu-prepare.sh)
#   bash scripts/gpu-check.sh --dry-run   # CPU machine: the same command, CPU, tiny sizes,
#                                         # Debian's dev packages hidden from the build
#   bash scripts/gpu-check.sh             # GPU machine (device tool, carry .gpu-carry)
#
# On the GPU machine (pip's torch 2.11 with CUDA 13 and NCCL, 16 cores) it
#   1. configures against that LibTorch and the prepared folder only and
#      builds every target (ninja all: the suite's tests need their programs,
#      and a new test brings new ones) with -j16, Release, without
#      precompiled headers (FROST_TESTS_PCH=OFF: a PCH is one
#      more serial step before frost_tests' units, and the slowest unit's time
#      is template instantiation, not header parsing: docs/gpu.md); then checks
#      that no header came from /usr/include/{boost,doctest,CLI,nlohmann,gloo,
#      benchmark} or zlib's (a dependency the folder lacks fails the dry run),
#      and projects the build's time at -j16 from .ninja_log's per-unit times;
#   2. runs the sync-debug test (zero host synchronisations between decision
#      points on CUDA, for every criterion that reads per-step tensors) and
#      then the ctest suite without compile_fail.* (-j 8), timing it;
#   3. runs the controller-overhead benchmarks of every criterion on ViT-B/16
#      (frost_bench, device:cuda): per-step overhead as a share of the step, and
#      the ATen operations per controller step (aten_ops; frost_bench counts
#      ATen calls, not CUDA kernel launches) — fp32 only: frost_bench has no
#      bf16 case yet, the report says so;
#   4. runs frost-train on CUDA (--model small, 2 seeds, the frontier, every
#      default strategy) and reports measured time, freeze steps and peak
#      device memory per strategy (results.csv: CUDA max allocated);
#   5. runs two ranks of frost-train on the one GPU (scripts/launch.sh), NCCL
#      first, then Gloo if NCCL refuses, and reports the gradient bytes per
#      step and whether the ranks' freeze timelines are identical;
#   6. runs a short pretrained EfficientNet-Lite0 job (frost-train --model
#      effnet-lite0 on the carried weights: full, static and dyf, one epoch of
#      a small subset), or reports it skipped when the weights were not
#      prepared, naming the commands that prepare them.
# Each part has its own time limit; the limits add up to less than the budget
# (checked at the start), and the budget is under 9 minutes. A part that fails
# does not stop the others. The report is $OUT/gpu-report.md (./gpu-report-<mode>/
# when OUT is unset) with at most 6 more files: gpu-bench.json, train-results.csv,
# train-summary.txt, train-frontier.svg, dp-results.csv, gpu-logs.tar.gz (every log).
# Exit status: 0 when every part that ran passed, 1 otherwise.
#
# The dry run runs the device's test selection (the whole suite but
# compile_fail.*, which test-torch2.sh runs) under the device's test limit
# scaled to this machine (x 8 / nproc: 8 tests side by side there, nproc
# here), and checks two projections against the device's limits: the build
# (per-unit compile times here, scheduled on 16 cores) and the suite (the sum
# of the test times here over 8 slots, at least the longest test). Either one
# over its device limit fails the dry run.
#
# Environment: FROST_GPU_CARRY (.gpu-carry), FROST_GPU_BUILD_DIR (build-gpu),
# FROST_GPU_JOBS (16 on the GPU, nproc in the dry run), FROST_GPU_PYTHON (the
# python3 that holds torch; the dry run defaults to scripts/test-torch2.sh's
# cached venv), FROST_GPU_LIMIT_<PART>_S to change one part's limit
# (CONFIGURE, BUILD, TESTS, BENCH, TRAIN, DIST, EFFNET), FROST_TRAIN_ARGS,
# FROST_DP_ARGS, FROST_EFFNET_ARGS, FROST_GPU_BENCH_FILTER (filters,
# space-separated, one run each), FROST_GPU_CTEST_ARGS, FROST_GPU_TARGETS.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

MODE=device
case "${1:-}" in
  --prepare) shift; exec bash scripts/gpu-prepare.sh "$@" ;;
  --dry-run) MODE=dry ;;
  "") ;;
  -h | --help) sed -n '2,60p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "gpu-check: unknown argument '$1' (--prepare, --dry-run or nothing)" >&2; exit 2 ;;
esac
# The dry run's suite runs -j$(nproc) on a small machine: one intra-op thread
# per test process, or two tests' spinning OpenMP threads oversubscribe the
# cores and the projected suite is the oversubscription's (the EfficientNet
# cache test took 25 s instead of 4 s and a slower CI machine's projection went
# over the device's limit). On the device the tests keep LibTorch's default.
if [ "$MODE" = dry ]; then export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}; fi

CARRY=${FROST_GPU_CARRY:-.gpu-carry}
BUILD_DIR=${FROST_GPU_BUILD_DIR:-build-gpu}
TORCH2_VENV=${FROST_TORCH2_VENV:-$HOME/.cache/frost/torch-${FROST_TORCH2_VERSION:-2.11.0}-venv}

# ---------------------------------------------------------------------------
# Sizes and limits per mode. The device's limits add up to 475 s < budget
# 480 s < 540 s (9 min); a device call may run 600 s and the session has 15
# minutes of device time in all, the machine's start and transfers included.
# How they were sized (per-unit compile times, the suite's time): docs/gpu.md.
# ---------------------------------------------------------------------------
DEV_JOBS=16         # the GPU machine's cores: ninja -j
DEV_CTEST_J=8       # tests side by side there (each test's torch gets 2 cores)
DEV_L_BUILD=295     # projected 77-85 s; above the 265 s once measured for one unit (docs/gpu.md)
DEV_L_TESTS=60      # the sync-debug test, then the suite (projected 22-33 s + CUDA's share)
DEV_L_CONFIGURE=20 DEV_L_BENCH=30 DEV_L_TRAIN=35 DEV_L_DIST=20 DEV_L_EFFNET=15
DEV_BUDGET_S=480
DEV_SUM=$((DEV_L_CONFIGURE + DEV_L_BUILD + DEV_L_TESTS + DEV_L_BENCH + DEV_L_TRAIN + DEV_L_DIST + DEV_L_EFFNET))
# The suite the device runs, and the dry run with it: everything but
# compile_fail.* (it builds a translation unit to see it rejected: a compiler
# check, the same on any machine, that scripts/test-torch2.sh runs).
CTEST_SELECT="-E ^compile_fail"
# Every target: the suite runs the examples, the fuzz replays and the dist
# tests' frost-train, and a list of them went stale as tests were added (a
# test whose program is not built reads "Not Run", a failure). On 16 cores
# the extra units cost no wall-clock: the build is as long as its slowest
# unit (the projection below says so each dry run).
DEFAULT_TARGETS="all"
if [ "$MODE" = device ]; then
  DEVICE=cuda
  JOBS=${FROST_GPU_JOBS:-$DEV_JOBS}
  BUDGET_S=${FROST_GPU_BUDGET_S:-$DEV_BUDGET_S}
  L_CONFIGURE=$DEV_L_CONFIGURE L_BUILD=$DEV_L_BUILD L_TESTS=$DEV_L_TESTS L_BENCH=$DEV_L_BENCH
  L_TRAIN=$DEV_L_TRAIN L_DIST=$DEV_L_DIST L_EFFNET=$DEV_L_EFFNET
  CTEST_ARGS=${FROST_GPU_CTEST_ARGS:--j $DEV_CTEST_J --timeout $DEV_L_TESTS $CTEST_SELECT}
  # Two runs, so that a timeout in the second keeps the first's results: the
  # controller alone (fast), then the training steps with and without it.
  BENCH_FILTERS=${FROST_GPU_BENCH_FILTER:-^ctl/.*/device:cuda/ ^train/.*/device:cuda/}
  TRAIN_ARGS=${FROST_TRAIN_ARGS:---device cuda --model small --compare --seeds 2 --frontier 3 --epochs 6 --train-limit 2560 --pretrain-epochs 1 --pretrain-limit 10000}
  DP_ARGS=${FROST_DP_ARGS:---device cuda --model small --compare full,autofreeze --epochs 2 --train-limit 2560 --pretrain-epochs 1 --pretrain-limit 5000 --frontier none}
  EFFNET_ARGS=${FROST_EFFNET_ARGS:---device cuda --model effnet-lite0 --compare full,static,dyf --seeds 1 --epochs 1 --train-limit 640 --val-limit 128 --test-limit 500 --frontier none}
  PYTHON=${FROST_GPU_PYTHON:-python3}
else
  # CPU, tiny sizes, seconds per part, but the device's whole test selection
  # under the device's test limit scaled to this machine: 8 tests side by side
  # there, nproc here. The build is not limited (2 cores: resume it with the
  # same command; ninja keeps what was built); its projection is checked.
  DEVICE=cpu
  JOBS=${FROST_GPU_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}  # (nproc answers OMP_NUM_THREADS)
  L_CONFIGURE=120 L_BUILD=0 L_TESTS=$(((DEV_L_TESTS * DEV_CTEST_J + JOBS - 1) / JOBS))
  L_BENCH=60 L_TRAIN=150 L_DIST=80 L_EFFNET=120
  CTEST_ARGS=${FROST_GPU_CTEST_ARGS:--j $JOBS --timeout $L_TESTS $CTEST_SELECT}
  BENCH_FILTERS=${FROST_GPU_BENCH_FILTER:-^ctl/model:tiny/criterion:[^/]*/schedule:Constant/mode:step/device:cpu/ ^train/model:tiny/criterion:(none|GradientThreshold)/schedule:[^/]*/device:cpu/}
  TRAIN_ARGS=${FROST_TRAIN_ARGS:---device cpu --model tiny --compare --seeds 2 --frontier 1 --epochs 2 --batch-size 64 --train-limit 256 --val-limit 128 --test-limit 256 --pretrain-epochs 1 --pretrain-limit 256 --warmup 2}
  DP_ARGS=${FROST_DP_ARGS:---device cpu --model tiny --compare full,autofreeze --epochs 2 --batch-size 64 --train-limit 256 --val-limit 128 --test-limit 256 --pretrain-epochs 1 --pretrain-limit 256 --warmup 2 --frontier none}
  EFFNET_ARGS=${FROST_EFFNET_ARGS:---device cpu --model effnet-lite0 --compare full,static,dyf --seeds 1 --epochs 2 --resolution 32 --batch-size 16 --train-limit 64 --val-limit 32 --test-limit 64 --warmup 1 --frontier none}
  # pip's torch 2.11 as on the GPU machine: scripts/test-torch2.sh's cached venv.
  if [ -n "${FROST_GPU_PYTHON:-}" ]; then
    PYTHON=$FROST_GPU_PYTHON
  else
    [ -x "$TORCH2_VENV/bin/python" ] || bash scripts/test-torch2.sh --install-only || exit 2
    PYTHON="$TORCH2_VENV/bin/python"
  fi
fi
for p in CONFIGURE BUILD TESTS BENCH TRAIN DIST EFFNET; do
  v="FROST_GPU_LIMIT_${p}_S"
  [ -n "${!v:-}" ] && eval "L_$p=${!v}"
done
LIMITS_SUM=$((L_CONFIGURE + L_BUILD + L_TESTS + L_BENCH + L_TRAIN + L_DIST + L_EFFNET))
# The dry run's budget only stops a runaway part: its limits are scaled or
# tiny-sized, and the device's sum is what the check below is about.
[ "$MODE" = device ] || BUDGET_S=${FROST_GPU_BUDGET_S:-$((LIMITS_SUM + 60))}
if [ "$LIMITS_SUM" -ge "$BUDGET_S" ] || { [ "$MODE" = device ] && [ "$BUDGET_S" -ge 540 ]; }; then
  echo "gpu-check: the parts' limits ($LIMITS_SUM s) must add up to less than the budget" \
       "($BUDGET_S s), and the budget must be under 540 s" >&2
  exit 2
fi
# The device's own limits, checked in the dry run too (CI sees a bad sum).
if [ "$DEV_SUM" -ge "$DEV_BUDGET_S" ] || [ "$DEV_BUDGET_S" -ge 540 ]; then
  echo "gpu-check: the device's limits ($DEV_SUM s) must add up to less than its budget" \
       "($DEV_BUDGET_S s), under 540 s" >&2
  exit 2
fi

# Output: $OUT (the device tool brings back at most 8 files: the report + 5).
OUT_DIR=${OUT:-gpu-report-$MODE}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
REPORT="$OUT_DIR/gpu-report.md"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/frost-gpu-check.XXXXXX")
LOGS="$WORK/logs"
mkdir -p "$LOGS"
START=$(date +%s)
FAILED=0

elapsed() { echo $(($(date +%s) - START)); }
log() { echo "[gpu-check $(elapsed)s] $*" >&2; }

# The budget's clock; the dry run's unlimited build is not counted (OFFSET).
OFFSET=0
budget_left() { echo $((BUDGET_S - ($(date +%s) - START) + OFFSET)); }

# run_part LIMIT LOG CMD...: CMD under LIMIT seconds (0: no limit), never past
# the budget, output to LOG. Returns CMD's status; 124/137 on a timeout, 125
# when the budget had no 5 s left for it.
run_part() {
  local limit=$1 logf=$2 left
  shift 2
  left=$(budget_left)
  if [ "$limit" -gt 0 ] && [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -ne 0 ] && [ "$limit" -lt 5 ]; then
    echo "(skipped: the ${BUDGET_S}s budget is spent)" >"$logf"
    return 125
  fi
  if [ "$limit" -gt 0 ]; then log "$* (limit ${limit}s)"; else log "$* (no limit)"; fi
  if [ "$limit" -gt 0 ]; then
    timeout --kill-after=5 "$limit" "$@" >"$logf" 2>&1
  else
    "$@" >"$logf" 2>&1
  fi
}

# Words for a part's status; a failure names its first error.
verdict() {  # verdict RC LOG
  case "$1" in
    0) echo "**passed**" ;;
    124 | 137) echo "**failed: timed out** (first error: $(first_error "$2"))" ;;
    125) echo "**skipped for time**" ;;
    126) echo "**skipped: not built**" ;;
    *) echo "**failed (exit $1)**: $(first_error "$2")" ;;
  esac
}
first_error() {
  local l
  # ctest's own verdict lines first: test names may contain "error"
  l=$(grep -m1 -E '\*\*\*(Failed|Timeout|Exception)|^frost-train: |what\(\)|error|Error|ERROR|FAILED|failed|Traceback|terminate called' "$1" 2>/dev/null |
    cut -c1-240)
  grep -q -E '\*\*\*(Failed|Timeout|Exception)' "$1" 2>/dev/null &&
    l=$(grep -m1 -E '\*\*\*(Failed|Timeout|Exception)' "$1" | sed 's/^ *//; s/  */ /g' | cut -c1-240)
  [ -n "$l" ] || l=$(tail -n 1 "$1" 2>/dev/null | cut -c1-240)
  echo "\`${l:-no output}\`"
}
fits() { case "$1" in 0) echo "**fits**" ;; 1) echo "**over**" ;; *) echo "not measured" ;; esac; }
note_rc() { [ "$1" -eq 0 ] || [ "$1" -eq 125 ] || FAILED=1; }
section() { printf '\n## %s\n\n' "$1" >>"$REPORT"; }
code_tail() {  # code_tail LOG N
  { echo '```'; tail -n "$2" "$1" | cut -c1-240; echo '```'; } >>"$REPORT"
}

# ---------------------------------------------------------------------------
# Machine.
# ---------------------------------------------------------------------------
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
  head -n 4 | tr '\n' ';' | sed 's/;$//')
[ -n "$GPU" ] || GPU="(nvidia-smi not available)"
TORCH_PREFIX=$("$PYTHON" -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)
TORCH_VER=$("$PYTHON" -c 'import torch;print(torch.__version__, "(CUDA", str(torch.version.cuda) + ", NCCL", (".".join(map(str, torch.cuda.nccl.version())) if torch.cuda.is_available() else "?") + ")")' 2>/dev/null)
[ -n "$TORCH_VER" ] || TORCH_VER="($PYTHON -c 'import torch' failed)"
if COMMIT=$(git rev-parse --short HEAD 2>/dev/null); then
  [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || COMMIT="$COMMIT (+ uncommitted changes)"
else
  # The device tool copies the working tree without .git: the commit the
  # folder was prepared from (scripts/gpu-prepare.sh wrote it).
  COMMIT="$(sed -n 's/.*from commit \([^ ]*\).*/\1/p' "$CARRY/MANIFEST.txt" 2>/dev/null) (as prepared; no .git here)"
fi
CARRY_NOTE=$(head -n 2 "$CARRY/MANIFEST.txt" 2>/dev/null | tr '\n' ';' | sed 's/;$//; s/;/; /')
{
  echo "# frost GPU check ($MODE)"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| mode | $MODE: device $DEVICE, -j$JOBS, budget ${BUDGET_S}s, parts' limits ${LIMITS_SUM}s (configure $L_CONFIGURE, build $L_BUILD, tests $L_TESTS, benchmarks $L_BENCH, trainer $L_TRAIN, two ranks $L_DIST, EfficientNet $L_EFFNET; 0 = not limited) |"
  echo "| device limits | budget ${DEV_BUDGET_S}s, limits ${DEV_SUM}s: configure $DEV_L_CONFIGURE, build $DEV_L_BUILD (-j$DEV_JOBS), tests $DEV_L_TESTS (-j $DEV_CTEST_J), benchmarks $DEV_L_BENCH, trainer $DEV_L_TRAIN, two ranks $DEV_L_DIST, EfficientNet $DEV_L_EFFNET |"
  echo "| GPU | $GPU |"
  echo "| CPU | $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |"
  echo "| compiler | $(c++ --version 2>/dev/null | head -n 1) |"
  echo "| LibTorch | $TORCH_VER at ${TORCH_PREFIX:-(not found)} |"
  echo "| commit | $COMMIT |"
  echo "| prepared folder | $CARRY: ${CARRY_NOTE:-**missing** (run scripts/gpu-check.sh --prepare on the CPU machine and carry it)} |"
} >"$REPORT"

# ---------------------------------------------------------------------------
# 1. Configure, build, and check where the headers came from.
# ---------------------------------------------------------------------------
section "1. Build"
CARRY_ABS=$(cd "$CARRY" 2>/dev/null && pwd || echo "$PWD/$CARRY")
LIBZ=$(ldconfig -p 2>/dev/null | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
[ -n "$LIBZ" ] || LIBZ=$(ls /lib/x86_64-linux-gnu/libz.so.1 /usr/lib/x86_64-linux-gnu/libz.so.1 /usr/lib64/libz.so.1 2>/dev/null | head -n 1)
cfg=(-S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_PREFIX_PATH=$CARRY_ABS;$TORCH_PREFIX" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  "-DZLIB_INCLUDE_DIR=$CARRY_ABS/include" "-DZLIB_LIBRARY=$LIBZ"
  "-DFROST_FASHION_MNIST=$CARRY_ABS/data/fashion-mnist"
  -DFROST_BUILD_TESTS=ON -DFROST_BUILD_EXAMPLES=ON -DFROST_BUILD_BENCHMARKS=ON -DFROST_TESTS_PCH=OFF)
[ -f "$BUILD_DIR/CMakeCache.txt" ] || cfg+=(-G Ninja)
if [ "$MODE" = dry ]; then
  # Hide Debian's packages from CMake's searches (merged /usr: / and /usr);
  # the compiler still sees /usr/include, hence the header check below.
  cfg+=("-DCMAKE_IGNORE_PREFIX_PATH=/usr;/")
fi
# Torch's CMake config looks for the CUDA toolkit its wheel was built with.
NVCC=$(command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
[ -z "$NVCC" ] || cfg+=("-DCUDAToolkit_ROOT=$(dirname "$(dirname "$NVCC")")")
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
# shellcheck disable=SC2206  # FROST_GPU_TARGETS is a list of names
TARGETS=(${FROST_GPU_TARGETS:-$DEFAULT_TARGETS})
if [ ! -f "$CARRY/MANIFEST.txt" ]; then
  echo "configure: $CARRY/MANIFEST.txt missing" >"$LOGS/configure.log"
  CONFIGURE_RC=1
else
  run_part "$L_CONFIGURE" "$LOGS/configure.log" cmake "${cfg[@]}"
  CONFIGURE_RC=$?
fi
BUILD_RC=126
if [ "$CONFIGURE_RC" -eq 0 ]; then
  present=()
  for t in "${TARGETS[@]}"; do
    ninja -C "$BUILD_DIR" -t targets all 2>/dev/null | grep -q "^$t:" && present+=("$t")
  done
  b0=$(date +%s)
  run_part "$L_BUILD" "$LOGS/build.log" ninja -C "$BUILD_DIR" -k 0 -j "$JOBS" "${present[@]}"
  BUILD_RC=$?
  [ "$L_BUILD" -ne 0 ] || OFFSET=$(($(date +%s) - b0))
fi
BUILD_S=$(elapsed)
note_rc "$CONFIGURE_RC"
note_rc "$BUILD_RC"
# Which dependency headers were read, and from where (ninja's depfile record).
DEPS_RC=126
if [ "$BUILD_RC" -ne 126 ]; then
  ninja -C "$BUILD_DIR" -t deps >"$LOGS/deps.txt" 2>/dev/null
  grep -E '^\s+/usr/include/((boost|doctest|CLI|nlohmann|gloo|benchmark)/|z(lib|conf)\.h)' \
    "$LOGS/deps.txt" | sort -u >"$LOGS/deps-system.txt"
  ninja -C "$BUILD_DIR" -t commands "${present[@]}" 2>/dev/null |
    grep -oE '/usr/lib[^ ]*lib(benchmark|gloo)[^ ]*' | sort -u >>"$LOGS/deps-system.txt"
  if [ -s "$LOGS/deps-system.txt" ]; then DEPS_RC=1; else DEPS_RC=0; fi
  note_rc "$DEPS_RC"
fi
{
  echo "- configure ($L_CONFIGURE s): $(verdict "$CONFIGURE_RC" "$LOGS/configure.log")"
  echo "- build of ${TARGETS[*]} (-j$JOBS, Release; limit $L_BUILD s): $(verdict "$BUILD_RC" "$LOGS/build.log"), ${BUILD_S}s since start"
  for t in tests/frost_tests tests/frost_dist_tests benchmarks/frost_bench examples/frost-train; do
    [ -x "$BUILD_DIR/$t" ] || echo "  - \`$t\` **not built**"
  done
  if [ "$DEPS_RC" -eq 0 ]; then
    echo "- dependencies from the prepared folder only: **passed** ($(grep -cE "$CARRY_ABS/include/" "$LOGS/deps.txt") header reads from $CARRY, none from /usr/include/{boost,doctest,CLI,nlohmann,gloo,benchmark}, zlib.h or Debian's libbenchmark)"
  elif [ "$DEPS_RC" -eq 1 ]; then
    echo "- dependencies from the prepared folder only: **failed**: the build read these, which the GPU machine does not have (add them to scripts/gpu-prepare.sh):"
    sed 's/^\s*/  - `/; s/$/`/' "$LOGS/deps-system.txt" | head -n 20
  fi
  for pkg in Boost doctest CLI11 nlohmann_json benchmark; do
    d=$(sed -n "s/^${pkg}_DIR:PATH=//p" "$BUILD_DIR/CMakeCache.txt" 2>/dev/null)
    case "$d" in "$CARRY_ABS"/*) ;; *) echo "- **$pkg was found outside the prepared folder: ${d:-not found}**"; FAILED=1 ;; esac
  done
} >>"$REPORT"
# Per-unit compile times (.ninja_log: the last build of each output) and the
# build's time projected on the device: the units scheduled longest first on
# its cores, then the longest link. In the dry run a projection over the
# device's build limit fails the check: the device would time out.
PROJ_RC=126
if [ "$BUILD_RC" -ne 126 ] && [ -f "$BUILD_DIR/.ninja_log" ]; then
  ninja -C "$BUILD_DIR" -t commands "${present[@]}" 2>/dev/null |
    grep -oE ' -o [^ ]+' | sed 's/^ -o //' | sort -u >"$LOGS/build-outputs.txt"
  "$PYTHON" - "$BUILD_DIR/.ninja_log" "$LOGS/build-outputs.txt" "$DEV_JOBS" "$DEV_L_BUILD" "$MODE" \
    >"$LOGS/build-projection.txt" 2>&1 <<'EOF'
import heapq, sys
log, outs, jobs, limit, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
wanted = set(l.strip() for l in open(outs) if l.strip())
last = {}
for line in open(log):
    f = line.rstrip("\n").split("\t")
    if len(f) == 5 and f[0].isdigit():
        last[f[3]] = (int(f[1]) - int(f[0])) / 1000.0
units = {o: last[o] for o in wanted if o in last and o.endswith((".o", ".gch", ".pch"))}
links = {o: last[o] for o in wanted if o in last and o not in units}
missing = sorted(o for o in wanted if o not in last)
if not units:
    print("- per-unit compile times: none in .ninja_log"); sys.exit(2)
slots = [0.0] * jobs
for t in sorted(units.values(), reverse=True):
    heapq.heapreplace(slots, slots[0] + t)
link = max(links.values(), default=0.0)
proj = max(slots) + link
top = sorted(units.items(), key=lambda kv: -kv[1])[:6]
name = lambda o: o.replace("CMakeFiles/", "").replace(".dir/", ": ").replace(".cpp.o", ".cpp")
print(f"- per-unit compile times ({len(units)} units, {sum(units.values()):.0f} s of compilation in all; "
      f"slowest: " + ", ".join(f"`{name(o)}` {t:.0f} s" for o, t in top) + f"); longest link {link:.0f} s")
over = proj >= limit
print(f"- the build projected on {jobs} cores (units longest first, then the longest link, "
      f"these units' times): {proj:.0f} s against the device's build limit {limit} s: "
      + ("**over: the device build would time out**" if over else "**fits**")
      + (f" ({len(missing)} outputs have no time yet: {', '.join(missing[:3])})" if missing else ""))
sys.exit(1 if over and mode == "dry" and not missing else 0)
EOF
  PROJ_RC=$?
  cat "$LOGS/build-projection.txt" >>"$REPORT"
  [ "$PROJ_RC" -ne 1 ] || FAILED=1
fi
if [ "$CONFIGURE_RC" -ne 0 ]; then code_tail "$LOGS/configure.log" 25
elif [ "$BUILD_RC" -ne 0 ]; then
  { echo '```'; { grep -E -m 20 'error|FAILED' "$LOGS/build.log" || tail -n 20 "$LOGS/build.log"; } | cut -c1-240; echo '```'; } >>"$REPORT"
fi

B="$BUILD_DIR"
have() { [ -x "$B/$1" ]; }

# ---------------------------------------------------------------------------
# 2. Tests: the sync-debug test on its own (its messages say whether it ran on
#    CUDA), then the ctest suite.
# ---------------------------------------------------------------------------
section "2. Tests"
T0=$(date +%s)
SYNC_RC=126 CTEST_RC=126 SUITE_RC=126 SYNC_S=0
if have tests/frost_tests; then
  run_part "$L_TESTS" "$LOGS/sync-debug.log" "$B/tests/frost_tests" -s \
    '-tc=*no synchronisation between decision points*'
  SYNC_RC=$?
  SYNC_S=$(($(date +%s) - T0))
  left=$((L_TESTS - SYNC_S))
  if [ "$left" -ge 10 ]; then
    # bash's `time` counts the CPU time of every test (ctest waits for them).
    # shellcheck disable=SC2086,SC2016  # CTEST_ARGS is a list of arguments
    run_part "$left" "$LOGS/ctest.log" bash -c \
      'TIMEFORMAT="ctest: wall %R s, cpu %U s user + %S s sys"; time ctest "$@"' ctest \
      --test-dir "$B" --output-on-failure $CTEST_ARGS
    CTEST_RC=$?
  else
    CTEST_RC=125
  fi
fi
note_rc "$SYNC_RC"
note_rc "$CTEST_RC"
{
  if [ "$SYNC_RC" -eq 126 ]; then
    where="not run"
  elif grep -q 'ran on CUDA with sync debug mode' "$LOGS/sync-debug.log" 2>/dev/null; then
    where="ran on CUDA with sync debug mode = error, and on the CPU"
  elif grep -q 'skipped: no CUDA device' "$LOGS/sync-debug.log" 2>/dev/null; then
    where="CUDA part skipped inside: no CUDA device; ran on the CPU, host reads counted"
  elif grep -q 'skipped: built without CUDA headers' "$LOGS/sync-debug.log" 2>/dev/null; then
    where="CUDA part skipped inside: built without CUDA headers; ran on the CPU"
  else where="where it ran: see sync-debug.log"; fi
  echo "- sync-debug test (frost_tests -tc='*no synchronisation between decision points*'; GradientThreshold, GradientNormChange exact and cheap, their AnyOf, TokenSimilarity, AttentionPredictor): $(verdict "$SYNC_RC" "$LOGS/sync-debug.log") ($where), ${SYNC_S} s"
  echo "- ctest $CTEST_ARGS (limit ${L_TESTS} s less the sync-debug run): $(verdict "$CTEST_RC" "$LOGS/ctest.log")"
  grep -h -E 'tests passed|tests failed|Total Test time|^ctest: wall' "$LOGS/ctest.log" 2>/dev/null | sed 's/^/  - /'
  if grep -q 'The following tests FAILED' "$LOGS/ctest.log" 2>/dev/null; then
    echo; echo '```'; sed -n '/The following tests FAILED/,$p' "$LOGS/ctest.log" | head -n 20; echo '```'
  fi
} >>"$REPORT"
# The suite's time projected on the device: its tests side by side in
# DEV_CTEST_J slots, each test as long as here (its own core at least; the
# tests that loop over devices run on CUDA there too, not measured here).
if [ "$CTEST_RC" -ne 126 ] && [ "$CTEST_RC" -ne 125 ]; then
  "$PYTHON" - "$LOGS/ctest.log" "$DEV_CTEST_J" "$DEV_L_TESTS" "$SYNC_S" "$MODE" "$JOBS" "$CTEST_RC" \
    >"$LOGS/ctest-projection.txt" 2>&1 <<'EOF'
import re, sys
logf, slots, limit, sync_s, mode, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
cut = sys.argv[7] in ("124", "137")  # killed at its limit: the times are a part of the suite
times = {}
for line in open(logf, errors="replace"):
    m = re.match(r"\s*\d+/\d+ Test\s+#(\d+): (.*\S)\s+([0-9.]+) sec\s*$", line)
    if m:  # '<name> ....   Passed    1.23 sec' (or ***Failed, ***Timeout)
        name = re.sub(r"\s*\.{2,}.*$|\s+\S+$", "", m.group(2), count=1)
        times[f"#{m.group(1)} {name}"] = float(m.group(3))
if not times:
    print("- the suite's time: no test times in the log"); sys.exit(2)
total = sum(times.values())
name, longest = max(times.items(), key=lambda kv: kv[1])
proj = max(longest, total / slots) + sync_s
over = proj >= limit or cut
print(f"- the suite here: {len(times)} tests, sum of their times {total:.0f} s at -j{jobs}, "
      f"longest {longest:.0f} s (`{name[:80]}`)")
print(f"- {'projected on the device' if mode == 'dry' else 'as scheduled'}: max(longest, sum / {slots}) + the sync-debug run {sync_s} s = "
      f"{proj:.0f} s against its test limit {limit} s: "
      + ("**over: the device's suite would time out**" if over else "**fits**")
      + (" (the suite was cut at its limit: these are the tests that finished)" if cut else "")
      + " (the tests that loop over devices run on CUDA there as well; not measured here)")
sys.exit(1 if over and mode == "dry" else 0)
EOF
  SUITE_RC=$?
  cat "$LOGS/ctest-projection.txt" >>"$REPORT"
  [ "$SUITE_RC" -ne 1 ] || FAILED=1
fi

# ---------------------------------------------------------------------------
# 3. Controller overhead of every criterion (ViT-B/16 on CUDA).
# ---------------------------------------------------------------------------
section "3. Controller overhead (frost_bench)"
BENCH_RC=126
BENCH_JSON="$OUT_DIR/gpu-bench.json"
BENCH_RUNS=()
if have benchmarks/frost_bench; then
  T0=$(date +%s)
  i=0
  read -r -a filters <<<"$BENCH_FILTERS"  # no pathname expansion of the regexes
  for f in "${filters[@]}"; do
    i=$((i + 1))
    left=$((L_BENCH - ($(date +%s) - T0)))
    [ "$left" -ge 5 ] || { BENCH_RC=125; BENCH_RUNS+=("\`$f\`: **skipped for time**"); continue; }
    run_part "$left" "$LOGS/bench-$i.log" "$B/benchmarks/frost_bench" \
      "--benchmark_filter=$f" "--benchmark_out=$WORK/bench-$i.json" --benchmark_out_format=json
    rc=$?
    BENCH_RUNS+=("\`$f\`: $(verdict "$rc" "$LOGS/bench-$i.log")")
    if [ "$BENCH_RC" -eq 126 ] || [ "$BENCH_RC" -eq 0 ]; then BENCH_RC=$rc; fi
  done
  # One JSON file back (the device tool's file count): the runs' benchmarks merged.
  "$PYTHON" - "$BENCH_JSON" "$WORK"/bench-*.json <<'EOF' 2>>"$LOGS/bench-1.log"
import json, sys
out = None
for p in sys.argv[2:]:
    try:
        d = json.load(open(p))
    except (OSError, ValueError):
        continue  # a run killed at its limit leaves no complete JSON
    if out is None:
        out = d
    else:
        out["benchmarks"] += d.get("benchmarks", [])
if out is not None:
    json.dump(out, open(sys.argv[1], "w"), indent=1)
EOF
fi
{
  echo "- frost_bench ($L_BENCH s in all): $(verdict "$BENCH_RC" "$LOGS/bench-1.log")"
  for r in "${BENCH_RUNS[@]}"; do echo "  - --benchmark_filter=$r"; done
  echo "- bf16: **skipped: not measured** (frost_bench has no bf16 case yet; fp32 only)"
  echo "- kernel launches: frost_bench counts ATen operations per controller step (\`aten_ops\`), shown below; CUDA kernel launches are not counted"
  echo
  if [ -s "$BENCH_JSON" ]; then
    "$PYTHON" scripts/bench-table.py "$BENCH_JSON" --device "$DEVICE" --heading-level 3 2>&1 ||
      echo "(bench-table.py failed)"
    echo
    "$PYTHON" - "$BENCH_JSON" <<'EOF' 2>&1
import json, sys
rows = [b for b in json.load(open(sys.argv[1])).get("benchmarks", []) if "aten_ops" in b]
if rows:
    print("| benchmark | ATen ops per controller step | host reads |")
    print("|---|---|---|")
    for b in rows:
        print(f"| {b['name']} | {b['aten_ops']:.0f} | {b.get('host_reads', float('nan')):.0f} |")
EOF
  fi
} >>"$REPORT"

# ---------------------------------------------------------------------------
# 4. frost-train: every default strategy, 2 seeds, the frontier.
# ---------------------------------------------------------------------------
section "4. frost-train on $DEVICE"
TRAIN_RC=126
if have examples/frost-train; then
  # shellcheck disable=SC2086
  run_part "$L_TRAIN" "$LOGS/train.log" "$B/examples/frost-train" $TRAIN_ARGS \
    --data "$CARRY_ABS/data/fashion-mnist" --out "$WORK/train" --cache "$WORK/cache" --no-progress
  TRAIN_RC=$?
fi
note_rc "$TRAIN_RC"
echo "- \`frost-train $TRAIN_ARGS\` ($L_TRAIN s): $(verdict "$TRAIN_RC" "$LOGS/train.log")" >>"$REPORT"
RESULTS=$(ls "$WORK"/train/results.csv "$WORK"/train/*/results.csv 2>/dev/null | head -n 1)
if [ -n "$RESULTS" ]; then
  cp "$RESULTS" "$OUT_DIR/train-results.csv"
  "$PYTHON" - "$RESULTS" <<'EOF' >>"$REPORT" 2>&1
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("\n| strategy | seed | test acc % | measured s | speed-up | froze at (steps) | steps | peak device memory MiB |")
print("|---|---|---|---|---|---|---|---|")
silent = set()
for r in rows:
    name = r["strategy"]
    froze = any(t not in ("-", "") for t in (r.get("freeze_steps") or "").split())
    if not froze and not name.startswith("full"):
        silent.add(name)
    print(f"| {name} | {r['seed']} | {r['test_accuracy']} | {r['measured_s']} | {r['speedup']} | "
          f"{r.get('freeze_steps') or '-'} | {r['steps']}/{r['planned_steps']} | "
          f"{r.get('peak_mem_mib')} ({r.get('peak_mem_kind') or 'not measured'}) |")
print()
if silent:
    print("- strategies that froze nothing (at these sizes, or decisions that kept every block): " + ", ".join(sorted(silent)))
else:
    print("- every freezing strategy froze at least one block")
EOF
fi
SUMMARY=$(ls "$WORK"/train/summary.csv 2>/dev/null | head -n 1)
if [ -f "$LOGS/train.log" ]; then
  { echo; echo "Last lines of the run (the table and the frontier):"; echo; } >>"$REPORT"
  code_tail "$LOGS/train.log" 40
  tail -n 120 "$LOGS/train.log" >"$OUT_DIR/train-summary.txt"
fi
[ -n "$SUMMARY" ] && { echo; echo "== summary.csv"; cat "$SUMMARY"; } >>"$OUT_DIR/train-summary.txt"
cp "$WORK/train/frontier.svg" "$OUT_DIR/train-frontier.svg" 2>/dev/null

# ---------------------------------------------------------------------------
# 5. Two ranks on the one device: NCCL first (it may refuse two ranks on one
#    GPU), then Gloo; bytes per step and identical timelines.
# ---------------------------------------------------------------------------
section "5. Two ranks (scripts/launch.sh -n 2)"
DIST_RC=126
DIST_LOG="$LOGS/dp-nccl.log"
if have examples/frost-train; then
  T0=$(date +%s)
  for backend in nccl gloo; do
    left=$((L_DIST - ($(date +%s) - T0)))
    [ "$backend" = nccl ] && left=$((L_DIST / 2))
    if [ "$left" -lt 5 ]; then DIST_RC=125; break; fi
    rm -rf "$WORK/dp"
    # shellcheck disable=SC2086
    FROST_DIST_BACKEND=$backend run_part "$left" "$LOGS/dp-$backend.log" \
      bash scripts/launch.sh -n 2 -p $((29600 + RANDOM % 300)) -t 30 -l "$LOGS/dp-$backend-ranks" -- \
      "$B/examples/frost-train" $DP_ARGS --data "$CARRY_ABS/data/fashion-mnist" \
      --out "$WORK/dp" --cache "$WORK/dp-cache" --no-progress
    DIST_RC=$?
    DIST_LOG="$LOGS/dp-$backend.log"
    echo "- FROST_DIST_BACKEND=$backend: $(verdict "$DIST_RC" "$LOGS/dp-$backend.log")" >>"$REPORT"
    [ "$DIST_RC" -eq 0 ] && break
  done
  if [ "$DIST_RC" -eq 0 ]; then
    "$PYTHON" - "$WORK/dp" "$LOGS/dp-$backend.log" <<'EOF' >>"$REPORT" 2>&1
import filecmp, glob, os, re, sys
root, logf = sys.argv[1], sys.argv[2]
same, differ = [], []
for r0 in sorted(glob.glob(os.path.join(root, "**", "rank0", "timeline.csv"), recursive=True)):
    r1 = r0.replace(os.sep + "rank0" + os.sep, os.sep + "rank1" + os.sep)
    name = os.path.relpath(os.path.dirname(os.path.dirname(r0)), root)
    (same if os.path.exists(r1) and filecmp.cmp(r0, r1, shallow=False) else differ).append(name)
print(f"- rank timelines identical: {', '.join(same) or 'none'}" + (f"; **differ: {', '.join(differ)}**" if differ else ""))
text = open(logf, errors="replace").read()
# one line per strategy: '<n>/<m> steps, froze at ...' then '   gradients all-reduced: X MiB per rank (P% ...)'
lines = text.splitlines()
for i, l in enumerate(lines):
    m = re.search(r"gradients all-reduced: ([0-9.]+) MiB per rank \(([0-9]+)%", l)
    if not m:
        continue
    steps, name = None, "?"
    for k in range(i - 1, max(i - 40, -1), -1):
        s = re.search(r"([0-9]+)/[0-9]+ steps", lines[k])
        if s and steps is None:
            steps = int(s.group(1))
        n = re.match(r"== ([^:]+):", lines[k])
        if n:
            name = n.group(1); break
    per = f", {float(m.group(1)) * 1048576 / steps / 1e6:.2f} MB per step over {steps} steps" if steps else ""
    print(f"- {name}: gradients all-reduced per rank: {m.group(1)} MiB ({m.group(2)}% of all gradients){per}")
sys.exit(1 if differ or not same else 0)
EOF
    [ $? -eq 0 ] || FAILED=1
    cp "$WORK"/dp/results.csv "$OUT_DIR/dp-results.csv" 2>/dev/null ||
      cp "$(ls "$WORK"/dp/*/results.csv 2>/dev/null | head -n 1)" "$OUT_DIR/dp-results.csv" 2>/dev/null
  fi
fi
note_rc "$DIST_RC"
[ "$DIST_RC" -ne 126 ] || echo "- **skipped: not built** (frost-train)" >>"$REPORT"
[ "$DIST_RC" -eq 0 ] || [ ! -f "$DIST_LOG" ] || code_tail "$DIST_LOG" 15

# ---------------------------------------------------------------------------
# 6. The pretrained EfficientNet-Lite0 job (slot).
# ---------------------------------------------------------------------------
section "6. Pretrained EfficientNet-Lite0 job"
# The weights travel in the prepared folder when scripts/gpu-prepare.sh found
# them (18 MiB; it checks the 64 MiB total); without them the part is skipped
# and says how to prepare them, and a skip is not a failure.
EFFNET_W="$CARRY_ABS/data/pretrained/effnet-lite0/efficientnet-lite0.safetensors"
EFFNET_RC=126 EFFNET_WHY=""
if [ ! -f "$EFFNET_W" ]; then
  EFFNET_WHY="weights not prepared"
  why=$(grep -m1 '^effnet-lite0 weights' "$CARRY/MANIFEST.txt" 2>/dev/null)
  echo "- **skipped: weights not prepared** (${why:-$CARRY has no data/pretrained/effnet-lite0/efficientnet-lite0.safetensors}); to run it, on the CPU machine: \`bash scripts/effnet-weights.sh && bash scripts/gpu-check.sh --prepare\`, then carry $CARRY again" >>"$REPORT"
elif have examples/frost-train; then
  # shellcheck disable=SC2086
  run_part "$L_EFFNET" "$LOGS/effnet.log" "$B/examples/frost-train" $EFFNET_ARGS --weights "$EFFNET_W" \
    --data "$CARRY_ABS/data/fashion-mnist" --out "$WORK/effnet" --cache "$WORK/effnet-cache" --no-progress
  EFFNET_RC=$?
  note_rc "$EFFNET_RC"
  echo "- \`frost-train $EFFNET_ARGS\` ($L_EFFNET s): $(verdict "$EFFNET_RC" "$LOGS/effnet.log")" >>"$REPORT"
  [ ! -f "$LOGS/effnet.log" ] || code_tail "$LOGS/effnet.log" 25
else
  EFFNET_WHY="frost-train not built"
  echo "- **skipped: not built** (frost-train)" >>"$REPORT"
fi

# ---------------------------------------------------------------------------
# Summary and files.
# ---------------------------------------------------------------------------
section "Summary"
{
  echo "| part | status |"
  echo "|---|---|"
  echo "| build | $(verdict "$BUILD_RC" "$LOGS/build.log") |"
  echo "| dependencies from $CARRY only | $(verdict "$DEPS_RC" "$LOGS/deps-system.txt") |"
  echo "| sync-debug test | $(verdict "$SYNC_RC" "$LOGS/sync-debug.log") |"
  echo "| ctest | $(verdict "$CTEST_RC" "$LOGS/ctest.log") |"
  echo "| within the device's limits (projected from this run's times) | build $(fits "$PROJ_RC"), suite $(fits "$SUITE_RC") |"
  echo "| overhead benchmarks | $(verdict "$BENCH_RC" "$LOGS/bench-1.log") |"
  echo "| frost-train | $(verdict "$TRAIN_RC" "$LOGS/train.log") |"
  echo "| two ranks | $(verdict "$DIST_RC" "$DIST_LOG") (${backend:-no backend}) |"
  if [ "$EFFNET_RC" -eq 126 ]; then echo "| EfficientNet-Lite0 | **skipped: $EFFNET_WHY** |"
  else echo "| EfficientNet-Lite0 | $(verdict "$EFFNET_RC" "$LOGS/effnet.log") |"; fi
  echo
  echo "Total $(elapsed) s (budget $BUDGET_S s; build ${BUILD_S} s). Logs: gpu-logs.tar.gz."
} >>"$REPORT"
tar -C "$WORK" -czf "$OUT_DIR/gpu-logs.tar.gz" logs 2>/dev/null
rm -rf "$WORK"
log "report: $REPORT ($(elapsed) s)"
exit "$FAILED"
