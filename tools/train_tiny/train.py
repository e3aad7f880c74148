#!/usr/bin/env python3
"""Trains the embedded default model models/dsv4-tiny: a small DeepSeek-V4 with every feature of the
architecture (SWA / CSA ratio-4 with compressor + indexer + top-k / HCA ratio-128 layers, 4-stream mHC, MoE
with hash-routed first layer, bias-routed later layers and a shared expert, clamped SwiGLU, MTP head).

Runs on the GPU machine (torch, tokenizers). Input: the corpus from prepare_data.py (--data). Output (--out):
  ckpt_bf16/   the trained weights as a dsv4-loadable checkpoint in official tensor names, bf16/f32/i64 only
               (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json);
               export.py quantizes it into the shipped FP8/FP4 checkpoint
  eval/        held-out token ids, pass-key test cases, sample prompts (what eval_dsv4.py feeds to dsv4) and
               torch_eval.json (the same measured in PyTorch, for cross-checking)
  train_log.json  exact configuration, hyper-parameters, data/tokenizer hashes, loss curve, timings
Deterministic for a given --steps: seeded init, seeded data order and batch composition; the lr schedule,
the dense-indexer warm-up and the QAT phase are fractions of --steps. --time-limit only guards the call:
training stops itself there (or on an exception) and the checkpoint, eval/ and train_log.json are always written.

Continued training (--init-from DIR, a ckpt_bf16/ of an earlier run): loads its weights (gate biases and
tid2eid included) and its tokenizer.json instead of initialising / training them, applies the CONT overrides
of HP (fresh AdamW, short warm-up, lower peak lr, no dense-indexer phase, QAT in the last 15 %) and, with
--passkey-curriculum, replaces the fixed buckets by CURRICULUM: pass-key phases whose needle-to-question
distance grows from inside the 128-token window (near=100) over 256-2K to 4K-8K (compressed attention only),
with the text buckets kept in every phase. The evaluation inputs (held-out ids, pass-key cases, prompts) are
the same as the first run's (same seed, same tokenizer).

Usage: python3 tools/train_tiny/train.py --data .traindata --out OUT --steps 1100 --time-limit 340
       python3 tools/train_tiny/train.py --data .traindata --out OUT --steps 1000 --time-limit 330 \
           --init-from .traindata/dsv4-tiny-bf16 --passkey-curriculum        (the continued pass-key run)
       python3 tools/train_tiny/train.py --data .traindata --out OUT --steps 1100 --time-limit 380 \
           --init-from .traindata/dsv4-tiny-bf16 --passkey-v2           (the v2 pass-key run: PK2, CURRICULUM2)
       python3 tools/train_tiny/train.py --data .traindata --out OUT --steps 1000 --time-limit 330 \
           --init-from DIR --passkey-v3     (stage 2 of the shipped model: PK2 + PK3, retrieval supervision)
       python3 tools/train_tiny/train.py --cpu-test ...   (tiny shapes, byte tokenizer: a CPU smoke test;
           --passkey-v2 with --cpu-test needs --init-from a ckpt_bf16 of a --cpu-test run)
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
from model import DeepseekV4Tiny, init_weights  # noqa: E402

# HF-hub schema config.json of the shipped model (spec §1.1). vocab_size is the tokenizer's.
CONFIG = {
    "architectures": ["DeepseekV4ForCausalLM"],
    "model_type": "deepseek_v4",
    "vocab_size": 6144,
    "hidden_size": 256,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 128,
    "qk_rope_head_dim": 64,
    "q_lora_rank": 128,
    "o_lora_rank": 128,
    "o_groups": 2,
    "sliding_window": 128,
    "compress_ratios": [0, 4, 128, 4, 128, 4, 0],
    "compress_rope_theta": 160000.0,
    "rope_theta": 10000.0,
    "rope_scaling": {"type": "yarn", "factor": 16, "original_max_position_embeddings": 65536, "beta_fast": 32,
                     "beta_slow": 1},
    "max_position_embeddings": 65536,
    "index_n_heads": 4,
    "index_head_dim": 128,
    "index_topk": 64,
    "n_routed_experts": 8,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 256,
    "routed_scaling_factor": 1.5,
    "scoring_func": "sqrtsoftplus",
    "topk_method": "noaux_tc",
    "norm_topk_prob": True,
    "num_hash_layers": 1,
    "swiglu_limit": 10.0,
    "hc_mult": 4,
    "hc_sinkhorn_iters": 20,
    "hc_eps": 1e-6,
    "rms_norm_eps": 1e-6,
    "num_nextn_predict_layers": 1,
    "hidden_act": "silu",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "initializer_range": 0.02,
    "use_cache": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.57.1",
}
QUANT = {"quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue8m0",
                                 "activation_scheme": "dynamic", "weight_block_size": [128, 128]},
         "expert_dtype": "fp4"}
GENERATION = {"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 1, "do_sample": True,
              "temperature": 1.0, "top_p": 1.0, "transformers_version": "4.57.1"}

HP = {
    "seed": 20260707,
    "lr": 3e-3, "min_lr_frac": 0.1, "warmup_steps": 100, "weight_decay": 0.1, "betas": [0.9, 0.95],
    "grad_clip": 1.0,
    # (sequence length, batch, kind, probability): every step is 32768 tokens.
    "buckets": [[1024, 32, "text", 0.38], [2048, 16, "text", 0.12], [2048, 16, "passkey", 0.14],
                [4096, 8, "passkey", 0.18], [8192, 4, "passkey", 0.13], [16384, 2, "passkey", 0.05]],
    "passkey_prob": 0.75,        # in passkey buckets, the share of rows that are pass-key tasks
    "answer_weight": 5.0,        # loss weight of the pass-key answer tokens
    "mtp_weight": 0.3,           # MTP loss weight (DeepSeek-V3: 0.3)
    "indexer_weight": 1.0,       # indexer KL loss weight (its own objective; no gradient into the model)
    "dense_frac": 0.12,          # first steps: CSA attends to all visible entries while the indexer learns
    "qat_frac": 0.15,            # last steps: FP8/FP4 weight fake-quant (straight-through)
    "bias_gamma": 1e-3,          # aux-loss-free balancing: bias += gamma * sign(mean load - load)
    "chat_frac": 0.15,           # documents rendered as a chat turn
    "heldout_seq": 1024, "heldout_n": 16,
    "passkey_test": {"lengths": [1024, 2048, 4096, 8192, 16384], "depths": [0.1, 0.3, 0.5, 0.7, 0.9],
                     "per_cell": 4},
}
# Continued training (--init-from): overrides of HP. The batch rng is re-seeded with CONT["seed"] after the
# evaluation inputs are built (those stay the first run's).
CONT = {"seed": 20260708, "lr": 1e-3, "min_lr_frac": 0.1, "warmup_steps": 30, "dense_frac": 0.0, "qat_frac": 0.15,
        "passkey_prob": 0.9, "answer_weight": 5.0}
# --passkey-curriculum: (start as a fraction of --steps, buckets). A bucket is [T, B, kind, prob, near]; near > 0
# puts the needle at most `near` filler tokens before the question (inside the 128-token sliding window),
# near = 0 anywhere (uniform depth). Every step is 32768 tokens; text stays 35-40 % of the steps.
CURRICULUM = [
    [0.0, [[1024, 32, "text", 0.40, 0], [256, 128, "passkey", 0.45, 100], [512, 64, "passkey", 0.15, 100]]],
    [0.3, [[1024, 32, "text", 0.35, 0], [256, 128, "passkey", 0.10, 100], [512, 64, "passkey", 0.10, 0],
           [1024, 32, "passkey", 0.25, 0], [2048, 16, "passkey", 0.20, 0]]],
    [0.6, [[1024, 32, "text", 0.30, 0], [2048, 16, "text", 0.05, 0], [256, 128, "passkey", 0.05, 100],
           [1024, 32, "passkey", 0.15, 0], [2048, 16, "passkey", 0.15, 0], [4096, 8, "passkey", 0.18, 0],
           [8192, 4, "passkey", 0.12, 0]]],
]
# --passkey-v2 (continued training from --init-from; CONT, then these overrides). What changes against the rejected
# continued run, and why (models/dsv4-tiny/README.md, Limitations):
# * key_kind "num1tok": a key 10-99 whose digits are one vocabulary token (answer " " + that token) instead of
#   10000-99999 (2-4 digit tokens whose copy needs an induction circuit); filler without numerals
#   (D.strip_numerals: the KJV verse numbers made digits the commonest filler token), so the key is the only
#   number in its context: retrieval is a one-hop content lookup, also through a compressed entry.
# * filler_weight 0: the filler of a pass-key row has no LM loss (only needle, question and answer tokens do),
#   and text batches are distilled (KL) from the frozen --init-from model instead of trained on the corpus again:
#   more passes over the 2.3M-token corpus only memorise it (held-out perplexity doubled in the rejected run).
#   MTP: the same (weighted CE on pass-key rows, KL to the initial model's MTP on text batches).
# * sep_clip: the indexer's KL gradient (disjoint from the model's) is clipped on its own. At the shipped
#   checkpoint its norm is ~430 against ~4 for the whole model, so the shared clip at 1.0 scaled the model's
#   gradient by ~1/100-1/1000, differently every step (gnorm 180-1000 in both earlier logs).
# * idx_answer_weight: the indexer KL of the answer query rows is added again as its own mean (otherwise 1 row
#   of T); dense_frac 0.4: the CSA layers first attend to all entries (the main attention learns to find the
#   needle in compressed entries, the indexer fits it), then top-k as in inference.
PK2 = {"seed": 20260709, "lr": 1e-3, "min_lr_frac": 0.1, "warmup_steps": 30, "dense_frac": 0.4, "qat_frac": 0.15,
       "passkey_prob": 1.0, "answer_weight": 5.0, "key_kind": "num1tok", "strip_numerals": True,
       "filler_weight": 0.0, "distill": True, "sep_clip": True, "idx_answer_weight": 1.0}
# --passkey-v3 (PK2, then these overrides; the v2 run was rejected: its answer loss stayed at 1.1-1.4 nats beyond the
# window even while CSA was dense, i.e. the main attention never learned to read the needle's compressed entry; the
# question repeats the needle's words inside the window, so "pass key" content matches the window first).
# * attn_sup_weight: on the answer query rows, -log of the best head's attention mass on the ratio-4 entries that
#   pool the needle's key tokens, per CSA layer (a retrieval-head supervision; zero gradient where top-k dropped
#   them), added to the model loss.
# * idx_sup_weight: the indexer's own CE toward those entries on the same rows (its softmax mass on them), added to
#   its KL objective (separately clipped as in v2).
# * needle_weight 0: no LM loss on the needle and the question (v2 trained them: a first v3 run with them learned
#   retrieval, 100/100, but then wrote "The pass key is NN. Remember it. …" after any short prompt); only the answer
#   tokens (and the supervision above) are trained on pass-key rows.
PK3 = {"seed": 20260710, "attn_sup_weight": 1.0, "idx_sup_weight": 1.0, "needle_weight": 0.0}
# Curriculum of --passkey-v2, [T, B, kind, prob, near] as in CURRICULUM (near 0: uniform depth). 25 % of the
# steps are (distilled) text. Phase 0: 256/512 (needle inside or just outside the window), phase 1 up to 4K,
# phase 2 up to 16K.
CURRICULUM2 = [
    [0.0, [[1024, 32, "text", 0.25, 0], [256, 128, "passkey", 0.35, 0], [512, 64, "passkey", 0.40, 0]]],
    [0.2, [[1024, 32, "text", 0.25, 0], [512, 64, "passkey", 0.15, 0], [1024, 32, "passkey", 0.25, 0],
           [2048, 16, "passkey", 0.20, 0], [4096, 8, "passkey", 0.15, 0]]],
    [0.5, [[1024, 32, "text", 0.25, 0], [512, 64, "passkey", 0.05, 0], [1024, 32, "passkey", 0.15, 0],
           [2048, 16, "passkey", 0.15, 0], [4096, 8, "passkey", 0.20, 0], [8192, 4, "passkey", 0.15, 0],
           [16384, 2, "passkey", 0.05, 0]]],
]
PROMPTS = ["In the beginning God created", "The meaning of life is", "A hacker is",
           "Computers are", "The Lord is my shepherd;", "Love is"]
CHAT_PROMPTS = ["Tell me a fortune.", "What does \"kludge\" mean in hacker jargon?"]


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


class ByteTok:
    """CPU-test stand-in for the BPE: special tokens, then bytes at 16 + b."""

    class Enc:
        def __init__(self, ids):
            self.ids = ids

    def encode(self, s, add_special_tokens=False):
        ids, i = [], 0
        while i < len(s):
            for k, t in enumerate(D.SPECIAL_TOKENS):
                if s.startswith(t, i):
                    ids.append(k)
                    i += len(t)
                    break
            else:
                ids.extend(16 + b for b in s[i].encode("utf-8"))
                i += 1
        return ByteTok.Enc(ids)

    def encode_batch(self, texts, add_special_tokens=False):
        return [self.encode(t) for t in texts]


def load_corpus(path):
    rows = [json.loads(l) for l in open(os.path.join(path, "corpus.jsonl"), encoding="utf-8")]
    return [r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] == "heldout"]


def plain_stream(tok, rows, strip=False):
    ids = D.encode_all(tok, [(D.strip_numerals(r["text"]) if strip else r["text"]) + "\n\n" for r in rows])
    return np.concatenate(ids).astype(np.int64)


def lr_at(step, steps):
    if step < HP["warmup_steps"]:
        return HP["lr"] * (step + 1) / HP["warmup_steps"]
    p = (step - HP["warmup_steps"]) / max(1, steps - HP["warmup_steps"])
    return HP["lr"] * (HP["min_lr_frac"] + (1 - HP["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


def make_batch(rng, bucket, stream, filler, pk, bscale):
    """-> toks [B, T], loss weights w [B, T], answer query rows qm [B, T], needle key-token positions kp [B, T]."""
    T, B, kind = bucket[:3]
    near = bucket[4] if len(bucket) > 4 else 0
    B = max(1, int(B * bscale))
    toks = np.empty((B, T), dtype=np.int64)
    w = np.ones((B, T), dtype=np.float32)
    qm = np.zeros((B, T), dtype=bool)  # answer query rows (positions whose next token is an answer token)
    kp = np.zeros((B, T), dtype=bool)  # positions of the key's tokens inside the needle
    for b in range(B):
        if kind == "passkey" and rng.random() < HP["passkey_prob"]:
            key = pk.new_key(rng)
            depth = float(rng.random())
            if near:  # needle within `near` filler tokens of the question
                n_fill = pk.sample(filler, T, 0.0, key)[3]
                depth = 1.0 - depth * min(near, n_fill) / n_fill
            seq, apos, ans = pk.build(filler, T, depth, key, rng)
            toks[b] = seq
            ns, nl = pk.last_needle
            kids = set(pk.ids(str(key)))
            kp[b, [i for i in range(ns, ns + nl) if seq[i] in kids]] = True
            if "filler_weight" in HP:  # v2: LM loss only on needle, question and answer
                ns, nl = pk.last_needle
                w[b] = HP["filler_weight"]
                nw = HP.get("needle_weight", 1.0)  # v3: 0, the answer alone (no needle text in free generation)
                w[b, ns:ns + nl] = nw
                kid = pk.ids(D.ANSWER.format(key=key))[-1]
                occ = [i for i in range(ns, ns + nl) if seq[i] == kid]
                w[b, occ[1:]] = HP["answer_weight"] * nw  # the key's repetition in the needle: an in-window copy
                w[b, apos - len(pk.ids(D.QUESTION)):apos] = nw
            w[b, apos:apos + len(ans)] = HP["answer_weight"]
            qm[b, apos - 1:apos - 1 + len(ans)] = True
        else:
            s = int(rng.integers(0, len(stream) - T))
            toks[b] = stream[s:s + T]
    return toks, w, qm, kp


def moe_modules(model):
    return [m for m in model.modules() if m.__class__.__name__ == "MoE"]


def kl_rows(teacher_logits, logits):
    """Mean over rows of KL(softmax(teacher) || softmax(student)), f32."""
    lp_t = torch.log_softmax(teacher_logits.float(), -1)
    return (lp_t.exp() * (lp_t - torch.log_softmax(logits.float(), -1))).sum(-1).mean()


def forward_loss(model, toks, w, dense, qm=None, teacher=None, kp=None):
    """-> (main, mtp, indexer) losses. v2 (qm given): indexer KL of the answer rows added (idx_answer_weight);
    with a teacher (a text batch under distill), main and MTP are the KL to the frozen initial model.
    v3 (kp given): the CSA attention supervision of the answer rows is added to main (attn_sup_weight) and the
    indexer's (idx_sup_weight) to the indexer loss; forward_loss.attn_sup keeps the former for the log."""
    kw = {}
    if qm is not None and bool(qm.any()):
        kw = {"idx_rows": qm, "idx_rows_w": HP.get("idx_answer_weight", 0.0)}
        if kp is not None and HP.get("attn_sup_weight", 0.0) > 0:
            kw["sup"] = (qm, kp, HP["idx_sup_weight"])
    logits, mtp_logits, aux = model(toks, dense_csa=dense, **kw)
    sups = [m.last_sup for m in model.modules() if getattr(m, "last_sup", None) is not None]
    forward_loss.attn_sup = torch.stack(sups).mean() if sups else None
    V = logits.shape[-1]
    forward_loss.answer_ce = None
    if teacher is not None:
        with torch.no_grad():
            tl, tml, _ = teacher(toks, dense_csa=False)
        return kl_rows(tl, logits), kl_rows(tml[:, :-1], mtp_logits[:, :-1]), aux
    ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, V), toks[:, 1:].reshape(-1), reduction="none")
    wt = w[:, 1:].reshape(-1)
    main = (ce * wt).sum() / wt.sum()
    if qm is not None:  # v2: MTP on the same tokens as the main loss (none of the filler)
        cm = F.cross_entropy(mtp_logits[:, :-1].float().reshape(-1, V), toks[:, 2:].reshape(-1), reduction="none")
        wm = w[:, 2:].reshape(-1).clamp(max=1.0)
        mtp = (cm * wm).sum() / wm.sum().clamp(min=1e-6)
    else:
        mtp = F.cross_entropy(mtp_logits[:, :-1].float().reshape(-1, V), toks[:, 2:].reshape(-1))
    am = wt > 1 if qm is None else qm[:, :-1].reshape(-1)  # pass-key answer tokens (for the log only)
    forward_loss.answer_ce = ce.detach()[am].mean() if bool(am.any()) else None
    if forward_loss.attn_sup is not None:
        main = main + HP["attn_sup_weight"] * forward_loss.attn_sup
    return main, mtp, aux


