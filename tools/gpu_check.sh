#!/usr/bin/env bash
# tools/gpu_check.sh [OUT_DIR] [-- dsv4_gpu_ops args...]
#
# Runs on the GPU machine (H200, sm_90a): configures the project with -DDSV4_CUDA=ON, builds the CUDA op test
# dsv4_gpu_ops, optionally runs the CPU test suite, and runs the GPU op tests and benchmarks (CPU reference vs
# CUDA, timings against the copy and GEMM ceilings measured in the same run). Logs and a summary table go to
# OUT_DIR (default: $OUT when set, else ./gpu-check-out); at most 8 files, the device tool's limit:
#   gpu_check.log  nvidia-smi.txt  configure.log  build.log  sass.txt  gpu_ops.log  summary.md  results.csv
#
# The build falls back so that a missing host dependency on the GPU image (nlohmann_json, pcre2, gtest are
# needed by the full CMake project, not by the GPU test) cannot cost a device run. Seen 2026-11-28: the image
# has nlohmann_json but no libpcre2-8, so step 1 fails there and step 2 builds in about 10 s:
#   1. CMake + Ninja, target dsv4_gpu_ops;
#   2. a direct nvcc/g++ build of only what dsv4_gpu_ops needs (core, CPU reference backend, CUDA backend);
#   3. a prebuilt binary, $DSV4_GPU_PREBUILT (default build-gpu-carry/dsv4_gpu_ops, carried to the machine).
# Environment: DSV4_GPU_BUILD (build dir, default /tmp/dsv4-build-cuda), DSV4_GPU_CPU_TESTS=1 (also build and
# run the CPU ctest suite, label != gpu), DSV4_GPU_FORCE_DIRECT=1 (skip CMake), CUDA_HOME (/usr/local/cuda).
# Exit status: that of dsv4_gpu_ops (0 all passed, 1 a failure), or 3 when nothing could be built.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${1:-${OUT:-$ROOT/gpu-check-out}}
[[ $# -gt 0 ]] && shift
[[ "${1:-}" == "--" ]] && shift
TEST_ARGS=("$@")
BUILD=${DSV4_GPU_BUILD:-/tmp/dsv4-build-cuda}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
PREBUILT=${DSV4_GPU_PREBUILT:-$ROOT/build-gpu-carry/dsv4_gpu_ops}
JOBS=$(nproc 2>/dev/null || echo 4)
export PATH="$CUDA_HOME/bin:$PATH"
mkdir -p "$OUT_DIR" "$BUILD"
LOG="$OUT_DIR/gpu_check.log"
: > "$LOG"

log() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
elapsed() { echo $(( $(date +%s) - T0 ))s; }
T0=$(date +%s)

log "root $ROOT, out $OUT_DIR, build $BUILD, $JOBS jobs"
{ nvidia-smi; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv; } \
  > "$OUT_DIR/nvidia-smi.txt" 2>&1 || log "nvidia-smi failed"
log "nvcc: $(nvcc --version 2>/dev/null | tail -1), cmake: $(cmake --version 2>/dev/null | head -1)"

BIN=""
# 1. CMake (DSV4_GPU_FORCE_DIRECT=1 skips it, to exercise the fallback).
if [[ "${DSV4_GPU_FORCE_DIRECT:-0}" == 1 ]]; then
  log "CMake skipped (DSV4_GPU_FORCE_DIRECT=1)"
elif cmake -G Ninja -S "$ROOT" -B "$BUILD/cmake" -DDSV4_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" > "$OUT_DIR/configure.log" 2>&1; then
  log "configured ($(elapsed))"
  if cmake --build "$BUILD/cmake" --target dsv4_gpu_ops -j "$JOBS" > "$OUT_DIR/build.log" 2>&1; then
    BIN="$BUILD/cmake/tests/dsv4_gpu_ops"
    log "built dsv4_gpu_ops with CMake ($(elapsed))"
  else
    log "CMake build failed (tail of build.log):"; tail -25 "$OUT_DIR/build.log" | tee -a "$LOG"
  fi
else
  log "CMake configure failed (tail of configure.log):"; tail -15 "$OUT_DIR/configure.log" | tee -a "$LOG"
fi

# 2. Direct build of the GPU test's dependencies only.
if [[ -z "$BIN" ]]; then
  log "direct nvcc/g++ build"
  D="$BUILD/direct"
  mkdir -p "$D/obj"
  FLAGS=(-O2 -std=c++20 -I"$ROOT/src" -I"$CUDA_HOME/include")
  mapfile -t CPP < <(ls "$ROOT"/src/core/*.cpp "$ROOT"/src/backend/numerics.cpp "$ROOT"/src/backend/cpu/*.cpp \
    "$ROOT"/src/weights/quant/dequant.cpp; find "$ROOT/src/backend/cuda" "$ROOT/tests/gpu" -name '*.cpp')
  mapfile -t CU < <(find "$ROOT/src/backend/cuda" "$ROOT/tests/gpu" -name '*.cu')
  compile() {  # $1 source -> obj/<mangled>.o
    local o="$D/obj/$(echo "$1" | sed "s|$ROOT/||; s|/|_|g").o"
    if [[ "$1" == *.cu ]]; then
      nvcc "${FLAGS[@]}" -gencode=arch=compute_90a,code=sm_90a -lineinfo -c "$1" -o "$o"
    else
      g++ "${FLAGS[@]}" -pthread -c "$1" -o "$o"
    fi
  }
  export -f compile; export D ROOT
  export FLAGS_STR="${FLAGS[*]}"
  ok=1
  for f in "${CPP[@]}" "${CU[@]}"; do echo "$f"; done | \
    xargs -P "$JOBS" -I{} bash -c 'FLAGS=($FLAGS_STR); compile "{}"' >> "$OUT_DIR/build.log" 2>&1 || ok=0
  if [[ $ok == 1 ]] && g++ -o "$D/dsv4_gpu_ops" "$D"/obj/*.o -L"$CUDA_HOME/lib64" -L"$CUDA_HOME/lib" \
       -lcublasLt -lcudart_static -ldl -lrt -lpthread >> "$OUT_DIR/build.log" 2>&1; then
    BIN="$D/dsv4_gpu_ops"
    log "built dsv4_gpu_ops directly ($(elapsed))"
  else
    log "direct build failed (tail of build.log):"; tail -25 "$OUT_DIR/build.log" | tee -a "$LOG"
  fi
fi

# 3. Prebuilt binary.
if [[ -z "$BIN" && -x "$PREBUILT" ]]; then
  BIN="$PREBUILT"
  log "using the prebuilt $PREBUILT"
fi
if [[ -z "$BIN" ]]; then
  log "FAILED: no dsv4_gpu_ops binary"
  exit 3
fi

# Which tensor-core instructions the kernels use (HOPPER.md: QGMMA/HGMMA = wgmma, HMMA/QMMA = mma.sync).
if command -v cuobjdump > /dev/null; then
  cuobjdump --dump-sass "$BIN" 2>/dev/null | awk '
    /Function :/ { fn = $3 }
    { for (i = 1; i <= NF; ++i) if ($i ~ /^(HMMA|QMMA|IMMA|HGMMA|QGMMA|IGMMA)/) { gsub(/[;{}]/, "", $i); n[fn " " $i]++ } }
    END { for (k in n) print n[k], k }' | sort -k2 > "$OUT_DIR/sass.txt"
  log "SASS tensor-core instructions: $(awk '{print $3}' "$OUT_DIR/sass.txt" | sort | uniq -c | tr '\n' ' ')"
fi

# Optional CPU suite (the CMake build only).
if [[ "${DSV4_GPU_CPU_TESTS:-0}" == 1 && -d "$BUILD/cmake" ]]; then
  log "building and running the CPU tests"
  if cmake --build "$BUILD/cmake" -j "$JOBS" >> "$OUT_DIR/build.log" 2>&1; then
    (cd "$BUILD/cmake" && ctest -LE gpu -j "$JOBS" --output-on-failure 2>&1 | tail -5) | tee -a "$LOG"
  else
    log "CPU build failed"
  fi
fi

# The suites run in three processes, so a sticky CUDA error (an illegal address) in one kernel family cannot
# hide the others' results; each process measures the ceilings again (under a second). Explicit arguments
# (after --) replace the grouping with one run.
if [[ ${#TEST_ARGS[@]} -gt 0 ]]; then
  GROUPS_TO_RUN=("custom")
else
  GROUPS_TO_RUN=("ceil,rms,actq,gemm-lt" "ceil,gemm-mma" "ceil,ops-linear,ops-attn,ops-hc,ops-moe")
fi
RC=0
: > "$OUT_DIR/gpu_ops.log"
: > "$OUT_DIR/summary.md"
: > "$OUT_DIR/results.csv"
for g in "${GROUPS_TO_RUN[@]}"; do
  GDIR=$(mktemp -d)
  if [[ "$g" == custom ]]; then ARGS=("${TEST_ARGS[@]}"); else ARGS=(--only "$g"); fi
  log "running $BIN ${ARGS[*]}"
  "$BIN" --out "$GDIR" "${ARGS[@]}" 2>&1 | tee -a "$OUT_DIR/gpu_ops.log"
  G_RC=${PIPESTATUS[0]}
  log "group $g: exit status $G_RC"
  [[ $G_RC -gt $RC ]] && RC=$G_RC
  { echo "<!-- group $g: exit $G_RC -->"; cat "$GDIR/summary.md" 2>/dev/null; echo; } >> "$OUT_DIR/summary.md"
  if [[ -s "$GDIR/results.csv" ]]; then
    if [[ -s "$OUT_DIR/results.csv" ]]; then tail -n +2 "$GDIR/results.csv"; else cat "$GDIR/results.csv"; fi \
      >> "$OUT_DIR/results.csv"
  fi
  rm -rf "$GDIR"
done
log "dsv4_gpu_ops exit status $RC ($(elapsed) in all)"
exit "$RC"
