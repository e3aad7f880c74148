"""Number formats of the DeepSeek-V4 checkpoint (spec §2.3, §2.4, §7.2) for training and export.

Torch side (training): straight-through fake-quant of weights (FP8 e4m3 128x128 blocks, MXFP4 1x32 blocks) and
of activations (FP8 block 64 for the KV no-RoPE dims, FP4 block 32 for the indexer), with power-of-two
(ue8m0) scales rounded up, as the reference does.
Numpy side (export): exact encodings (e4m3 bytes, e2m1 nibbles packed low nibble first, e8m0 bytes, bf16) and a
safetensors writer; no torch float8 dtypes needed, so the export also runs on old torch builds.
"""
import json
import struct

import numpy as np
import torch

FP4_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
FP4_MIDS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)


# ------------------------------------------------------------------------------------------------ torch

def _ceil_log2(t):
    """Exact ceil(log2(t)) of positive float tensors."""
    m, e = torch.frexp(t)
    return torch.where(m == 0.5, e - 1, e)


def e4m3_round(v):
    """Nearest OCP e4m3 (fn) value, ties to even; |v| <= 448 assumed."""
    a = v.abs()
    _, e = torch.frexp(a)
    q = torch.pow(2.0, ((e - 1).clamp(min=-6) - 3).to(v.dtype))
    return torch.sign(v) * torch.round(a / q) * q


def e2m1_round(v):
    """Nearest e2m1 value of |v| <= 6, ties to the even code (spec §2.4)."""
    a = v.abs()
    mids = torch.tensor(FP4_MIDS, dtype=v.dtype, device=v.device)
    grid = torch.tensor(FP4_GRID, dtype=v.dtype, device=v.device)
    lo = torch.bucketize(a, mids, right=False)
    hi = torch.bucketize(a, mids, right=True)
    idx = torch.where((lo != hi) & (lo % 2 == 1), hi, lo)
    return torch.sign(v) * grid[idx]


