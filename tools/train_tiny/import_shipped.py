#!/usr/bin/env python3
"""Turns the shipped model (models/dsv4-tiny, export.py's output) back into a train.py ckpt_bf16/ for --init-from.

The inverse of export.py:
  <name>.weight F8_E4M3 + <name>.scale F8_E8M0 [ceil(out/128), ceil(in/128)]   -> bf16  (w = e4m3 * 2^(s-127))
  <name>.weight I8 [out, in/2] (even element in the low nibble) + <name>.scale F8_E8M0 [out, in/32]
                                                                              -> bf16  (w = e2m1 * 2^(s-127))
  BF16 / F32 / I64 tensors                                                    -> copied byte for byte
Every dequantized value is exactly representable in bf16 (3 or 1 mantissa bits times a power of two), so the
result holds exactly the values the shipped model computes with. The output is what train.py writes:
  model.safetensors (one file, official names, sorted, BF16/F32/I64 only), config.json (the shipped one without
  quantization_config / expert_dtype, dumped as train.py does), tokenizer.json, tokenizer_config.json,
  generation_config.json (copied).
Re-exporting the result with export.py gives back the shipped values, but not always the same bytes: in a block
whose largest quantized magnitude is 224 (FP8) or 3 (FP4) (the original maximum rounded down onto the lower
half of the range), export.py now sees amax = fmax/2 * scale and picks a scale half as large with doubled codes:
the same dequantized values, another encoding. No bf16 checkpoint holding exactly the shipped values avoids that.

Numpy only:  python3 tools/train_tiny/import_shipped.py --src models/dsv4-tiny --dst /tmp/dsv4-tiny-init
             [--compare .traindata/dsv4-tiny-bf16]   (per-kind max abs / relative difference to a bf16 ckpt)
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

ITEMSIZE = {"BF16": 2, "F32": 4, "F8_E4M3": 1, "F8_E8M0": 1, "I8": 1, "I64": 8}
# train.py's rule for which tensors its ckpt_bf16 stores as f32 (everything else float is bf16, tid2eid is i64)
F32_NAMES = ("hc_attn_", "hc_ffn_", "hc_head_", "attn_sink", ".ape", "gate.bias")
DROP_CFG = ("quantization_config", "expert_dtype")
COPY = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")


def _e4m3_lut():
    lut = np.zeros(256, np.float64)
    for b in range(256):
        e, m = (b >> 3) & 15, b & 7
        if e == 15 and m == 7:
            lut[b] = np.nan
            continue
        v = m * 2.0 ** -9 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
        lut[b] = -v if b & 0x80 else v
    return lut


E4M3 = _e4m3_lut()
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def e8m0(b):
    b = np.asarray(b, np.uint8)
    assert not np.any(b == 255), "e8m0 NaN scale"
    return np.ldexp(1.0, b.astype(np.int64) - 127)


def read_raw(path):
    """-> {name: (dtype, shape, bytes)} of one safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        buf = f.read()
    out = {}
    for name, h in hdr.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        assert b - a == int(np.prod(h["shape"], dtype=np.int64)) * ITEMSIZE[h["dtype"]], name
        out[name] = (h["dtype"], tuple(h["shape"]), buf[a:b])
    return out


def read_model(src):
    """All tensors of a (possibly sharded) safetensors model folder."""
    idx = os.path.join(src, "model.safetensors.index.json")
    if os.path.exists(idx):
        wm = json.load(open(idx))["weight_map"]
        out = {}
        for fn in sorted(set(wm.values())):
            part = read_raw(os.path.join(src, fn))
            assert all(wm.get(k) == fn for k in part), f"{fn}: tensors not in the index"
            out.update(part)
        assert set(out) == set(wm), "index lists tensors the shards lack"
        return out
    return read_raw(os.path.join(src, "model.safetensors"))


def as_float(dt, shape, raw):
    if dt == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dt == "F32":
        return np.frombuffer(raw, "<f4").reshape(shape)
    if dt == "I64":
        return np.frombuffer(raw, "<i8").reshape(shape)
    raise ValueError(dt)