def load_init(model, ckpt):
    """Loads a train.py ckpt_bf16/ (official names) into model (weights, gate.bias and tid2eid buffers)."""
    from check_equivalence import read_safetensors
    st = read_safetensors(os.path.join(ckpt, "model.safetensors"))
    sd = model.state_dict()
    new = {}
    for k in sd:
        if ".experts_w" in k:
            prefix, wk = k.split(".experts_")
            new[k] = torch.from_numpy(np.stack([st[f"{prefix}.experts.{e}.{wk}.weight"]
                                                for e in range(sd[k].shape[0])]).copy())
        else:
            new[k] = torch.from_numpy(np.array(st[k])).to(sd[k].dtype)
    assert len(st) == len(sd) - sum(1 for k in sd if ".experts_w" in k) + sum(
        sd[k].shape[0] for k in sd if ".experts_w" in k), "checkpoint has other tensors"
    model.load_state_dict(new)


@torch.no_grad()
def padded_logits(model, toks, with_mtp=False):
    """Logits of [B, T] for any T (pads the end to a multiple of the window; causal, so exact)."""
    Wn = model.cfg["sliding_window"]
    B, T = toks.shape
    pad = -T % Wn
    tp = torch.cat((toks, toks.new_full((B, pad), 2)), 1)
    lg, ml, _ = model(tp, with_mtp=with_mtp)
    return lg[:, :T], (ml[:, :T - 1] if ml is not None else None)


