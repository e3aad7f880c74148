#!/usr/bin/env python3
"""Checks that the training model (model.py) computes the function dsv4 computes: loads a bf16 checkpoint
written by train.py into model.py, runs both on the same token ids in f32 and compares the logits.

dsv4 runs with --act-dtype f32 and the given KV/indexer roundings (fp8 KV, fp4 indexer: the model.py
semantics). Usage (CPU; torch + numpy):
  python3 tools/train_tiny/check_equivalence.py --ckpt DIR --dsv4 build/dsv4 [--n 384]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
        base = 8 + n
        buf = f.read()
    out = {}
    for name, h in hdr.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        raw = buf[a:b]
        if h["dtype"] == "BF16":
            v = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif h["dtype"] == "F32":
            v = np.frombuffer(raw, "<f4")
        elif h["dtype"] == "I64":
            v = np.frombuffer(raw, "<i8")
        else:
            raise ValueError(f"{name}: {h['dtype']} (give a bf16 checkpoint)")
        out[name] = v.reshape(h["shape"])
    return out


def load_model(ckpt):
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    m = M.DeepseekV4Tiny(cfg)
    st = read_safetensors(os.path.join(ckpt, "model.safetensors"))
    sd = m.state_dict()
    new = {}
    for k in sd:
        if ".experts_w" in k:
            prefix, wk = k.split(".experts_")
            E = sd[k].shape[0]
            new[k] = torch.from_numpy(np.stack([st[f"{prefix}.experts.{e}.{wk}.weight"] for e in range(E)]).copy())
        else:
            new[k] = torch.from_numpy(np.array(st[k]))
    m.load_state_dict(new)
    return m.eval(), cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--dsv4", required=True)
    ap.add_argument("--n", type=int, default=384)
    ap.add_argument("--ids", help="JSON file with token ids (default: seeded random)")
    ap.add_argument("--all-f32", action="store_true", help="no KV/indexer fake-quant on either side")
    args = ap.parse_args()
    M.ACT = torch.float32
    M.FAKE_QUANT = not args.all_f32
    kvd, idd = ("f32", "f32") if args.all_f32 else ("fp8", "fp4")
    torch.set_num_threads(os.cpu_count() or 1)
    m, cfg = load_model(args.ckpt)
    if args.ids:
        ids = json.load(open(args.ids))[:args.n]
    else:
        ids = [0] + np.random.default_rng(1).integers(3, cfg["vocab_size"], args.n - 1).tolist()
    with torch.no_grad():
        T = len(ids)
        pad = -T % cfg["sliding_window"]
        lg, _, _ = m(torch.tensor([ids + [2] * pad]), with_mtp=False)
        ref = lg[0, :T].numpy()
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "ids.json")
        json.dump(ids, open(p, "w"))
        out = os.path.join(td, "lg.npy")
        subprocess.run([args.dsv4, "logits", "-m", args.ckpt, "--tokens", p, "--out", out, "--act-dtype", "f32",
                        "--kv-cache-dtype", kvd, "--indexer-dtype", idd], check=True)
        eng = np.load(out)
    diff = np.abs(eng - ref).max(-1)
    scale = np.abs(ref).max(-1)
    top = (eng.argmax(-1) == ref.argmax(-1)).mean()
    print(f"positions {T}: max |diff| {diff.max():.3e} (logit scale {scale.max():.2f}); rel by position "
          f"p50 {np.median(diff / scale):.2e} max {np.max(diff / scale):.2e}; top-1 agreement {top:.4f}")
    worst = np.argsort(-diff)[:5]
    print("worst positions", worst.tolist(), diff[worst].tolist())


if __name__ == "__main__":
    main()