def fq_blocks(x, block, fmt, floor):
    """Fake-quant of the last dim in blocks: scale 2^ceil(log2(max(amax, floor)/fmax)), then round."""
    shp = x.shape
    xf = x.float().reshape(*shp[:-1], shp[-1] // block, block)
    fmax = 448.0 if fmt == "fp8" else 6.0
    amax = xf.abs().amax(-1, keepdim=True).clamp(min=floor)
    s = torch.pow(2.0, _ceil_log2(amax / fmax).float())
    r = e4m3_round(xf / s) if fmt == "fp8" else e2m1_round(xf / s)
    return (r * s).reshape(shp).to(x.dtype)


def ste(x, q):
    return x + (q - x).detach()


def fq_weight_fp8(w):
    """128x128-block FP8 fake-quant of a [out, in] weight (sizes need not be multiples of 128)."""
    o, i = w.shape
    po, pi = -o % 128, -i % 128
    wp = torch.nn.functional.pad(w.float(), (0, pi, 0, po))
    blk = wp.reshape((o + po) // 128, 128, (i + pi) // 128, 128)
    amax = blk.abs().amax(dim=(1, 3), keepdim=True).clamp(min=1e-30)
    s = torch.pow(2.0, _ceil_log2(amax / 448.0).float())
    q = (e4m3_round(blk / s) * s).reshape(o + po, i + pi)[:o, :i]
    return q.to(w.dtype)


def fq_weight_fp4(w):
    """MXFP4 fake-quant (1x32 blocks along the input dim) of [..., out, in] weights."""
    return fq_blocks(w, 32, "fp4", 1e-30)


# ------------------------------------------------------------------------------------------------ numpy export

def bf16_bytes(x):
    """RNE f32 -> bf16, little-endian bytes; returns (bytes, the bf16 values as f32)."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return (b >> 16).astype("<u2").tobytes(), b.view(np.float32).reshape(np.shape(x))


def _np_ceil_log2(t):
    m, e = np.frexp(np.asarray(t, dtype=np.float64))
    return np.where(m == 0.5, e - 1, e).astype(np.int64)


def _e4m3_encode(r):
    """Bytes of e4m3-representable values (float64 array)."""
    a = np.abs(r)
    sign = ((r < 0) & (a > 0)).astype(np.int64)
    _, e = np.frexp(a)
    ex = e - 1
    normal = (a > 0) & (ex >= -6)
    exn = np.where(normal, ex, 0)
    mant = np.where(normal, (a / np.ldexp(1.0, exn) - 1.0) * 8.0, a / 2.0 ** -9)
    assert np.all(mant == np.round(mant)) and np.all((mant >= 0) & (mant <= 7))
    biased = np.where(normal, exn + 7, 0)
    assert np.all((biased >= 0) & (biased <= 15))
    byte = (sign << 7) | (biased << 3) | mant.astype(np.int64)
    assert not np.any((byte & 0x7F) == 0x7F), "NaN code"
    return byte.astype(np.uint8)


def _np_e4m3_round(v):
    a = np.abs(v)
    _, e = np.frexp(a)
    q = np.ldexp(1.0, np.maximum(e - 1, -6) - 3)
    r = np.round(a / q) * q
    assert r.max(initial=0) <= 448
    return np.where(v < 0, -r, r)


def quant_fp8(w):
    """[out, in] f32 -> (e4m3 bytes [out, in], e8m0 bytes [ceil(out/128), ceil(in/128)], dequantized f32)."""
    w = np.asarray(w, dtype=np.float64)
    o, i = w.shape
    po, pi = -o % 128, -i % 128
    wp = np.pad(w, ((0, po), (0, pi)))
    blk = wp.reshape((o + po) // 128, 128, (i + pi) // 128, 128)
    amax = np.maximum(np.abs(blk).max(axis=(1, 3), keepdims=True), 1e-30)
    e = _np_ceil_log2(amax / 448.0)
    s = np.ldexp(1.0, e)
    r = _np_e4m3_round(blk / s)
    deq = (r * s).reshape(o + po, i + pi)[:o, :i].astype(np.float32)
    codes = _e4m3_encode(r.reshape(o + po, i + pi)[:o, :i])
    return codes, (e[:, 0, :, 0] + 127).astype(np.uint8), deq


def quant_fp4(w):
    """[out, in] f32 -> (packed int8 [out, in/2] (even element in the low nibble), e8m0 [out, in/32], deq f32)."""
    w = np.asarray(w, dtype=np.float64)
    o, i = w.shape
    assert i % 32 == 0
    blk = w.reshape(o, i // 32, 32)
    amax = np.maximum(np.abs(blk).max(axis=-1), 1e-30)
    e = _np_ceil_log2(amax / 6.0)
    v = blk / np.ldexp(1.0, e)[..., None]
    a = np.abs(v)
    assert a.max() <= 6.0
    mids = np.array(FP4_MIDS)
    lo = np.searchsorted(mids, a, side="left")
    hi = np.searchsorted(mids, a, side="right")
    idx = np.where((lo != hi) & (lo % 2 == 1), hi, lo)
    mag = np.array(FP4_GRID)[idx]
    neg = (v < 0) & (idx > 0)
    codes = (idx | (neg.astype(np.int64) << 3)).reshape(o, i)
    deq = (np.where(neg, -mag, mag) * np.ldexp(1.0, e)[..., None]).reshape(o, i).astype(np.float32)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8).view(np.int8)
    return packed, (e + 127).astype(np.uint8), deq


ST_ITEMSIZE = {"BF16": 2, "F32": 4, "F8_E4M3": 1, "F8_E8M0": 1, "I8": 1, "I64": 8}


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> (dtype code, shape, bytes). Sorted names, 8-byte aligned header."""
    header, offset = {}, 0
    names = sorted(tensors)
    for n in names:
        dt, shape, data = tensors[n]
        assert len(data) == int(np.prod(shape, dtype=np.int64)) * ST_ITEMSIZE[dt], (n, dt, shape, len(data))
        header[n] = {"dtype": dt, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for n in names:
            f.write(tensors[n][2])
    return 8 + len(h) + offset