def deq_fp8(shape, raw, sshape, sraw):
    o, i = shape
    assert tuple(sshape) == (-(-o // 128), -(-i // 128)), (shape, sshape)
    codes = np.frombuffer(raw, np.uint8).reshape(o, i)
    assert not np.any((codes & 0x7F) == 0x7F), "e4m3 NaN code"
    s = e8m0(np.frombuffer(sraw, np.uint8).reshape(sshape))
    s = np.repeat(np.repeat(s, 128, 0), 128, 1)[:o, :i]
    return E4M3[codes] * s


def deq_fp4(shape, raw, sshape, sraw):
    o, half = shape
    i = 2 * half
    assert tuple(sshape) == (o, i // 32), (shape, sshape)
    p = np.frombuffer(raw, np.uint8).reshape(o, half)
    codes = np.empty((o, i), np.uint8)
    codes[:, 0::2] = p & 15  # even element in the low nibble (quant.quant_fp4)
    codes[:, 1::2] = p >> 4
    s = np.repeat(e8m0(np.frombuffer(sraw, np.uint8).reshape(sshape)), 32, 1)
    return E2M1[codes] * s


def bf16_exact(w, name):
    """f64 values that bf16 holds exactly -> BF16 bytes (asserted exact, no rounding)."""
    f = w.astype(np.float32)
    assert np.array_equal(f.astype(np.float64), w), f"{name}: not f32-exact"
    u = np.ascontiguousarray(f).view(np.uint32)
    assert not np.any(u & 0xFFFF), f"{name}: not bf16-exact"
    return (u >> 16).astype("<u2").tobytes()


def convert(tensors):
    """shipped {name: (dt, shape, bytes)} -> ckpt_bf16 {name: (dt, shape, bytes)} and {name: kind}."""
    out, kind = {}, {}
    scales = {n for n in tensors if n.endswith(".scale")}
    used = set()
    for name, (dt, shape, raw) in tensors.items():
        if name in scales:
            continue
        if dt in ("F8_E4M3", "I8"):
            sn = name[:-len("weight")] + "scale"
            assert name.endswith(".weight") and sn in scales, f"{name}: {dt} without a scale"
            sdt, sshape, sraw = tensors[sn]
            assert sdt == "F8_E8M0", (sn, sdt)
            used.add(sn)
            if dt == "F8_E4M3":
                w, kind[name] = deq_fp8(shape, raw, sshape, sraw), "fp8"
            else:
                w, kind[name] = deq_fp4(shape, raw, sshape, sraw), "fp4"
            out[name] = ("BF16", w.shape, bf16_exact(w, name))
        elif dt in ("BF16", "F32", "I64"):
            out[name], kind[name] = (dt, shape, raw), dt.lower()
        else:
            raise ValueError(f"{name}: unexpected dtype {dt}")
        want = "I64" if name.endswith("tid2eid") else "F32" if any(s in name for s in F32_NAMES) else "BF16"
        assert out[name][0] == want, f"{name}: {out[name][0]}, train.py stores {want}"
    assert used == scales, f"scales without a weight: {sorted(scales - used)}"
    return out, kind


def write_safetensors(path, tensors):
    """Same bytes as quant.write_safetensors (sorted names, compact header padded to 8, metadata format=pt)."""
    header, offset = {}, 0
    names = sorted(tensors)
    for n in names:
        dt, shape, data = tensors[n]
        header[n] = {"dtype": dt, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for n in names:
            f.write(tensors[n][2])


def compare(out, kind, ref_dir):
    """Per tensor kind: max |imported - ref|, max of that over max |ref| per tensor, worst rms-relative error."""
    ref = read_model(ref_dir)
    assert set(ref) == set(out), f"tensor sets differ: {sorted(set(ref) ^ set(out))[:8]}"
    stats = {}
    for name in sorted(out):
        (dt, shape, raw), (rdt, rshape, rraw) = out[name], ref[name]
        assert (dt, tuple(shape)) == (rdt, tuple(rshape)), (name, dt, shape, rdt, rshape)
        a, r = as_float(dt, shape, raw).astype(np.float64), as_float(rdt, rshape, rraw).astype(np.float64)
        d = np.abs(a - r)
        rm = np.abs(r).max(initial=0)
        s = stats.setdefault(kind[name], {"tensors": 0, "identical_bytes": 0, "max_abs": 0.0, "max_abs_rel": 0.0,
                                          "max_rms_rel": 0.0, "worst": None})
        s["tensors"] += 1
        s["identical_bytes"] += raw == rraw
        rel = d.max(initial=0) / rm if rm > 0 else 0.0
        rms = float(np.sqrt((d ** 2).sum() / max((r ** 2).sum(), 1e-300)))
        if d.max(initial=0) > s["max_abs"]:
            s["max_abs"], s["worst"] = float(d.max()), name
        s["max_abs_rel"] = max(s["max_abs_rel"], float(rel))
        s["max_rms_rel"] = max(s["max_rms_rel"], rms)
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default="models/dsv4-tiny")
    ap.add_argument("--dst", required=True)
    ap.add_argument("--compare", help="a bf16 ckpt dir to report the per-kind differences against")
    args = ap.parse_args()
    out, kind = convert(read_model(args.src))
    os.makedirs(args.dst, exist_ok=True)
    write_safetensors(os.path.join(args.dst, "model.safetensors"), out)
    cfg = json.load(open(os.path.join(args.src, "config.json")))
    for k in DROP_CFG:
        cfg.pop(k, None)
    with open(os.path.join(args.dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for fn in COPY:
        shutil.copyfile(os.path.join(args.src, fn), os.path.join(args.dst, fn))
    counts = {k: sum(1 for v in kind.values() if v == k) for k in sorted(set(kind.values()))}
    print(f"wrote {args.dst}: {len(out)} tensors {counts}, "
          f"{os.path.getsize(os.path.join(args.dst, 'model.safetensors'))} bytes", flush=True)
    if args.compare:
        print(json.dumps(compare(out, kind, args.compare), indent=1))


if __name__ == "__main__":
    sys.exit(main())
