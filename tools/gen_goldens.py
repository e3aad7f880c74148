#!/usr/bin/env python3
"""Golden reference data for the dsv4 engine, produced with Hugging Face transformers' DeepseekV4ForCausalLM.

Purpose: build tiny random DeepSeek-V4 checkpoints (three configurations, three checkpoint flavours), run the HF
model on them in float32 and store, per configuration, under <out>/<name>/:
  config.json, the checkpoint (*.safetensors [+ model.safetensors.index.json]), input_ids.json, logits.npy
  (HF float32 logits of every position of one forward, [n_tokens, vocab]), greedy.json (HF generate, 32 new ids,
  greedy, with cache) and meta.json (seed, versions, quantization, observed top-k margins, self-checks).

Invariants:
  * Deterministic: every tensor comes from numpy's PCG64 seeded by (seed, crc32(tensor name)); HF runs on the
    CPU in float32 (no TF32 anywhere), single process.
  * The weights HF computes with are exactly the values stored in the checkpoint: bf16-class tensors are rounded
    to bf16 first, FP8 (e4m3, 128x128 e8m0 block scales) and MXFP4 (e2m1, 1x32 e8m0 scales) tensors are quantized
    here and HF gets their exact dequantized values. The HF-naming checkpoint is HF's own state_dict in f32.
  * Official tensor names follow spec §7.3; HF names follow the installed modeling file; the mapping (spec §7.7)
    is checked in both directions against model.state_dict() before anything is written.

Usage (on the GPU machine, which has torch + transformers; the numpy-only parts also run with --no-hf):
  python3 tools/gen_goldens.py --out tests/data/golden
"""

import argparse
import copy
import hashlib
import json
import math
import os
import re
import struct
import sys
import time
import traceback
import zlib

import numpy as np

# --------------------------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------------------------

COMMON = dict(
    hidden_size=128,
    num_attention_heads=4,
    head_dim=128,
    qk_rope_head_dim=64,
    q_lora_rank=128,
    o_groups=2,
    o_lora_rank=128,
    index_n_heads=8,
    index_head_dim=128,
    index_topk=8,
    num_experts_per_tok=2,
    moe_intermediate_size=64,
    rope_theta=10000.0,
    compress_rope_theta=160000.0,
    rope_scaling=dict(type="yarn", factor=16, original_max_position_embeddings=65536, beta_fast=32, beta_slow=1),
    rms_norm_eps=1e-6,
    hc_mult=4,
    hc_sinkhorn_iters=20,
    hc_eps=1e-6,
    routed_scaling_factor=1.5,
    swiglu_limit=10.0,
    n_shared_experts=1,
)

# name: (naming, storage, per-config fields, seq_len, base seed)
#   naming  "official": spec §7.3 names, hub-schema config.json;  "hf": HF state_dict names, transformers schema
#   storage "bf16": bf16/f32 tensors;  "fp8": FP8 e4m3 + MXFP4 experts;  "f32": everything f32
CONFIGS = {
    "v4_tiny_bf16": dict(
        naming="official", storage="bf16", seq_len=301, seed=1000, n_shards=1,
        fields=dict(vocab_size=512, num_hidden_layers=4, compress_ratios=[4, 0, 128, 4], num_hash_layers=2,
                    n_routed_experts=8, sliding_window=128, num_nextn_predict_layers=0),
    ),
    "v4_tiny_fp8_mtp": dict(
        naming="official", storage="fp8", seq_len=263, seed=2000, n_shards=2,
        fields=dict(vocab_size=512, num_hidden_layers=4, compress_ratios=[128, 4, 0, 4, 0], num_hash_layers=1,
                    n_routed_experts=8, sliding_window=32, num_nextn_predict_layers=1),
    ),
    "v4_tiny_hf_f32": dict(
        naming="hf", storage="f32", seq_len=237, seed=3000, n_shards=1,
        fields=dict(vocab_size=256, num_hidden_layers=3, compress_ratios=[0, 128, 4], num_hash_layers=2,
                    n_routed_experts=4, moe_intermediate_size=32, sliding_window=64, num_nextn_predict_layers=0),
    ),
}

N_SEED_CANDIDATES = 16  # seeds tried per config; the one with the widest top-k margins is kept
N_NEW_TOKENS = 32
N_DECODE_CHECK = 6  # last positions re-computed by prefix prefill + step decode (self-check i)


