#!/usr/bin/env bash
# tools/gpu_run.sh [OUT_DIR] [STAGES]
#
# Runs on the GPU machine with binaries built elsewhere (tools/gpu_pack.sh builds them with -DDSV4_CUDA=ON on the
# development machine and packs them into .gpucarry/, which the device call carries): the GPU image has the CUDA
# runtime but not the project's host libraries (pcre2, gtest, CLI11), so building there would cost device time.
# Stages (comma list, default ops,e2e,cli,bench,hf), each under its own time limit, outputs in OUT_DIR (at most 8
# files: the device tool's limit):
#   ops    dsv4_gpu_ops ${DSV4_OPS_ARGS:---quick}: every CUDA op vs the CPU reference + kernel timings    -> ops_summary.md, ops_results.csv
#          (the whole --quick test takes ~7 minutes on the H200 since run 225: give it a device call of its own, or
#          select suites with DSV4_OPS_ARGS="--quick --only ..."; limit DSV4_OPS_TIMEOUT, default 560 s)
#   e2e    dsv4_gpu_e2e: whole model on the GPU vs HF goldens and the CPU reference      -> e2e.log
#   cli    dsv4 generate/logits/run --device cuda on a golden checkpoint and the tiny model -> gpu_run.log
#   bench  dsv4_cuda_bench: Flash-shaped layers, decode and prefill vs floors             -> bench.log, bench.csv
#   hf     tools/bench_hf_layer.py: HF transformers (bf16, eager) on the same shapes      -> hf.log
#   sampling        dsv4_gpu_sampling: CUDA sampler vs host sampler, engine device vs host sampling -> sampling.log
#   sampling_bench  dsv4_sampling_bench: GPU sampling vs D2H + host sampler, B=1..256       -> sampling_bench.log/.csv
#   profile  ncu (kernel durations only, clocks and caches left alone) over decode steps of dsv4_cuda_bench:
#            one CSA layer + embed/head, batches in DSV4_PROFILE_BATCHES (default 1), contexts in
#            DSV4_PROFILE_CONTEXTS (default 4K,1M) -> profile_b<B>_<ctx>.csv (tools/profile_summary.py sums a step)
#   launch_cost  dsv4_launch_cost_bench: eager launches vs capture + update + graph launch  -> launch_cost.csv
#   ncu      ncu sections (speed of light, memory, warp states, occupancy, instructions; or the set DSV4_NCU_SET,
#            e.g. full) on the kernels matching DSV4_NCU_KERNEL (regex, default moe_gemv_mma), launches
#            DSV4_NCU_SKIP.. (+DSV4_NCU_COUNT), in dsv4_gpu_ops --only DSV4_NCU_SUITE (default ops-moe, then with
#            --match DSV4_NCU_MATCH, default flash) --no-perf, plus the SASS opcode census of those kernels
#            -> ncu.txt, sass.txt
# (sampling, sampling_bench, launch_cost and ncu are not in the default list: name them, e.g. "sampling,sampling_bench".)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${1:-${OUT:-$ROOT/gpu-run-out}}
STAGES=${2:-ops,e2e,cli,bench,hf}
C=$ROOT/.gpucarry
mkdir -p "$OUT_DIR"
LOG=$OUT_DIR/gpu_run.log
: > "$LOG"
log() { echo "[gpu_run $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
has() { [[ ",$STAGES," == *",$1,"* ]]; }
T0=$(date +%s)

[[ -f $C/bin.tar.xz ]] || { log "missing $C/bin.tar.xz: run tools/gpu_pack.sh first"; exit 3; }
tar -xJf "$C/bin.tar.xz" -C "$C" || exit 3
CUBLAS_PY=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null)
BIN_ENV=(env LD_LIBRARY_PATH="$C:/usr/local/cuda/lib64:/usr/local/cuda/lib:${CUBLAS_PY}:${LD_LIBRARY_PATH:-}")
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee -a "$LOG"

if has ops; then
  log "stage ops"
  timeout "${DSV4_OPS_TIMEOUT:-560}" "${BIN_ENV[@]}" "$C/dsv4_gpu_ops" ${DSV4_OPS_ARGS:---quick} --out "$OUT_DIR/ops" \
    >> "$LOG" 2>&1
  log "ops exit $? ($(( $(date +%s) - T0 )) s)"
  [[ -f $OUT_DIR/ops/summary.md ]] && mv "$OUT_DIR/ops/summary.md" "$OUT_DIR/ops_summary.md"
  [[ -f $OUT_DIR/ops/results.csv ]] && mv "$OUT_DIR/ops/results.csv" "$OUT_DIR/ops_results.csv"
  rm -rf "$OUT_DIR/ops"
fi
if has e2e; then
  log "stage e2e"
  DSV4_TEST_DATA_DIR=$ROOT/tests/data timeout 200 "${BIN_ENV[@]}" "$C/dsv4_gpu_e2e" > "$OUT_DIR/e2e.log" 2>&1
  log "e2e exit $? ($(( $(date +%s) - T0 )) s)"
  grep -E "^\[gpu|FAILED|PASSED|OK \]" "$OUT_DIR/e2e.log" | tail -60 >> "$LOG"
fi
if has cli; then
  log "stage cli"
  G=$ROOT/tests/data/golden/v4_tiny_fp8_mtp
  for dev in cpu cuda; do
    timeout 60 "${BIN_ENV[@]}" "$C/dsv4" generate -m "$G" --device $dev --tokens "$G/input_ids.json" -n 16 \
      >> "$LOG" 2>&1
    log "generate --device $dev exit $?"
  done
  timeout 60 "${BIN_ENV[@]}" "$C/dsv4" run -m "$ROOT/models/dsv4-tiny" --device cuda -p "In the beginning God created" \
    -n 60 --temp 0 >> "$LOG" 2>&1
  log "run --device cuda exit $?"
