#!/usr/bin/env python3
"""Quantizes the trained bf16 checkpoint (train.py's ckpt_bf16/) into the shipped model, the way the real
DeepSeek-V4 release stores its weights (spec §7.2-§7.3):
  FP8 e4m3 + e8m0 128x128 block scales (`<name>.scale`): attn wq_a/wq_b/wkv/wo_a/wo_b, indexer.wq_b,
      shared experts w1/w2/w3, MTP e_proj/h_proj
  MXFP4 (int8 [out, in/2], even element in the low nibble) + e8m0 [out, in/32] scales: routed experts
  bf16: embed, head, norms, gate.weight, compressor wkv/wgate, indexer weights_proj
  f32: hc_*, attn_sink, ape, gate.bias;  int64: tid2eid (rows checked to hold distinct experts)
Layout: model-00001-of-00002.safetensors (main model) + model-00002-of-00002.safetensors (all mtp.*, as the
official release puts MTP in its last shard) + model.safetensors.index.json; config.json gains
quantization_config and expert_dtype; tokenizer and generation config are copied.

Numpy only (runs anywhere): python3 tools/train_tiny/export.py --src OUT/ckpt_bf16 --dst models/dsv4-tiny
"""
import argparse
import json
import os
import re
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant import bf16_bytes, quant_fp4, quant_fp8, write_safetensors  # noqa: E402

FP8 = re.compile(r"(attn\.(wq_a|wq_b|wkv|wo_a|wo_b)|attn\.indexer\.wq_b|ffn\.shared_experts\.w[123]|"
                 r"e_proj|h_proj)\.weight$")
FP4 = re.compile(r"ffn\.experts\.\d+\.w[123]\.weight$")
F32 = re.compile(r"(hc_(attn|ffn|head)_(fn|base|scale)|attn_sink|\.ape|ffn\.gate\.bias)$")
QUANT = {"quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue8m0",
                                 "activation_scheme": "dynamic", "weight_block_size": [128, 128]},
         "expert_dtype": "fp4"}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
        buf = f.read()
    out = {}
    for name, h in hdr.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        dt = {"BF16": "<u2", "F32": "<f4", "I64": "<i8"}[h["dtype"]]
        v = np.frombuffer(buf[a:b], dt)
        if h["dtype"] == "BF16":
            v = (v.astype(np.uint32) << 16).view(np.float32)
        out[name] = (h["dtype"], v.reshape(h["shape"]))
    return out


def convert(name, dt, a):
    """-> list of (name, (dtype code, shape, bytes)); bf16 inputs are exact bf16 values in f32."""
    if dt == "I64":
        if name.endswith("tid2eid"):
            assert all(len(set(r)) == len(r) for r in a.tolist()), f"{name}: a row repeats an expert"
        return [(name, ("I64", a.shape, a.astype("<i8").tobytes()))]
    if F32.search(name):
        return [(name, ("F32", a.shape, a.astype("<f4").tobytes()))]
    if FP4.search(name):
        packed, sc, _ = quant_fp4(a)
        return [(name, ("I8", packed.shape, packed.tobytes())),
                (name[:-len("weight")] + "scale", ("F8_E8M0", sc.shape, sc.tobytes()))]
    if FP8.search(name):
        codes, sc, _ = quant_fp8(a)
        return [(name, ("F8_E4M3", codes.shape, codes.tobytes())),
                (name[:-len("weight")] + "scale", ("F8_E8M0", sc.shape, sc.tobytes()))]
    return [(name, ("BF16", a.shape, bf16_bytes(a)[0]))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    args = ap.parse_args()
    src = read_safetensors(os.path.join(args.src, "model.safetensors"))
    shards = [{}, {}]
    for name in sorted(src):
        dt, a = src[name]
        for n, t in convert(name, dt, a):
            shards[1 if n.startswith("mtp.") else 0][n] = t
    os.makedirs(args.dst, exist_ok=True)
    for f in os.listdir(args.dst):
        if f.endswith(".safetensors") or f == "model.safetensors.index.json":
            os.remove(os.path.join(args.dst, f))
    weight_map, total = {}, 0
    for i, sh in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(args.dst, fn), sh)
        for n, t in sh.items():
            weight_map[n] = fn
            total += len(t[2])
    with open(os.path.join(args.dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    cfg = json.load(open(os.path.join(args.src, "config.json")))
    cfg.update(QUANT)
    with open(os.path.join(args.dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for fn in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(args.src, fn)):
            shutil.copy(os.path.join(args.src, fn), os.path.join(args.dst, fn))
    size = sum(os.path.getsize(os.path.join(args.dst, f)) for f in os.listdir(args.dst)
               if os.path.isfile(os.path.join(args.dst, f)))
    print(f"wrote {args.dst}: {len(weight_map)} tensors, {total} bytes of tensor data, {size} bytes in the folder")


if __name__ == "__main__":
    main()