def hub_config(fields, storage):
    """The HF-hub schema config.json (spec §1.1) of one tiny configuration."""
    c = dict(COMMON)
    c.update(fields)
    d = {
        "architectures": ["DeepseekV4ForCausalLM"],
        "model_type": "deepseek_v4",
        "vocab_size": c["vocab_size"],
        "hidden_size": c["hidden_size"],
        "num_hidden_layers": c["num_hidden_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": 1,
        "head_dim": c["head_dim"],
        "qk_rope_head_dim": c["qk_rope_head_dim"],
        "q_lora_rank": c["q_lora_rank"],
        "o_lora_rank": c["o_lora_rank"],
        "o_groups": c["o_groups"],
        "sliding_window": c["sliding_window"],
        "compress_ratios": list(c["compress_ratios"]),
        "compress_rope_theta": c["compress_rope_theta"],
        "rope_theta": c["rope_theta"],
        "rope_scaling": dict(c["rope_scaling"]),
        "max_position_embeddings": 1048576,
        "index_n_heads": c["index_n_heads"],
        "index_head_dim": c["index_head_dim"],
        "index_topk": c["index_topk"],
        "n_routed_experts": c["n_routed_experts"],
        "n_shared_experts": 1,
        "num_experts_per_tok": c["num_experts_per_tok"],
        "moe_intermediate_size": c["moe_intermediate_size"],
        "routed_scaling_factor": c["routed_scaling_factor"],
        "scoring_func": "sqrtsoftplus",
        "topk_method": "noaux_tc",
        "norm_topk_prob": True,
        "num_hash_layers": c["num_hash_layers"],
        "swiglu_limit": c["swiglu_limit"],
        "hc_mult": c["hc_mult"],
        "hc_sinkhorn_iters": c["hc_sinkhorn_iters"],
        "hc_eps": c["hc_eps"],
        "rms_norm_eps": c["rms_norm_eps"],
        "num_nextn_predict_layers": c["num_nextn_predict_layers"],
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": "float32" if storage == "f32" else "bfloat16",
    }
    if storage == "fp8":
        d["quantization_config"] = {
            "quant_method": "fp8",
            "fmt": "e4m3",
            "scale_fmt": "ue8m0",
            "activation_scheme": "dynamic",
            "weight_block_size": [128, 128],
        }
        d["expert_dtype"] = "fp4"
    return d


# --------------------------------------------------------------------------------------------------------------
# Number formats (numpy; exact, no torch needed)
# --------------------------------------------------------------------------------------------------------------

def bf16_round(x):
    """Round f32 to the nearest bf16 (RNE); returns f32 values that are exactly bf16."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32).reshape(np.shape(x))


def bf16_bytes(x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    assert np.array_equal(bf16_round(x), x), "value is not bf16-representable"
    return (x.view(np.uint32) >> 16).astype("<u2").tobytes()


def ceil_log2(t):
    """Exact ceil(log2(t)) for positive floats (array)."""
    m, e = np.frexp(np.asarray(t, dtype=np.float64))
    return np.where(m == 0.5, e - 1, e).astype(np.int64)


def e4m3_round(v):
    """Round to OCP FP8 E4M3 (fn) values, RNE; |v| must be <= 448."""
    v = np.asarray(v, dtype=np.float64)
    a = np.abs(v)
    _, e = np.frexp(a)
    ex = np.maximum(e - 1, -6)  # binade exponent, subnormals share the -6 quantum
    q = np.ldexp(1.0, ex - 3)
    r = np.round(a / q) * q  # np.round: half to even
    assert r.max(initial=0) <= 448
    return np.where(v < 0, -r, r)


def e4m3_encode(r):
    """Bytes of e4m3-representable values."""
    r = np.asarray(r, dtype=np.float64)
    a = np.abs(r)
    sign = ((r < 0) & (a > 0)).astype(np.int64)
    _, e = np.frexp(a)
    ex = e - 1
    normal = (a > 0) & (ex >= -6)
    exn = np.where(normal, ex, 0)
    mant_n = (a / np.ldexp(1.0, exn) - 1.0) * 8.0
    mant_s = a / 2.0 ** -9
    mant = np.where(normal, mant_n, mant_s)
    assert np.all(mant == np.round(mant)) and np.all((mant >= 0) & (mant <= 7))
    biased = np.where(normal, exn + 7, 0)
    assert np.all((biased >= 0) & (biased <= 15))
    byte = (sign << 7) | (biased << 3) | mant.astype(np.int64)
    assert not np.any(byte & 0x7F == 0x7F), "NaN code"
    return byte.astype(np.uint8)


def e4m3_decode(byte):
    byte = np.asarray(byte, dtype=np.int64)
    s = np.where(byte >> 7, -1.0, 1.0)
    ex = (byte >> 3) & 0xF
    m = byte & 7
    val = np.where(ex == 0, m * 2.0 ** -9, (1.0 + m / 8.0) * np.ldexp(1.0, ex - 7))
    return s * val


FP4_GRID = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def quant_fp8_block(w):
    """128x128 block FP8: returns (dequantized f32, e4m3 bytes [out,in], e8m0 bytes [ceil(out/128), ceil(in/128)])."""
    w = np.asarray(w, dtype=np.float32)
    n_out, n_in = w.shape
    nbo, nbi = -(-n_out // 128), -(-n_in // 128)
    deq = np.empty_like(w)
    codes = np.empty(w.shape, dtype=np.uint8)
    sbytes = np.empty((nbo, nbi), dtype=np.uint8)
    for bo in range(nbo):
        for bi in range(nbi):
            sl = (slice(bo * 128, (bo + 1) * 128), slice(bi * 128, (bi + 1) * 128))
            blk = w[sl].astype(np.float64)
            amax = max(float(np.abs(blk).max()), 1e-30)
            e = int(ceil_log2(amax / 448.0))
            s = math.ldexp(1.0, e)
            r = e4m3_round(blk / s)
            deq[sl] = (r * s).astype(np.float32)
            assert np.array_equal(deq[sl].astype(np.float64), r * s)
            codes[sl] = e4m3_encode(r)
            sbytes[bo, bi] = e + 127
    return deq, codes, sbytes


def quant_mxfp4(w):
    """MXFP4 (spec §7.2): returns (dequantized f32, packed int8 [out, in/2] low nibble = even element,
    e8m0 bytes [out, in/32])."""
    w = np.asarray(w, dtype=np.float32)
    n_out, n_in = w.shape
    assert n_in % 32 == 0
    blocks = w.reshape(n_out, n_in // 32, 32).astype(np.float64)
    amax = np.maximum(np.abs(blocks).max(axis=-1), 1e-30)
    e = ceil_log2(amax / 6.0)
    s = np.ldexp(1.0, e)[..., None]
    v = blocks / s
    a = np.abs(v)
    assert a.max() <= 6.0
    dist = np.abs(a[..., None] - FP4_GRID) + 1e-12 * (np.arange(8) % 2)  # ties -> even code
    idx = np.argmin(dist, axis=-1)
    mag = FP4_GRID[idx]
    neg = (v < 0) & (idx > 0)
    codes = (idx | (neg.astype(np.int64) << 3)).reshape(n_out, n_in)
    deq = (np.where(neg, -mag, mag) * s).reshape(n_out, n_in).astype(np.float32)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8).view(np.int8)
    return deq, packed, (e + 127).astype(np.uint8)


def mxfp4_dequant(packed, sbytes):
    p = np.asarray(packed).view(np.uint8).astype(np.int64)
    codes = np.empty((p.shape[0], p.shape[1] * 2), dtype=np.int64)
    codes[:, 0::2] = p & 0xF
    codes[:, 1::2] = p >> 4
    mag = FP4_GRID[codes & 7]
    val = np.where(codes & 8, -mag, mag)
    scale = np.ldexp(1.0, sbytes.astype(np.int64) - 127)
    return (val.reshape(p.shape[0], -1, 32) * scale[..., None]).reshape(codes.shape)


# --------------------------------------------------------------------------------------------------------------
# safetensors writer (format: u64 header length, JSON header, raw little-endian data)
# --------------------------------------------------------------------------------------------------------------

ST_ITEMSIZE = {"BF16": 2, "F32": 4, "F8_E4M3": 1, "F8_E8M0": 1, "I8": 1, "I64": 8}


class Stored:
    """One tensor as it lies in the checkpoint."""

    def __init__(self, dtype, shape, data):
        assert len(data) == int(np.prod(shape, dtype=np.int64)) * ST_ITEMSIZE[dtype], (dtype, shape, len(data))
        self.dtype, self.shape, self.data = dtype, list(shape), data


def write_safetensors(path, tensors):
    header, offset = {}, 0
    names = sorted(tensors)
    for name in names:
        t = tensors[name]
        header[name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + len(t.data)]}
        offset += len(t.data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name in names:
            f.write(tensors[name].data)
    return offset


# --------------------------------------------------------------------------------------------------------------
# Official tensor list (spec §7.3) and weight initialisation
# --------------------------------------------------------------------------------------------------------------

def official_tensor_shapes(hub):
    """Ordered dict official name -> shape, for the main model and the MTP blocks (spec §7.3, §8)."""
    D, H, d = hub["hidden_size"], hub["num_attention_heads"], hub["head_dim"]
    ql, G, R = hub["q_lora_rank"], hub["o_groups"], hub["o_lora_rank"]
    E, I, hc = hub["n_routed_experts"], hub["moe_intermediate_size"], hub["hc_mult"]
    V, nIH, IHD = hub["vocab_size"], hub["index_n_heads"], hub["index_head_dim"]
    K = hub["num_experts_per_tok"]
    nL = hub["num_hidden_layers"]
    mix = (2 + hc) * hc
    out = {}
    out["embed.weight"] = [V, D]

    def block(p, ratio, hashed):
        out[p + "hc_attn_fn"] = [mix, hc * D]
        out[p + "hc_attn_base"] = [mix]
        out[p + "hc_attn_scale"] = [3]
        out[p + "hc_ffn_fn"] = [mix, hc * D]
        out[p + "hc_ffn_base"] = [mix]
        out[p + "hc_ffn_scale"] = [3]
        out[p + "attn_norm.weight"] = [D]
        out[p + "ffn_norm.weight"] = [D]
        out[p + "attn.attn_sink"] = [H]
        out[p + "attn.wq_a.weight"] = [ql, D]
        out[p + "attn.q_norm.weight"] = [ql]
        out[p + "attn.wq_b.weight"] = [H * d, ql]
        out[p + "attn.wkv.weight"] = [d, D]
        out[p + "attn.kv_norm.weight"] = [d]
        out[p + "attn.wo_a.weight"] = [G * R, H * d // G]
        out[p + "attn.wo_b.weight"] = [D, G * R]
        if ratio > 0:
            c = 2 if ratio == 4 else 1
            out[p + "attn.compressor.wkv.weight"] = [c * d, D]
            out[p + "attn.compressor.wgate.weight"] = [c * d, D]
            out[p + "attn.compressor.ape"] = [ratio, c * d]
            out[p + "attn.compressor.norm.weight"] = [d]
        if ratio == 4:
            out[p + "attn.indexer.wq_b.weight"] = [nIH * IHD, ql]
            out[p + "attn.indexer.weights_proj.weight"] = [nIH, D]
            out[p + "attn.indexer.compressor.wkv.weight"] = [2 * IHD, D]
            out[p + "attn.indexer.compressor.wgate.weight"] = [2 * IHD, D]
            out[p + "attn.indexer.compressor.ape"] = [4, 2 * IHD]
            out[p + "attn.indexer.compressor.norm.weight"] = [IHD]
        out[p + "ffn.gate.weight"] = [E, D]
        if hashed:
            out[p + "ffn.gate.tid2eid"] = [V, K]
        else:
            out[p + "ffn.gate.bias"] = [E]
        for e in range(E):
            out[p + f"ffn.experts.{e}.w1.weight"] = [I, D]
            out[p + f"ffn.experts.{e}.w2.weight"] = [D, I]
            out[p + f"ffn.experts.{e}.w3.weight"] = [I, D]
        out[p + "ffn.shared_experts.w1.weight"] = [I, D]
        out[p + "ffn.shared_experts.w2.weight"] = [D, I]
        out[p + "ffn.shared_experts.w3.weight"] = [I, D]

    ratios = hub["compress_ratios"]
    for il in range(nL):
        block(f"layers.{il}.", ratios[il], il < hub["num_hash_layers"])
    out["norm.weight"] = [D]
    out["head.weight"] = [V, D]
    out["hc_head_fn"] = [hc, hc * D]
    out["hc_head_base"] = [hc]
    out["hc_head_scale"] = [1]
    for j in range(hub["num_nextn_predict_layers"]):
        p = f"mtp.{j}."
        block(p, ratios[nL + j] if len(ratios) > nL + j else 0, False)
        out[p + "e_proj.weight"] = [D, D]
        out[p + "h_proj.weight"] = [D, D]
        out[p + "enorm.weight"] = [D]
        out[p + "hnorm.weight"] = [D]
        out[p + "norm.weight"] = [D]
        out[p + "hc_head_fn"] = [hc, hc * D]
        out[p + "hc_head_base"] = [hc]
        out[p + "hc_head_scale"] = [1]
    return out


FP8_CLASS = re.compile(r"(attn\.(wq_a|wq_b|wkv|wo_a|wo_b)|attn\.indexer\.wq_b|ffn\.shared_experts\.w[123]|"
                       r"e_proj|h_proj)\.weight$")
FP4_CLASS = re.compile(r"ffn\.experts\.\d+\.w[123]\.weight$")
F32_CLASS = re.compile(r"(hc_(attn|ffn|head)_(fn|base|scale)|attn_sink|\.ape|ffn\.gate\.bias)$")
I64_CLASS = re.compile(r"tid2eid$")


def tensor_class(name):
    if I64_CLASS.search(name):
        return "i64"
    if F32_CLASS.search(name):
        return "f32"
    if FP4_CLASS.search(name):
        return "fp4"
    if FP8_CLASS.search(name):
        return "fp8"
    return "bf16"


def name_rng(seed, name):
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def init_value(seed, name, shape, hub, shared_dir):
    """f32 value of one official tensor before storage rounding. Scales (hidden D = 128, unit-RMS activations):
    q/kv/o projections ~ 1/sqrt(fan_in); compressor gates give logits of std ~1; the indexer's weights_proj
    rows share the embedding's common direction so that the per-head weights are mostly positive (an
    all-negative weight row would make many scores exactly 0: top-k ties); expert w1/w3 give gate/up
    pre-activations of std ~4 (the SwiGLU clamp at 10 fires on ~1% of them); logits have std ~4."""
    rng = name_rng(seed, name)
    D = hub["hidden_size"]
    n = lambda *s: rng.standard_normal(s).astype(np.float64)  # noqa: E731
    leaf = name.split(".", 2)[-1] if name.startswith(("layers.", "mtp.")) else name
    if name == "embed.weight":
        return n(*shape) + 0.9 * shared_dir[None, :]  # shared_dir ~ N(0,1)^D: a common direction
    if name == "head.weight":
        w = n(*shape) * 0.35
        u = shared_dir / np.linalg.norm(shared_dir)
        return w - np.outer(w @ u, u)  # the shared embedding direction contributes no logit offset
    if re.search(r"hc_(attn|ffn|head)_fn$", name):
        return n(*shape) * 0.045
    if re.search(r"hc_(attn|ffn|head)_base$", name):
        return n(*shape) * 0.5
    if re.search(r"hc_(attn|ffn|head)_scale$", name):
        return rng.uniform(0.5, 1.5, size=shape)
    if leaf.endswith("attn.attn_sink"):
        return 1.0 + n(*shape)
    if leaf in ("attn.kv_norm.weight", "attn.compressor.norm.weight"):
        return 1.5 + 0.1 * n(*shape)
    if leaf.endswith("norm.weight"):
        return 1.0 + 0.1 * n(*shape)
    if leaf.endswith(".ape"):
        return 0.5 * n(*shape)
    if leaf == "ffn.gate.bias":
        return 0.3 * n(*shape)
    if leaf == "ffn.gate.weight":
        return 0.13 * n(*shape)
    if leaf == "ffn.gate.tid2eid":
        V, K = shape
        E = hub["n_routed_experts"]
        return np.stack([rng.permutation(E)[:K] for _ in range(V)]).astype(np.int64)
    if leaf == "attn.indexer.weights_proj.weight":
        u = shared_dir / np.linalg.norm(shared_dir)
        return 0.2 * u[None, :] + 0.015 * n(*shape)
    if re.search(r"(experts\.\d+|shared_experts)\.w[13]\.weight$", leaf):
        return 0.35 * n(*shape)
    if re.search(r"(experts\.\d+|shared_experts)\.w2\.weight$", leaf):
        return 0.015 * n(*shape)
    if leaf.endswith(".weight") and len(shape) == 2:  # remaining projections: fan-in scaling
        return n(*shape) / math.sqrt(shape[1])
    raise ValueError(f"no init rule for {name}")


def make_checkpoint(seed, hub, storage):
    """Returns (stored: name -> Stored (official names), values: name -> exact f32/int64 numpy value,
    quant_report)."""
    shapes = official_tensor_shapes(hub)
    shared_dir = np.random.default_rng([seed, 7]).standard_normal(hub["hidden_size"])
    stored, values = {}, {}
    report = {"fp8": [], "fp4": [], "bf16": [], "f32": [], "i64": []}
    for name, shape in shapes.items():
        v = init_value(seed, name, shape, hub, shared_dir)
        assert list(v.shape) == list(shape), (name, v.shape, shape)
        cls = tensor_class(name)
        if cls == "i64":
            values[name] = v.astype(np.int64)
            stored[name] = Stored("I64", shape, values[name].astype("<i8").tobytes())
            report["i64"].append(name)
            continue
        v = v.astype(np.float32)
        if storage == "f32" or cls == "f32":
            values[name] = v
            stored[name] = Stored("F32", shape, v.astype("<f4").tobytes())
            report["f32"].append(name)
        elif storage == "fp8" and cls == "fp8":
            deq, codes, sb = quant_fp8_block(v)
            assert np.array_equal(e4m3_decode(codes) * np.ldexp(1.0, np.repeat(np.repeat(
                sb.astype(np.int64) - 127, 128, 0), 128, 1)[: shape[0], : shape[1]]), deq.astype(np.float64))
            values[name] = deq
            stored[name] = Stored("F8_E4M3", shape, codes.tobytes())
            stored[name[: -len("weight")] + "scale"] = Stored("F8_E8M0", list(sb.shape), sb.tobytes())
            report["fp8"].append(name)
        elif storage == "fp8" and cls == "fp4":
            deq, packed, sb = quant_mxfp4(v)
            assert np.array_equal(mxfp4_dequant(packed, sb), deq.astype(np.float64))
            values[name] = deq
            stored[name] = Stored("I8", [shape[0], shape[1] // 2], packed.tobytes())
            stored[name[: -len("weight")] + "scale"] = Stored("F8_E8M0", list(sb.shape), sb.tobytes())
            report["fp4"].append(name)
        else:  # bf16 storage of bf16-class (and, in the bf16 checkpoint, FP8/FP4-class) tensors
            r = bf16_round(v)
            values[name] = r
            stored[name] = Stored("BF16", shape, bf16_bytes(r))
            report["bf16"].append(name)
    return stored, values, report


# --------------------------------------------------------------------------------------------------------------
# Official <-> HF names (spec §7.7; conversion_mapping.py "deepseek_v4")
# --------------------------------------------------------------------------------------------------------------

GLOBAL_TO_HF = {
    "embed.weight": "model.embed_tokens.weight",
    "head.weight": "lm_head.weight",
    "norm.weight": "model.norm.weight",
    "hc_head_fn": "model.hc_head.hc_fn",
    "hc_head_base": "model.hc_head.hc_base",
    "hc_head_scale": "model.hc_head.hc_scale",
}

LAYER_TO_HF = [  # (official leaf regex, HF leaf template)
    (r"attn_norm\.weight", "input_layernorm.weight"),
    (r"ffn_norm\.weight", "post_attention_layernorm.weight"),
    (r"hc_attn_(fn|base|scale)", r"attn_hc.\1"),
    (r"hc_ffn_(fn|base|scale)", r"ffn_hc.\1"),
    (r"attn\.attn_sink", "self_attn.sinks"),
    (r"attn\.wq_a\.weight", "self_attn.q_a_proj.weight"),
    (r"attn\.q_norm\.weight", "self_attn.q_a_norm.weight"),
    (r"attn\.wq_b\.weight", "self_attn.q_b_proj.weight"),
    (r"attn\.wkv\.weight", "self_attn.kv_proj.weight"),
    (r"attn\.kv_norm\.weight", "self_attn.kv_norm.weight"),
    (r"attn\.wo_a\.weight", "self_attn.o_a_proj.weight"),
    (r"attn\.wo_b\.weight", "self_attn.o_b_proj.weight"),
    (r"attn\.compressor\.wkv\.weight", "self_attn.compressor.kv_proj.weight"),
    (r"attn\.compressor\.wgate\.weight", "self_attn.compressor.gate_proj.weight"),
    (r"attn\.compressor\.ape", "self_attn.compressor.position_bias"),
    (r"attn\.compressor\.norm\.weight", "self_attn.compressor.kv_norm.weight"),
    (r"attn\.indexer\.wq_b\.weight", "self_attn.compressor.indexer.q_b_proj.weight"),
    (r"attn\.indexer\.weights_proj\.weight", "@WEIGHTS_PROJ@"),
    (r"attn\.indexer\.compressor\.wkv\.weight", "self_attn.compressor.indexer.kv_proj.weight"),
    (r"attn\.indexer\.compressor\.wgate\.weight", "self_attn.compressor.indexer.gate_proj.weight"),
    (r"attn\.indexer\.compressor\.ape", "self_attn.compressor.indexer.position_bias"),
    (r"attn\.indexer\.compressor\.norm\.weight", "self_attn.compressor.indexer.kv_norm.weight"),
    (r"ffn\.gate\.weight", "mlp.gate.weight"),
    (r"ffn\.gate\.bias", "mlp.gate.e_score_correction_bias"),
    (r"ffn\.gate\.tid2eid", "mlp.gate.tid2eid"),
    (r"ffn\.shared_experts\.w1\.weight", "mlp.shared_experts.gate_proj.weight"),
    (r"ffn\.shared_experts\.w2\.weight", "mlp.shared_experts.down_proj.weight"),
    (r"ffn\.shared_experts\.w3\.weight", "mlp.shared_experts.up_proj.weight"),
]


def official_to_hf_state(values, hub, hf_keys):
    """Official-named exact values -> HF state dict (numpy). Experts are stacked: gate_up_proj[E] =
    cat(w1, w3) on the output dim, down_proj[E] = w2. mtp.* is dropped (HF has no MTP)."""
    wp = ("self_attn.compressor.indexer.scorer.weights_proj.weight"
          if any(k.endswith("indexer.scorer.weights_proj.weight") for k in hf_keys)
          else "self_attn.compressor.indexer.weights_proj.weight")
    out, used = {}, set()
    for name, v in values.items():
        if name.startswith("mtp."):
            used.add(name)
            continue
        if name in GLOBAL_TO_HF:
            out[GLOBAL_TO_HF[name]] = v
            used.add(name)
            continue
        m = re.match(r"layers\.(\d+)\.(.*)$", name)
        assert m, name
        il, leaf = m.group(1), m.group(2)
        if re.match(r"ffn\.experts\.\d+\.", leaf):
            continue  # stacked below
        for pat, tmpl in LAYER_TO_HF:
            if re.fullmatch(pat, leaf):
                hf_leaf = re.sub(pat, tmpl, leaf) if tmpl != "@WEIGHTS_PROJ@" else wp
                out[f"model.layers.{il}.{hf_leaf}"] = v
                used.add(name)
                break
        else:
            raise KeyError(f"no HF name for {name}")
    for il in range(hub["num_hidden_layers"]):
        E = hub["n_routed_experts"]
        p = f"layers.{il}.ffn.experts."
        out[f"model.layers.{il}.mlp.experts.gate_up_proj"] = np.stack(
            [np.concatenate([values[p + f"{e}.w1.weight"], values[p + f"{e}.w3.weight"]], 0) for e in range(E)])
        out[f"model.layers.{il}.mlp.experts.down_proj"] = np.stack([values[p + f"{e}.w2.weight"] for e in range(E)])
        used.update(p + f"{e}.w{k}.weight" for e in range(E) for k in (1, 2, 3))
    assert used == set(values), sorted(set(values) - used)[:10]
    return out


# --------------------------------------------------------------------------------------------------------------
# HF part
# --------------------------------------------------------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def expected_inv_freq(theta, dim, yarn):
    """Spec §2.8 frequencies (float64 reference)."""
    i = np.arange(dim // 2, dtype=np.float64)
    f = 1.0 / theta ** (2 * i / dim)
    if yarn:
        s, L0, bf, bs = yarn["factor"], yarn["original_max_position_embeddings"], yarn["beta_fast"], yarn["beta_slow"]
        corr = lambda b: dim * math.log(L0 / (2 * math.pi * b)) / (2 * math.log(theta))  # noqa: E731
        lo, hi = max(math.floor(corr(bf)), 0), min(math.ceil(corr(bs)), dim - 1)
        if lo == hi:
            hi += 0.001
        ramp = np.clip((i - lo) / (hi - lo), 0, 1)
        f = f * (1 - ramp) + f / s * ramp
    return f


class Probe:
    """Forward hooks that record top-k margins (indexer, router), SwiGLU clamp activity."""

    def __init__(self, model, torch, F):
        self.torch, self.F = torch, F
        self.phase = "forward"
        self.idx, self.router, self.clamp = [], [], {}
        self.debug = {"indexer_topk": {}, "router_topk": {}, "layer_out_last_position": {}}
        self.handles = []
        self.last_scores = None
        names = {m: n for n, m in model.named_modules()}
        for mod, n in names.items():
            cls = type(mod).__name__
            lm = re.search(r"layers\.(\d+)\.", n + ".")
            il = int(lm.group(1)) if lm else -1
            if cls == "DeepseekV4IndexerScorer":
                self.handles.append(mod.register_forward_hook(self._scorer_hook))
            elif cls == "DeepseekV4Indexer":
                self.handles.append(mod.register_forward_hook(self._mk_indexer_hook(il), with_kwargs=True))
            elif cls == "DeepseekV4TopKRouter":
                self.handles.append(mod.register_forward_hook(self._mk_router_hook(il)))
            elif cls == "DeepseekV4MLP":
                self.handles.append(mod.gate_proj.register_forward_hook(self._mk_clamp_hook("shared_gate", mod)))
                self.handles.append(mod.up_proj.register_forward_hook(self._mk_clamp_hook("shared_up", mod)))
            elif cls == "DeepseekV4Experts":
                self.handles.append(mod.register_forward_pre_hook(self._mk_experts_hook(mod)))
            elif cls == "DeepseekV4DecoderLayer":
                self.handles.append(mod.register_forward_hook(self._mk_layer_hook(il)))

    def _mk_layer_hook(self, il):
        def hook(mod, args, out):
            if self.phase == "forward":
                h = out[0] if isinstance(out, tuple) else out  # [B, S, hc_mult, D]
                self.debug["layer_out_last_position"][str(il)] = h[0, -1].double().tolist()
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()

    def _scorer_hook(self, mod, args, out):
        self.last_scores = out.detach().double()

    def _mk_indexer_hook(self, il):
        torch = self.torch

        def hook(mod, args, kwargs, out):
            pos = args[2] if len(args) > 2 else kwargs["position_ids"]
            if self.phase == "forward":
                self.debug["indexer_topk"][str(il)] = [sorted(i for i in row if i >= 0) for row in out[0].tolist()]
            sc = self.last_scores[0]  # [S, T]
            S, T = sc.shape
            k = mod.index_topk
            nvis = torch.clamp((pos[0].to(sc.device) + 1) // mod.compress_rate, max=T)  # [S]
            for s in range(S):
                n = int(nvis[s])
                if n <= k:
                    continue
                row = sc[s, :n]
                v = torch.sort(row, descending=True).values
                gap = float(v[k - 1] - v[k])
                scale = float(v.abs().max())
                ties = int((row == v[k - 1]).sum()) > 1
                self.idx.append(dict(phase=self.phase, layer=il, pos=int(pos[0, s]), n_visible=n, gap=gap,
                                     rel=gap / max(scale, 1e-30), tie=ties, kth=float(v[k - 1])))
        return hook

    def _mk_router_hook(self, il):
        torch, F = self.torch, self.F

        def hook(mod, args, out):
            logits = out[0].detach().double()
            scores = mod.score_fn(out[0].detach()).double()
            if self.phase == "forward":
                self.debug["router_topk"][str(il)] = [sorted(r) for r in out[2].tolist()]
            ref = torch.sqrt(F.softplus(logits))
            self.router_fn_err = max(getattr(self, "router_fn_err", 0.0), float((scores - ref).abs().max()))
            biased = scores + mod.e_score_correction_bias.detach().double()
            k = mod.top_k
            v = torch.topk(biased, k + 1, dim=-1).values
            gap = (v[:, k - 1] - v[:, k])
            rel = gap / v[:, 0].abs().clamp_min(1e-30)
            for t in range(v.shape[0]):
                self.router.append(dict(phase=self.phase, layer=il, gap=float(gap[t]), rel=float(rel[t])))
        return hook

    def _count(self, key, n_over, n_total):
        c = self.clamp.setdefault(self.phase, {}).setdefault(key, [0, 0])
        c[0] += n_over
        c[1] += n_total

    def _mk_clamp_hook(self, key, mlp):
        def hook(mod, args, out):
            lim = mlp.limit
            o = out.detach()
            n = int((o > lim).sum()) if key.endswith("gate") else int((o.abs() > lim).sum())
            self._count(key, n, o.numel())
        return hook

    def _mk_experts_hook(self, mod):
        F = self.F

        def hook(m, args):
            hs, idx = args[0].detach(), args[1].detach()
            lim = m.limit
            for e in range(m.gate_up_proj.shape[0]):
                tok = (idx == e).any(dim=-1).nonzero().flatten()
                if tok.numel() == 0:
                    continue
                gu = F.linear(hs[tok], m.gate_up_proj[e].detach())
                g, u = gu.chunk(2, dim=-1)
                self._count("routed_gate", int((g > lim).sum()), g.numel())
                self._count("routed_up", int((u.abs() > lim).sum()), u.numel())
        return hook

    def summary(self, phases=None):
        def sel(lst):
            return [r for r in lst if phases is None or r["phase"] in phases]
        idx, rt = sel(self.idx), sel(self.router)
        out = {}
        if idx:
            i_abs = min(idx, key=lambda r: r["gap"])
            i_rel = min(idx, key=lambda r: r["rel"])
            out["indexer"] = dict(n_topk_decisions=len(idx), min_gap=i_abs["gap"], min_gap_at=dict(
                layer=i_abs["layer"], pos=i_abs["pos"], phase=i_abs["phase"]), min_rel_gap=i_rel["rel"],
                min_rel_gap_at=dict(layer=i_rel["layer"], pos=i_rel["pos"], phase=i_rel["phase"]),
                median_rel_gap=float(np.median([r["rel"] for r in idx])),
                exact_ties=sum(r["tie"] for r in idx),
                kth_score_nonpositive=sum(r["kth"] <= 0 for r in idx))
        if rt:
            r_abs = min(rt, key=lambda r: r["gap"])
            r_rel = min(rt, key=lambda r: r["rel"])
            out["router"] = dict(n_topk_decisions=len(rt), min_gap=r_abs["gap"], min_gap_layer=r_abs["layer"],
                                 min_rel_gap=r_rel["rel"], median_rel_gap=float(np.median([r["rel"] for r in rt])))
        return out


def logits_margin(lg):
    v = np.sort(lg, axis=-1)[:, -2:]
    gap = v[:, 1] - v[:, 0]
    rel = gap / np.abs(v[:, 1])
    return dict(min_gap=float(gap.min()), min_rel_gap=float(rel.min()), median_gap=float(np.median(gap)),
                argmax_distinct=int(len(set(np.argmax(lg, -1).tolist()))))


def rel_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def build_hf(hub, log):
    """DeepseekV4Config from the hub-schema dict (the legacy-key path from_pretrained takes), checked."""
    import transformers
    from transformers import DeepseekV4Config
    drop = {"quantization_config", "expert_dtype", "torch_dtype", "topk_method", "model_type"}
    kw = {k: copy.deepcopy(v) for k, v in hub.items() if k not in drop}  # HF mutates nested dicts in place
    notes = []
    nL = hub["num_hidden_layers"]
    names = {0: "sliding_attention", 4: "compressed_sparse_attention", 128: "heavily_compressed_attention"}
    exp_types = [names[r] for r in hub["compress_ratios"][:nL]]
    exp_mlp = ["hash_moe"] * hub["num_hash_layers"] + ["moe"] * (nL - hub["num_hash_layers"])
    rs = hub["rope_scaling"]

    def rope_ok(cfg):
        rp = cfg.rope_parameters
        comp = rp.get("compress", {}) if isinstance(rp, dict) else {}
        return (comp.get("rope_type") == "yarn" and comp.get("factor") == rs["factor"]
                and comp.get("original_max_position_embeddings") == rs["original_max_position_embeddings"]
                and comp.get("beta_fast") == rs["beta_fast"] and comp.get("beta_slow") == rs["beta_slow"]
                and float(comp.get("rope_theta", -1)) == hub["compress_rope_theta"])

    cfg = None
    try:
        cfg = DeepseekV4Config(**kw)
        if not rope_ok(cfg):
            notes.append(f"HF did not fold hub rope_scaling into rope_parameters.compress (got "
                         f"{cfg.rope_parameters}); rebuilt with rope_parameters")
            cfg = None
    except Exception as exc:  # noqa: BLE001
        notes.append(f"DeepseekV4Config(**hub) raised {exc!r}; rebuilt with rope_parameters")
    if cfg is None:
        kw2 = {k: copy.deepcopy(v) for k, v in hub.items() if k not in drop and k != "rope_scaling"}
        kw2["rope_parameters"] = {"rope_type": "yarn", "factor": rs["factor"],
                                  "original_max_position_embeddings": rs["original_max_position_embeddings"],
                                  "beta_fast": rs["beta_fast"], "beta_slow": rs["beta_slow"]}
        cfg = DeepseekV4Config(**kw2)
        assert rope_ok(cfg), cfg.rope_parameters
    for n_ in notes:
        log("  NOTE " + n_)
    rp = cfg.rope_parameters
    comp = rp["compress"]
    assert list(cfg.layer_types) == exp_types, (cfg.layer_types, exp_types)
    assert list(cfg.mlp_layer_types) == exp_mlp, (cfg.mlp_layer_types, exp_mlp)
    assert comp["rope_type"] == "yarn" and float(comp.get("attention_factor", -1)) == 1.0, comp
    assert rp["main"]["rope_type"] == "default" and float(rp["main"]["rope_theta"]) == hub["rope_theta"], rp
    assert cfg.qk_rope_head_dim == hub["qk_rope_head_dim"], cfg.qk_rope_head_dim
    assert cfg.sliding_window == hub["sliding_window"] and cfg.index_topk == hub["index_topk"]
    assert not cfg.tie_word_embeddings
    log(f"  HF config ok: layer_types={cfg.layer_types} mlp_layer_types={cfg.mlp_layer_types} "
        f"rope_parameters={rp}")
    return cfg, notes, transformers.__version__


def new_model(cfg, torch, log):
    from transformers import DeepseekV4ForCausalLM
    torch.manual_seed(0)
    model = DeepseekV4ForCausalLM(cfg)
    impl = None
    try:
        if hasattr(model, "set_experts_implementation"):
            model.set_experts_implementation("eager")
        else:
            model.config._experts_implementation = "eager"
        impl = getattr(model.config, "_experts_implementation", None)
    except Exception as exc:  # noqa: BLE001
        log(f"  (could not force eager experts: {exc!r})")
        impl = getattr(model.config, "_experts_implementation", None)
    return model.float().eval(), impl, getattr(model.config, "_attn_implementation", None)


def load_values(model, values, hub, torch):
    sd = model.state_dict()
    hf = official_to_hf_state(values, hub, list(sd.keys()))
    missing = sorted(set(sd) - set(hf))
    extra = sorted(set(hf) - set(sd))
    assert not missing and not extra, f"HF state_dict mismatch: missing {missing[:8]} unexpected {extra[:8]}"
    tensors = {}
    for k, v in hf.items():
        t = torch.from_numpy(np.ascontiguousarray(v))
        assert list(t.shape) == list(sd[k].shape), (k, t.shape, sd[k].shape)
        tensors[k] = t.to(sd[k].dtype)
        if tensors[k].dtype.is_floating_point:
            assert torch.equal(tensors[k].double(), t.double()), k  # exact in the model dtype (f32)
    model.load_state_dict(tensors, strict=True)
    return hf


def run_config(name, spec, seed, out_root, log, torch, F):
    hub = hub_config(spec["fields"], spec["storage"])
    cfg, notes, tf_version = build_hf(hub, log)
    T = spec["seq_len"]
    V = hub["vocab_size"]
    ids_rng = np.random.default_rng([spec["seed"], 99])
    input_ids = [0] + ids_rng.integers(2, V, size=T - 1).tolist()
    ids = torch.tensor([input_ids], dtype=torch.long)

    # ---- seed search: keep the candidate with the widest indexer/router top-k margins ----
    cand = []
    for s in range(seed, seed + N_SEED_CANDIDATES):
        stored, values, _ = make_checkpoint(s, hub, spec["storage"])
        model, _, _ = new_model(cfg, torch, log)
        load_values(model, values, hub, torch)
        probe = Probe(model, torch, F)
        with torch.no_grad():
            lg = model(ids, use_cache=False).logits[0].double().numpy()
        probe.remove()
        sm = probe.summary()
        score = min(sm.get("indexer", {}).get("min_rel_gap", 1.0), sm.get("router", {}).get("min_rel_gap", 1.0))
        if sm.get("indexer", {}).get("exact_ties", 0):
            score = -1.0  # equal scores at the top-k boundary: the order torch.topk picks is implementation-defined
        lm = logits_margin(lg)
        log(f"  seed {s}: indexer min rel gap {sm.get('indexer', {}).get('min_rel_gap')}, router min rel gap "
            f"{sm.get('router', {}).get('min_rel_gap')}, logits min rel gap {lm['min_rel_gap']:.3g}, "
            f"argmax distinct {lm['argmax_distinct']}")
        cand.append((score, s))
    seed = max(cand)[1]
    log(f"  chosen seed {seed}")

    stored, values, qreport = make_checkpoint(seed, hub, spec["storage"])
    model, experts_impl, attn_impl = new_model(cfg, torch, log)
    hf_state = load_values(model, values, hub, torch)
    log(f"  experts_implementation={experts_impl} attn_implementation={attn_impl}")

    # RoPE tables vs spec §2.8
    rope_check = {}
    re_mod = model.model.rotary_emb
    r = hub["qk_rope_head_dim"]
    for lt, theta, yarn in (("main", hub["rope_theta"], None), ("compress", hub["compress_rope_theta"],
                                                                  hub["rope_scaling"])):
        got = getattr(re_mod, f"{lt}_inv_freq").double().numpy()
        rope_check[lt] = dict(max_rel_diff_vs_spec=rel_diff(got, expected_inv_freq(theta, r, yarn)),
                              attention_scaling=float(getattr(re_mod, f"{lt}_attention_scaling")))

    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    meta = dict(name=name, seed=seed, seeds_tried=[s for _, s in cand], naming=spec["naming"],
                storage=spec["storage"], seq_len=T, transformers_version=tf_version,
                torch_version=torch.__version__, numpy_version=np.__version__,
                hf_experts_implementation=experts_impl, hf_attn_implementation=attn_impl, notes=notes,
                rope_tables=rope_check)

    probe = Probe(model, torch, F)
    with torch.no_grad():
        probe.phase = "forward"
        out_nc = model(ids, use_cache=False)
        logits = out_nc.logits[0].float().numpy()
        probe.phase = "forward_cached_prefill"
        out_c = model(ids, use_cache=True)
        logits_c = out_c.logits[0].float().numpy()
    meta["selfcheck"] = dict(full_nocache_vs_cached_prefill_max_rel=rel_diff(logits_c, logits))
    meta["router_score_fn_max_abs_err_vs_sqrt_softplus"] = getattr(probe, "router_fn_err", None)

    # (i) prefix prefill + step decode through HF's cache vs the full forward
    P = T - N_DECODE_CHECK
    with torch.no_grad():
        probe.phase = "prefix_decode"
        o = model(ids[:, :P], use_cache=True)
        past = o.past_key_values
        rows = [o.logits[0, -1].float().numpy()]
        for t in range(P, T - 1):
            o = model(ids[:, t:t + 1], past_key_values=past, use_cache=True)
            past = o.past_key_values
            rows.append(o.logits[0, -1].float().numpy())
    dec = np.stack(rows)
    ref = logits[P - 1:T - 1]
    meta["selfcheck"]["prefix_then_decode_rows"] = [P - 1, T - 2]
    meta["selfcheck"]["prefix_then_decode_max_rel"] = rel_diff(dec, ref)
    meta["selfcheck"]["prefix_then_decode_argmax_equal"] = bool(np.array_equal(dec.argmax(-1), ref.argmax(-1)))

    # greedy: HF generate (with cache), a manual cached loop, and a no-cache recompute loop
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    with torch.no_grad():
        probe.phase = "generate"
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=N_NEW_TOKENS, use_cache=True)
    greedy = gen[0, T:].tolist()
    with torch.no_grad():
        probe.phase = "greedy_manual"
        o = model(ids, use_cache=True)
        past, man, man_logits = o.past_key_values, [], []
        lg = o.logits[0, -1]
        for _ in range(N_NEW_TOKENS):
            man_logits.append(lg.float().numpy())
            nt = int(torch.argmax(lg))
            man.append(nt)
            o = model(torch.tensor([[nt]]), past_key_values=past, use_cache=True)
            past, lg = o.past_key_values, o.logits[0, -1]
        probe.phase = "greedy_nocache"
        seq, nc, nc_logits = list(input_ids), [], []
        for _ in range(N_NEW_TOKENS):
            lg = model(torch.tensor([seq]), use_cache=False).logits[0, -1]
            nc_logits.append(lg.float().numpy())
            nt = int(torch.argmax(lg))
            nc.append(nt)
            seq.append(nt)
    man_logits, nc_logits = np.stack(man_logits), np.stack(nc_logits)
    meta["selfcheck"].update(
        generate_len=len(greedy),
        greedy_first_equals_argmax_last_row=bool(greedy and greedy[0] == int(np.argmax(logits[-1]))),
        generate_equals_manual_cached_loop=greedy == man,
        generate_equals_nocache_recompute=greedy == nc,
        cached_vs_nocache_step_logits_max_rel=(rel_diff(man_logits, nc_logits) if man == nc else None),
    )
    if greedy != nc:
        meta["greedy_nocache"] = nc
    meta["greedy_step_logits_margin"] = logits_margin(man_logits)

    # clamp activity and its effect on the logits
    limits = []
    for mod in model.modules():
        if type(mod).__name__ in ("DeepseekV4MLP", "DeepseekV4Experts"):
            limits.append((mod, mod.limit))
            mod.limit = float("inf")
    with torch.no_grad():
        probe.phase = "noclamp"
        lg_noclamp = model(ids, use_cache=False).logits[0].float().numpy()
    for mod, lim in limits:
        mod.limit = lim
    probe.remove()
    clamp = probe.clamp.get("forward", {})
    meta["swiglu_clamp"] = dict(
        counts_over_limit={k: dict(over=v[0], total=v[1]) for k, v in clamp.items()},
        logits_max_rel_change_without_clamp=rel_diff(lg_noclamp, logits))
    meta["margins"] = dict(
        forward=probe.summary({"forward"}),
        prefix_prefill_decode_and_greedy=probe.summary({"prefix_decode", "greedy_manual"}),
        logits=logits_margin(logits),
    )
    n_entries = {}
    for il, ratio in enumerate(hub["compress_ratios"][:hub["num_hidden_layers"]]):
        if ratio:
            n_entries[il] = T // ratio
    meta["layers"] = [dict(il=il, compress_ratio=hub["compress_ratios"][il], layer_type=cfg.layer_types[il],
                           mlp=cfg.mlp_layer_types[il], compressed_entries_after_prompt=n_entries.get(il, 0))
                      for il in range(hub["num_hidden_layers"])]

    # ---- write ----
    files = {}
    if spec["naming"] == "official":
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(hub, f, indent=2)
        names = list(stored)
        if spec["n_shards"] == 1:
            write_safetensors(os.path.join(out_dir, "model.safetensors"), stored)
        else:
            first = {n for n in names if n == "embed.weight" or re.match(r"layers\.[01]\.", n)}
            shards = [{n: stored[n] for n in names if n in first}, {n: stored[n] for n in names if n not in first}]
            wmap, total = {}, 0
            for i, sh in enumerate(shards):
                fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
                total += write_safetensors(os.path.join(out_dir, fn), sh)
                wmap.update({n: fn for n in sh})
            with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wmap.items()))}, f, indent=2)
        meta["quantized"] = dict(
            fp8_e4m3_block128_e8m0=sorted({name_pattern(n) for n in qreport["fp8"]}),
            mxfp4_e2m1_block32_e8m0=sorted({name_pattern(n) for n in qreport["fp4"]}),
            counts={k: len(v) for k, v in qreport.items()})
        # read back through the safetensors library and compare with what HF computed with
        meta["selfcheck"]["checkpoint_readback"] = verify_official_readback(out_dir, values, torch)
    else:
        from safetensors.torch import save_file
        cfg.save_pretrained(out_dir)
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(sd, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        for k, v in hf_state.items():
            assert np.array_equal(sd[k].numpy(), v), k
        meta["quantized"] = "none (HF state_dict, float32; tid2eid int64)"
    meta["selfcheck"]["hf_from_pretrained"] = check_from_pretrained(out_dir, model, ids, logits, torch,
                                                                    spec["storage"] == "fp8")
    with open(os.path.join(out_dir, "input_ids.json"), "w") as f:
        json.dump(input_ids, f)
    np.save(os.path.join(out_dir, "logits.npy"), logits.astype(np.float32), allow_pickle=False)
    with open(os.path.join(out_dir, "greedy.json"), "w") as f:
        json.dump(greedy, f)
    with open(os.path.join(out_dir, "debug.json"), "w") as f:
        json.dump(dict(
            about="HF float32 internals of the single forward over input_ids, for localising engine mismatches: "
                  "indexer_topk[layer][pos] = sorted compressed-entry ids HF attends to (CSA layers); "
                  "router_topk[layer][pos] = sorted routed experts (bias-routed layers); "
                  "layer_out_last_position[layer] = decoder-layer output streams [hc_mult][hidden] at the last "
                  "position.", **probe.debug), f, separators=(",", ":"))
    for fn in sorted(os.listdir(out_dir)):
        if fn != "meta.json":
            files[fn] = dict(bytes=os.path.getsize(os.path.join(out_dir, fn)), sha256=sha256(os.path.join(out_dir, fn)))
    meta["files"] = files
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    log(json.dumps({k: meta[k] for k in ("seed", "selfcheck", "margins", "swiglu_clamp", "rope_tables")}, indent=1))
    return meta


def name_pattern(name):
    """layers.3.ffn.experts.7.w1.weight -> *.ffn.experts.*.w1.weight (compact lists in meta.json)."""
    return re.sub(r"experts\.\d+\.", "experts.*.", re.sub(r"^(layers|mtp)\.\d+\.", "*.", name))


def check_from_pretrained(out_dir, model, ids, logits, torch, quantized):
    """Load the written directory with HF's own loader (its conversion mapping / quantizer) and compare."""
    from transformers import DeepseekV4ForCausalLM
    res = {}
    try:
        kw = {}
        if quantized:
            from transformers import FineGrainedFP8Config
            kw["quantization_config"] = FineGrainedFP8Config(dequantize=True)
            res["loaded_with"] = "FineGrainedFP8Config(dequantize=True)"
        m2 = DeepseekV4ForCausalLM.from_pretrained(out_dir, dtype=torch.float32, device_map="cpu", **kw).eval()
        res["loaded_dtypes"] = sorted({str(v.dtype) for v in m2.state_dict().values()})
        sd1, sd2 = model.state_dict(), m2.state_dict()
        res["missing_in_loaded"] = sorted(set(sd1) - set(sd2))[:10]
        res["extra_in_loaded"] = sorted(set(sd2) - set(sd1))[:10]
        res["value_mismatch"] = sorted(k for k in set(sd1) & set(sd2) if sd1[k].shape != sd2[k].shape
                                       or not torch.equal(sd1[k], sd2[k].to(sd1[k].dtype)))[:10]
        with torch.no_grad():
            lg = m2(ids, use_cache=False).logits[0].float().numpy()
        res["logits_max_rel_diff"] = rel_diff(lg, logits)
    except Exception as exc:  # noqa: BLE001
        res["error"] = repr(exc)[:600]
    return res


