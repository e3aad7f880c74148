#!/bin/bash
# The command run on the GPU machine (repo root, the corpus folder .traindata/ carried along):
#   bash tools/train_tiny/run_device.sh smoke|full STEPS TIME_LIMIT_S [train.py options...]
# Trains into /tmp/train_tiny and returns it under $OUT as result.tgz.partNN (15 MB pieces) + the logs.
# Extra options go to train.py, e.g. the continued pass-key run:
#   bash tools/train_tiny/run_device.sh full 1000 330 --init-from .traindata/dsv4-tiny-bf16 --passkey-curriculum
# DATA=dir overrides the data folder (default .traindata); a corpus.jsonl.xz there is unpacked first.
set -uo pipefail
mode=$1; steps=${2:-2400}; tl=${3:-420}; shift 3 || shift $#
data=${DATA:-.traindata}
[ -f "$data/corpus.jsonl.xz" ] && [ ! -f "$data/corpus.jsonl" ] && xz -dk "$data/corpus.jsonl.xz"
export PYTHONUNBUFFERED=1
W=/tmp/train_tiny; rm -rf "$W"; mkdir -p "$W"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
extra=""; [ "$mode" = smoke ] && extra="--bench"
python3 tools/train_tiny/train.py --data "$data" --out "$W" --steps "$steps" --time-limit "$tl" $extra "$@" 2>&1 | tee "$W/stdout.log"
rc=$?
cp "$W/stdout.log" "$OUT/" ; [ -f "$W/train_log.json" ] && cp "$W/train_log.json" "$OUT/"
tar czf /tmp/result.tgz -C "$W" . && split -b 15m -d /tmp/result.tgz "$OUT/result.tgz.part"
ls -la "$OUT"
exit $rc