@torch.no_grad()
def greedy(model, ids, n, dev):
    ids = list(ids)
    for _ in range(n):
        lg, _ = padded_logits(model, torch.tensor([ids], device=dev))
        nxt = int(lg[0, -1].argmax())
        ids.append(nxt)
        if nxt == 1:
            break
    return ids


@torch.no_grad()
def torch_eval(model, heldout, cases, prompts, dev, autocast):
    res = {}
    for qat in (False, True):
        model.set_qat(qat)
        nll, n, acc_txt, agree, nm = 0.0, 0, 0, 0, 0
        for seq in heldout:
            t = torch.tensor([seq], device=dev)
            with autocast():
                lg, ml = padded_logits(model, t, with_mtp=True)
            lg, ml = lg.float(), ml.float()
            nll += F.cross_entropy(lg[0, :-1], t[0, 1:], reduction="sum").item()
            n += t.shape[1] - 1
            main_next = lg[0, 1:-1].argmax(-1)          # main prediction of t+2 given tokens <= t+1
            draft = ml[0, :-1].argmax(-1)                # MTP at t (hidden t, token t+1) predicting t+2
            agree += (draft == main_next).sum().item()
            acc_txt += (draft == t[0, 2:]).sum().item()
            nm += draft.numel()
        res["fp8_fp4_fakequant" if qat else "bf16"] = {
            "heldout_tokens": n, "heldout_nll": nll / n, "heldout_ppl": math.exp(nll / n),
            "mtp_acceptance_vs_main_greedy": agree / nm, "mtp_top1_vs_text": acc_txt / nm}
    model.set_qat(False)
    pk = {}
    for c in cases:
        t = torch.tensor([c["prompt"] + c["answer"]], device=dev)
        with autocast():
            lg, _ = padded_logits(model, t)
        L = len(c["prompt"])
        pred = lg[0, L - 1:L - 1 + len(c["answer"])].argmax(-1).tolist()
        key = f'{c["length"]}'
        d = pk.setdefault(key, {})
        cell = d.setdefault(str(c["depth"]), [0, 0])
        cell[0] += int(pred == c["answer"])
        cell[1] += 1
    res["passkey"] = pk
    samples = []
    for p in prompts:
        with autocast():
            out = greedy(model, p["ids"], HP.get("sample_tokens", 40), dev)
        samples.append({"prompt": p["text"], "ids": out[len(p["ids"]):]})
    res["samples_ids"] = samples
    return res