def verify_official_readback(out_dir, values, torch):
    from safetensors import safe_open
    files = [f for f in os.listdir(out_dir) if f.endswith(".safetensors")]
    got = {}
    for fn in files:
        with safe_open(os.path.join(out_dir, fn), framework="pt") as f:
            for k in f.keys():
                got[k] = f.get_tensor(k)
    n_checked = 0
    for name, v in values.items():
        t = got[name]
        if t.dtype == torch.float8_e4m3fn:
            s = got[name[: -len("weight")] + "scale"]
            assert s.dtype == torch.float8_e8m0fnu, s.dtype
            sf = s.float().repeat_interleave(128, 0).repeat_interleave(128, 1)[: t.shape[0], : t.shape[1]]
            deq = t.float() * sf
        elif t.dtype == torch.int8:
            s = got[name[: -len("weight")] + "scale"]
            assert s.dtype == torch.float8_e8m0fnu, s.dtype
            deq = torch.from_numpy(mxfp4_dequant(t.numpy(), (s.view(torch.uint8)).numpy())).float()
            deq_lib = torch.from_numpy(mxfp4_dequant(t.numpy(), np.zeros_like(s.view(torch.uint8).numpy()) + 127))
            deq_lib = deq_lib.float() * s.float().repeat_interleave(32, 1)
            assert torch.equal(deq, deq_lib), name
        else:
            deq = t if t.dtype == torch.int64 else t.float()
        assert torch.equal(deq.double() if deq.dtype.is_floating_point else deq,
                           torch.from_numpy(np.asarray(v)).double() if deq.dtype.is_floating_point
                           else torch.from_numpy(np.asarray(v))), name
        n_checked += 1
    return dict(files=sorted(files), tensors=len(got), value_tensors_checked=n_checked, ok=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/data/golden")
    ap.add_argument("--only", nargs="*", help="config names (default: all)")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--no-hf", action="store_true", help="only build and write the checkpoints (numpy self-test)")
    args = ap.parse_args()
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

    names = args.only or list(CONFIGS)
    if args.no_hf:
        for name in names:
            spec = CONFIGS[name]
            hub = hub_config(spec["fields"], spec["storage"])
            stored, values, rep = make_checkpoint(spec["seed"], hub, spec["storage"])
            os.makedirs(os.path.join(args.out, name), exist_ok=True)
            n = write_safetensors(os.path.join(args.out, name, "model.safetensors"), stored)
            log(f"{name}: {len(stored)} tensors, {n} bytes, fp8 {len(rep['fp8'])} fp4 {len(rep['fp4'])} "
                f"bf16 {len(rep['bf16'])} f32 {len(rep['f32'])}")
        return 0

    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        torch.use_deterministic_algorithms(True)
    except Exception as exc:  # noqa: BLE001
        log(f"deterministic algorithms unavailable: {exc!r}")
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    failed = []
    summary = {}
    for name in names:
        spec = CONFIGS[name]
        log(f"=== {name} ({spec['naming']} naming, {spec['storage']} storage, {spec['seq_len']} tokens)")
        try:
            summary[name] = run_config(name, spec, spec["seed"], args.out, log, torch, F)
        except Exception:  # noqa: BLE001
            log(f"FAILED {name}:\n{traceback.format_exc()}")
            failed.append(name)
    log(f"done; failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
