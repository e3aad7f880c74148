#!/bin/bash
# The command run on the GPU machine (repo root, the corpus folder .traindata/ carried along):
#   bash tools/train_tiny/run_device.sh smoke|full STEPS TIME_LIMIT_S [train.py options...]
# Trains into /tmp/train_tiny and returns it under $OUT as result.tgz.partNN (15 MB pieces) + the logs.
# Extra options go to train.py, e.g. the continued pass-key run:
#   bash tools/train_tiny/run_device.sh full 1000 330 --init-from .traindata/dsv4-tiny-bf16 --passkey-curriculum
# or the v2 pass-key run (train.py PK2; carry .traindata/{corpus.jsonl,manifest.json,dsv4-tiny-bf16}):
#   bash tools/train_tiny/run_device.sh full 1100 380 --init-from .traindata/dsv4-tiny-bf16 --passkey-v2
# --init-from shipped: the init checkpoint is made on the device from the shipped models/dsv4-tiny (FP8/MXFP4
# dequantized to bf16 by import_shipped.py, exactly the values the shipped model computes with) into
# /tmp/dsv4-tiny-shipped-bf16, so only the corpus has to be carried, e.g. (carry .traindata/{corpus.jsonl,manifest.json}):
#   bash tools/train_tiny/run_device.sh full 1100 380 --init-from shipped --passkey-v2
# Stage 2 of the shipped model (pass-key retrieval with attention/indexer supervision, train.py PK3):
#   DATA=.traincarry bash tools/train_tiny/run_device.sh full 1000 330 --init-from shipped --passkey-v3
# DATA=dir overrides the data folder (default .traindata); a corpus.jsonl.xz there is unpacked first.
set -uo pipefail
mode=$1; steps=${2:-2400}; tl=${3:-420}; shift 3 || shift $#
data=${DATA:-.traindata}
[ -f "$data/corpus.jsonl.xz" ] && [ ! -f "$data/corpus.jsonl" ] && xz -dk "$data/corpus.jsonl.xz"
export PYTHONUNBUFFERED=1
W=/tmp/train_tiny; rm -rf "$W"; mkdir -p "$W"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = --init-from ] && [ "${args[$((i + 1))]:-}" = shipped ]; then
    I=/tmp/dsv4-tiny-shipped-bf16; rm -rf "$I"
    python3 tools/train_tiny/import_shipped.py --src models/dsv4-tiny --dst "$I" 2>&1 | tee "$W/import_shipped.log"
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "import_shipped.py failed"; exit 1; }
    args[$((i + 1))]=$I
  fi
done
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
extra=""; [ "$mode" = smoke ] && extra="--bench"
python3 tools/train_tiny/train.py --data "$data" --out "$W" --steps "$steps" --time-limit "$tl" $extra ${args[@]+"${args[@]}"} 2>&1 | tee "$W/stdout.log"
rc=$?
cp "$W/stdout.log" "$OUT/" ; [ -f "$W/import_shipped.log" ] && cp "$W/import_shipped.log" "$OUT/"
[ -f "$W/train_log.json" ] && cp "$W/train_log.json" "$OUT/"
[ -f "$W/eval/torch_eval.json" ] && cp "$W/eval/torch_eval.json" "$OUT/"
tar czf /tmp/result.tgz -C "$W" . && split -b 15m -d /tmp/result.tgz "$OUT/result.tgz.part"
ls -la "$OUT"
exit $rc