def official_state(model):
    """name -> f32/i64 numpy array, official names (routed experts split per expert)."""
    out = {}
    for name, t in model.state_dict().items():
        a = t.detach().float().cpu().numpy() if t.dtype != torch.int64 else t.cpu().numpy()
        if ".experts_w" in name:
            prefix, wk = name.split(".experts_")
            for e in range(a.shape[0]):
                out[f"{prefix}.experts.{e}.{wk}.weight"] = a[e]
        else:
            out[name] = a
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=".traindata")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1100)
    ap.add_argument("--time-limit", type=float, default=340.0, help="seconds of training before it stops")
    ap.add_argument("--cpu-test", action="store_true")
    ap.add_argument("--init-from", help="continue from this ckpt_bf16/ (weights + tokenizer; applies CONT)")
    ap.add_argument("--passkey-curriculum", action="store_true", help="train on CURRICULUM instead of HP buckets")
    ap.add_argument("--bench", action="store_true", help="first time each bucket for a few steps (smoke runs)")
    ap.add_argument("--passkey-v3", action="store_true",
                    help="--passkey-v2 plus PK3: CSA attention and indexer supervision toward the needle's entries")
    ap.add_argument("--passkey-v2", action="store_true",
                    help="with --init-from: the PK2 recipe (1-token numeric key, numeral-free filler, CURRICULUM2, "
                         "distilled text, separate indexer clipping, answer-row indexer KL)")
    args = ap.parse_args()
    args.passkey_v2 = args.passkey_v2 or args.passkey_v3
    t_start = time.time()
    torch.manual_seed(HP["seed"])
    dev = "cuda" if torch.cuda.is_available() and not args.cpu_test else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    cfg = dict(CONFIG)
    bscale = 1.0
    if args.cpu_test:
        import model as M
        M.ACT = torch.float32
        torch.set_num_threads(2)
        cfg.update(hidden_size=64, vocab_size=512, moe_intermediate_size=64, q_lora_rank=64, o_lora_rank=64,
                   index_topk=4, sliding_window=128)
        HP["buckets"] = [[256, 2, "text", 0.5], [512, 2, "passkey", 0.5]]
        HP["heldout_n"], HP["heldout_seq"] = 2, 256
        HP["sample_tokens"] = 3
        HP["passkey_test"] = {"lengths": [512], "depths": [0.5], "per_cell": 1}
        bscale = 1.0
        CURRICULUM[:] = [[0.0, [[256, 2, "text", 0.5, 0], [256, 2, "passkey", 0.5, 100]]],
                         [0.5, [[256, 2, "text", 0.5, 0], [512, 2, "passkey", 0.5, 0]]]]
        CURRICULUM2[:] = [[0.0, [[256, 2, "text", 0.3, 0], [256, 2, "passkey", 0.7, 0]]],
                          [0.5, [[256, 2, "text", 0.3, 0], [512, 2, "passkey", 0.7, 0]]]]
    if args.init_from:
        icfg = json.load(open(os.path.join(args.init_from, "config.json")))
        assert {k: v for k, v in icfg.items() if k in cfg} == cfg, "--init-from: config differs"
        HP.update(CONT)
    if args.passkey_v2:
        assert args.init_from, "--passkey-v2 continues a trained model: give --init-from"
        HP.update(PK2)
        if args.passkey_v3:
            HP.update(PK3)
        args.passkey_curriculum = True
        CURRICULUM[:] = CURRICULUM2
    if args.passkey_curriculum:
        HP["curriculum"] = CURRICULUM
        HP["buckets"] = CURRICULUM[0][1]
    os.makedirs(args.out, exist_ok=True)
    log = {"config": cfg, "hp": HP, "argv": sys.argv, "torch": torch.__version__, "device": dev, "curve": []}
    manifest = json.load(open(os.path.join(args.data, "manifest.json")))
    log["data_manifest"] = manifest
    log["corpus_sha256_check"] = sha256_file(os.path.join(args.data, "corpus.jsonl"))
    assert log["corpus_sha256_check"] == manifest["corpus_sha256"]
    train_rows, held_rows = load_corpus(args.data)
    rng = np.random.default_rng(HP["seed"])

    # ---- tokenizer
    t0 = time.time()
    ck = os.path.join(args.out, "ckpt_bf16")
    os.makedirs(ck, exist_ok=True)
    if args.cpu_test:
        tok = ByteTok()
    elif args.init_from:  # the earlier run's tokenizer, unchanged
        import shutil
        import tokenizers
        log["tokenizers"] = tokenizers.__version__
        src = os.path.join(args.init_from, "tokenizer.json")
        tok = tokenizers.Tokenizer.from_file(src)
        assert tok.get_vocab_size() == cfg["vocab_size"], tok.get_vocab_size()
        shutil.copyfile(src, os.path.join(ck, "tokenizer.json"))
        log["tokenizer_sha256"] = sha256_file(src)
    else:
        import tokenizers
        log["tokenizers"] = tokenizers.__version__
        tok = D.train_tokenizer([r["text"] for r in train_rows], cfg["vocab_size"])
        assert tok.get_vocab_size() == cfg["vocab_size"], tok.get_vocab_size()
        tok.save(os.path.join(ck, "tokenizer.json"))
        tj = json.load(open(os.path.join(ck, "tokenizer.json")))
        pats = [p["pattern"]["Regex"] for p in tj["pre_tokenizer"]["pretokenizers"][:3]]
        assert pats == [D.DIGITS_RE, D.CJK_RE, D.MAIN_RE], pats
        log["tokenizer_sha256"] = sha256_file(os.path.join(ck, "tokenizer.json"))
    with open(os.path.join(ck, "tokenizer_config.json"), "w") as f:
        json.dump(D.tokenizer_config(), f, indent=2, ensure_ascii=False)
    log["t_tokenizer"] = time.time() - t0

    # ---- data
    t0 = time.time()
    order = rng.permutation(len(train_rows))
    docs = D.format_docs([train_rows[i] for i in order], HP["chat_frac"], rng)
    stream = np.concatenate(D.encode_all(tok, docs)).astype(np.int64)
    filler = plain_stream(tok, train_rows, HP.get("strip_numerals", False))
    held_filler = plain_stream(tok, held_rows, HP.get("strip_numerals", False))
    held_docs = np.concatenate(D.encode_all(tok, [f"{D.BOS}{r['text']}{D.EOS}" for r in held_rows]))
    n, L = HP["heldout_n"], HP["heldout_seq"]
    assert len(held_docs) >= n * L, len(held_docs)
    heldout = [held_docs[i * L:(i + 1) * L].tolist() for i in range(n)]
    pk = D.PassKey(tok, HP.get("key_kind", "5digit"))
    if pk.kind != "5digit":
        log["passkey_keys"] = pk.keys
    prng = np.random.default_rng(HP["seed"] + 1)
    cases = []
    for Lc in HP["passkey_test"]["lengths"]:
        for dep in HP["passkey_test"]["depths"]:
            for _ in range(HP["passkey_test"]["per_cell"]):
                key = pk.new_key(prng)
                seq, apos, ans = pk.build(held_filler, Lc, dep, key, prng)
                digits = pk.ids(D.ANSWER.format(key=key))
                cases.append({"length": Lc, "depth": dep, "key": key, "prompt": seq[:apos].tolist(),
                              "answer": digits})
    prompts = [{"text": p, "ids": [0] + pk.ids(p)} for p in PROMPTS]
    prompts += [{"text": D.chat(p, "")[:-len(D.EOS)], "chat": True,
                 "ids": pk.ids(D.chat(p, "")[:-len(D.EOS)])} for p in CHAT_PROMPTS]
    ev = os.path.join(args.out, "eval")
    os.makedirs(ev, exist_ok=True)
    D.write_json(os.path.join(ev, "heldout_ids.json"), heldout)
    D.write_json(os.path.join(ev, "passkey_cases.json"), cases)
    D.write_json(os.path.join(ev, "prompts.json"), prompts)
    log["data"] = {"train_docs": len(train_rows), "heldout_docs": len(held_rows), "stream_tokens": int(len(stream)),
                   "filler_tokens": int(len(filler)), "heldout_filler_tokens": int(len(held_filler)),
                   "stream_sha256": hashlib.sha256(stream.tobytes()).hexdigest(), "t_data": time.time() - t0}
    print(json.dumps(log["data"]), flush=True)

    # ---- model
    model = DeepseekV4Tiny(cfg)
    init_weights(model, HP["seed"])
    if args.init_from:
        load_init(model, args.init_from)
        log["init_from"] = {"dir": args.init_from,
                            "model_sha256": sha256_file(os.path.join(args.init_from, "model.safetensors"))}
        rng = np.random.default_rng(HP["seed"])  # CONT seed: fresh batch order for the continued run
        torch.manual_seed(HP["seed"])
    teacher = None
    if HP.get("distill"):  # the frozen initial model: text batches are distilled from it
        import copy
        teacher = copy.deepcopy(model).to(dev).eval()
        teacher.requires_grad_(False)
    model.to(dev)
    nparam = sum(p.numel() for p in model.parameters())
    log["n_params"] = nparam
    decay = [p for n_, p in model.named_parameters() if p.dim() >= 2 and "hc_" not in n_]
    nodecay = [p for n_, p in model.named_parameters() if not (p.dim() >= 2 and "hc_" not in n_)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                             {"params": nodecay, "weight_decay": 0.0}], lr=HP["lr"], betas=tuple(HP["betas"]),
                            **({"fused": True} if dev == "cuda" else {}))

    def autocast():
        return torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=(dev == "cuda"))

    moes = moe_modules(model)
    idx_params = [p for n_, p in model.named_parameters() if ".indexer." in n_]
    main_params = [p for n_, p in model.named_parameters() if ".indexer." not in n_]
    idx_attn = [m for m in model.modules() if hasattr(m, "indexer")]
    probs = np.array([b[3] for b in HP["buckets"]])
    probs = probs / probs.sum()
    steps = args.steps
    if args.bench:
        for bi, bk in enumerate(HP["buckets"]):
            ts = []
            for i in range(4):
                toks, w, qm, kp = (torch.from_numpy(a).to(dev) for a in make_batch(rng, bk, stream, filler, pk, bscale))
                if dev == "cuda":
                    torch.cuda.synchronize()
                t1 = time.time()
                with autocast():
                    lm, lt, la = forward_loss(model, toks, w, i % 2 == 0, qm if args.passkey_v2 else None,
                                              teacher if bk[2] == "text" else None, kp if args.passkey_v3 else None)
                (lm + lt + la).backward()
                opt.zero_grad(set_to_none=True)
                if dev == "cuda":
                    torch.cuda.synchronize()
                ts.append(time.time() - t1)
            mem = torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else 0
            print(f"bench bucket {bk}: {['%.3f' % t for t in ts]} s/step, peak {mem:.1f} GiB", flush=True)

    t_train = time.time()
    step = 0
    phase = -1
    try:
      for step in range(steps):  # noqa: E111 (inside try: so that an exception still exports)
        if time.time() - t_train > args.time_limit:
            print(f"time limit reached at step {step}", flush=True)
            break
        if args.passkey_curriculum:
            ph = max(i for i, (f, _) in enumerate(CURRICULUM) if step >= f * steps)
            if ph != phase:
                phase = ph
                HP["buckets"] = CURRICULUM[ph][1]
                probs = np.array([b[3] for b in HP["buckets"]])
                probs = probs / probs.sum()
                print(f"curriculum phase {ph} at step {step}: {HP['buckets']}", flush=True)
        lr = lr_at(step, steps)
        for g in opt.param_groups:
            g["lr"] = lr
        dense = step < HP["dense_frac"] * steps
        qat = step >= (1 - HP["qat_frac"]) * steps
        model.set_qat(qat)
        bi = int(rng.choice(len(HP["buckets"]), p=probs))
        toks, w, qm, kp = (torch.from_numpy(a).to(dev)
                           for a in make_batch(rng, HP["buckets"][bi], stream, filler, pk, bscale))
        is_text = HP["buckets"][bi][2] == "text"
        with autocast():
            lm, lt, la = forward_loss(model, toks, w, dense, qm if args.passkey_v2 else None,
                                      teacher if is_text else None, kp if args.passkey_v3 else None)
        loss = lm + HP["mtp_weight"] * lt + HP["indexer_weight"] * la
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if HP.get("sep_clip"):  # the indexer's own objective, its own clip
            gn_idx = torch.nn.utils.clip_grad_norm_(idx_params, HP["grad_clip"])
            gn = torch.nn.utils.clip_grad_norm_(main_params, HP["grad_clip"])
        else:
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), HP["grad_clip"])
        opt.step()
        with torch.no_grad():
            for m in moes:
                if not m.gate.hashed:
                    ld = m.load.float()
                    m.gate.bias += HP["bias_gamma"] * torch.sign(ld.mean() - ld)
        if step % 10 == 0 or step == steps - 1:
            rec = {"step": step, "bucket": bi, "lr": lr, "main": lm.item(), "mtp": lt.item(), "idx_kl": la.item(),
                   "gnorm": gn.item(), "t": time.time() - t_train, "dense": dense, "qat": qat}
            if args.passkey_curriculum:
                rec["phase"] = phase
                rec["T"] = HP["buckets"][bi][0]
                if forward_loss.answer_ce is not None:
                    rec["answer_ce"] = forward_loss.answer_ce.item()
                if getattr(forward_loss, "attn_sup", None) is not None:
                    rec["attn_sup"] = forward_loss.attn_sup.item()
            if args.passkey_v2:
                rec["text_distill"] = is_text
                if HP.get("sep_clip"):
                    rec["gnorm_indexer"] = gn_idx.item()
                ka = [m.last_kl_ans.item() for m in idx_attn
                      if getattr(m, "last_kl_ans", None) is not None]
                if ka and not is_text:
                    rec["idx_kl_answer"] = sum(ka) / len(ka)
                for m in idx_attn:
                    m.last_kl_ans = None
            log["curve"].append(rec)
            if step % 50 == 0:
                print(json.dumps(rec), flush=True)
    except Exception as e:  # stop training, still export what there is
        import traceback
        traceback.print_exc()
        log["train_error"] = repr(e)
        opt.zero_grad(set_to_none=True)
    log["steps_done"] = step + 1 if step == steps - 1 else step
    log["t_train"] = time.time() - t_train
    model.set_qat(False)
    model.eval()

    # ---- checkpoint (bf16 master weights, official names)
    from quant import bf16_bytes, write_safetensors
    st = official_state(model)
    tensors = {}
    f32_names = ("hc_attn_", "hc_ffn_", "hc_head_", "attn_sink", ".ape", "gate.bias")
    for name, a in st.items():
        if a.dtype == np.int64:
            tensors[name] = ("I64", a.shape, a.astype("<i8").tobytes())
        elif any(s in name for s in f32_names):
            tensors[name] = ("F32", a.shape, a.astype("<f4").tobytes())
        else:
            tensors[name] = ("BF16", a.shape, bf16_bytes(a)[0])
    write_safetensors(os.path.join(ck, "model.safetensors"), tensors)
    with open(os.path.join(ck, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(ck, "generation_config.json"), "w") as f:
        json.dump(GENERATION, f, indent=2)
    # The PyTorch evaluation runs on the bf16-rounded weights, i.e. exactly the checkpoint's values.
    with torch.no_grad():
        for n_, p in model.named_parameters():
            if not any(s in n_ for s in f32_names):
                p.copy_(p.to(torch.bfloat16).float())
    t0 = time.time()
    res = torch_eval(model, heldout, cases, prompts, dev, autocast)
    # Free generation must not drift into the synthetic task: greedy samples that contain " pass key".
    pkp = pk.ids(" pass key")
    leak = [s_ for s_ in res["samples_ids"]
            if any(s_["ids"][i:i + len(pkp)] == pkp for i in range(len(s_["ids"])))]
    res["samples_with_pass_key"] = len(leak)
    print(f"greedy samples containing ' pass key': {len(leak)}/{len(res['samples_ids'])}", flush=True)
    if teacher is not None:  # held-out perplexity of the initial model, same numerics, for the comparison
        nll, n = 0.0, 0
        for seq in heldout:
            t = torch.tensor([seq], device=dev)
            with autocast():
                lg, _ = padded_logits(teacher, t)
            nll += F.cross_entropy(lg[0, :-1].float(), t[0, 1:], reduction="sum").item()
            n += t.shape[1] - 1
        res["init_bf16_heldout_ppl"] = math.exp(nll / n)
        res["heldout_ppl_ratio_vs_init"] = res["bf16"]["heldout_ppl"] / res["init_bf16_heldout_ppl"]
    res["t_eval"] = time.time() - t0
    D.write_json(os.path.join(ev, "torch_eval.json"), res)
    log["torch_eval"] = {k: v for k, v in res.items() if k != "samples_ids"}
    log["t_total"] = time.time() - t_start
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(json.dumps(log["torch_eval"]), flush=True)
    depths = [str(d) for d in HP["passkey_test"]["depths"]]
    print("\nPass-key accuracy (PyTorch, top-k %d), length x depth:\n" % cfg["index_topk"])
    print("| length | " + " | ".join(f"depth {d}" for d in depths) + " | all |\n" + "|---" * (len(depths) + 2) + "|")
    for Lc, row in res["passkey"].items():
        cells = [row.get(d, [0, 0]) for d in depths]
        print(f"| {Lc} | " + " | ".join(f"{a}/{b}" for a, b in cells)
              + f" | {sum(c[0] for c in cells)}/{sum(c[1] for c in cells)} |")
    if "init_bf16_heldout_ppl" in res:
        print(f"\nheld-out ppl (bf16): {res['bf16']['heldout_ppl']:.2f}, initial model {res['init_bf16_heldout_ppl']:.2f}"
              f" (ratio {res['heldout_ppl_ratio_vs_init']:.3f})", flush=True)
    print(f"done in {log['t_total']:.0f} s, {log['steps_done']} steps, {nparam} params", flush=True)


if __name__ == "__main__":
    main()