fi
if has bench; then
  log "stage bench"
  timeout 240 "${BIN_ENV[@]}" "$C/dsv4_cuda_bench" ${DSV4_BENCH_ARGS:---quick} --out "$OUT_DIR/bench.csv" \
    > "$OUT_DIR/bench.log" 2>&1
  log "bench exit $? ($(( $(date +%s) - T0 )) s)"
fi
if has hf; then
  log "stage hf"
  PYTHONUNBUFFERED=1 timeout 180 python3 "$ROOT/tools/bench_hf_layer.py" ${DSV4_HF_ARGS:-} > "$OUT_DIR/hf.log" 2>&1
  log "hf exit $? ($(( $(date +%s) - T0 )) s)"
fi
if has launch_cost; then
  log "stage launch_cost"
  timeout 60 "${BIN_ENV[@]}" "$C/dsv4_launch_cost_bench" > "$OUT_DIR/launch_cost.csv" 2>&1
  log "launch_cost exit $? ($(( $(date +%s) - T0 )) s)"
  cat "$OUT_DIR/launch_cost.csv" >> "$LOG"
fi
if has sampling; then
  log "stage sampling"
  DSV4_TEST_DATA_DIR=$ROOT/tests/data timeout 300 "${BIN_ENV[@]}" "$C/dsv4_gpu_sampling" > "$OUT_DIR/sampling.log" 2>&1
  log "sampling exit $? ($(( $(date +%s) - T0 )) s)"
  grep -E "^\[gpu-sampling\]|FAILED|PASSED" "$OUT_DIR/sampling.log" | tail -40 >> "$LOG"
fi
if has sampling_bench; then
  log "stage sampling_bench"
  timeout 240 "${BIN_ENV[@]}" "$C/dsv4_sampling_bench" ${DSV4_SAMPLING_BENCH_ARGS:---quick} \
    --out "$OUT_DIR/sampling_bench.csv" > "$OUT_DIR/sampling_bench.log" 2>&1
  log "sampling_bench exit $? ($(( $(date +%s) - T0 )) s)"
  cat "$OUT_DIR/sampling_bench.log" >> "$LOG"
fi
if has profile; then
  log "stage profile"
  NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  for b in $(echo "${DSV4_PROFILE_BATCHES:-1}" | tr , ' '); do
  for ctx in $(echo "${DSV4_PROFILE_CONTEXTS:-4K,1M}" | tr , ' '); do
    # Every kernel launch of the run (set-up, warm-up, timed steps: ~2000 at B=1), in launch order.
    timeout 240 "${BIN_ENV[@]}" "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum \
      --csv --print-units base -k regex:'^(?!fill)' --launch-skip "${DSV4_PROFILE_SKIP:-0}" \
      --launch-count "${DSV4_PROFILE_COUNT:-5000}" "$C/dsv4_cuda_bench" --layers 4 --batches "$b" --contexts "$ctx" \
      --prefill '' --op-batches 0 --budget-s 60 > "$OUT_DIR/profile_b${b}_$ctx.csv" 2> "$OUT_DIR/profile.err"
    log "profile B=$b $ctx exit $? ($(( $(date +%s) - T0 )) s)"
    tail -5 "$OUT_DIR/profile.err" >> "$LOG"
    rm -f "$OUT_DIR/profile.err"
  done
  done
fi
if has ncu; then
  log "stage ncu"
  NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  KRE=${DSV4_NCU_KERNEL:-moe_gemv_mma}
  SECTIONS=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy
            --section LaunchStats --section SchedulerStats --section InstructionStats)
  [[ -n ${DSV4_NCU_SET:-} ]] && SECTIONS=(--set "$DSV4_NCU_SET" --import-source no)
  SUITE=${DSV4_NCU_SUITE:-ops-moe}
  MATCH=()
  [[ $SUITE == ops-moe ]] && MATCH=(--match "${DSV4_NCU_MATCH:-flash}")
  timeout 300 "${BIN_ENV[@]}" "$NCU" --kernel-name-base demangled -k "regex:$KRE" --launch-skip "${DSV4_NCU_SKIP:-0}" \
    --launch-count "${DSV4_NCU_COUNT:-24}" "${SECTIONS[@]}" \
    "$C/dsv4_gpu_ops" --only "$SUITE" --quick --no-perf "${MATCH[@]}" > "$OUT_DIR/ncu.txt" 2>&1
  log "ncu exit $? ($(( $(date +%s) - T0 )) s)"
  CUOBJ=$(command -v cuobjdump || ls /usr/local/cuda/bin/cuobjdump 2>/dev/null | head -1)
  "$CUOBJ" -sass "$C/dsv4_gpu_ops" 2>/dev/null | python3 -c '
import collections, re, sys
kre = re.compile(sys.argv[1])
for f in re.split(r"\n\s+Function : ", sys.stdin.read())[1:]:
    name = f.split("\n")[0]
    if not kre.search(name): continue
    ops = collections.Counter(m.group(1).split(".")[0] for m in re.finditer(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", f))
    print(name, sum(ops.values()), " ".join("%s:%d" % kv for kv in ops.most_common(30)))
' "${DSV4_SASS_KERNEL:-moe_gemv}" > "$OUT_DIR/sass.txt"
  log "sass census: $(wc -l < "$OUT_DIR/sass.txt") kernels"
fi
log "done in $(( $(date +%s) - T0 )) s"
