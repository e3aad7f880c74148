"""A compact, trainable DeepSeek-V4 in PyTorch that computes the function of spec §3-§8 (the function the dsv4
engine computes), for training the embedded default model.

Semantics follow the spec exactly (what is approximated is only rounding: bf16 autocast matmuls instead of the
reference's FP8 GEMMs). Parameter and buffer names are the official checkpoint names (spec §7.3) except the
routed experts, stored stacked as `ffn.experts_w{1,2,3}` [E, out, in] and split on export.

  mHC (§4)        hc_pre: f32 projection, sigmoid pre/post, Sinkhorn comb (softmax+eps, col, then
                  (row, col) x (iters-1)); hc_post: post*a + C^T R; hc_head: pre only.
  attention (§5)  q low-rank + per-head unweighted RMS norm; single K=V latent; interleaved RoPE on the last
                  rope dims (theta 10000 for ratio 0, compress theta + YaRN for ratio > 0); 128-token window
                  incl. self; compressed entries (CSA: overlapping ratio-4 compressor, top-k chosen by the
                  indexer; HCA: all visible ratio-128 entries); one softmax with a per-head sink; inverse RoPE
                  on the output; grouped wo_a then wo_b. KV no-RoPE dims FP8 fake-quant (block 64).
  indexer (§5.8)  wq_b(qr), RoPE, Hadamard + FP4 fake-quant of q and keys, weights_proj(x)/sqrt(h*d),
                  score = sum_h w_h relu(q_h.k). Top-k passes no gradient: the indexer is trained with its
                  own loss, KL(main attention's distribution over the compressed entries || softmax(score)),
                  on detached inputs (DeepSeek-V3.2's recipe). While `dense_csa` is set (warm-up), CSA layers
                  attend to all visible entries. Optional retrieval supervision (train.py --passkey-v3, ctx "sup"):
                  on marked answer rows, the best head's attention mass on the entries pooling the needle's key
                  (Attention.last_sup, a model loss) and the indexer's softmax mass on them (added to aux).
  MoE (§6)        sqrt(softplus) scores in f32; hash layers use tid2eid, others top-k of score+bias (bias
                  only for selection, updated outside the graph: aux-loss-free balancing); weights normalised
                  x routed_scaling_factor, applied before w2; clamped SwiGLU on routed and shared experts.
  MTP (§8)        e = enorm(embed[t+1]), hs = hnorm(H_t) per stream, X = e_proj(e) + h_proj(hs), one SWA
                  block at the same positions, own hc_head + norm, shared head; predicts token t+2.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from quant import fq_blocks, fq_weight_fp4, fq_weight_fp8, ste

ACT = torch.bfloat16  # dtype of the attention matmul inputs (float32 for CPU tests)
FAKE_QUANT = True  # FP8 KV / FP4 indexer activation fake-quant (off: all-f32 comparisons with dsv4)


def no_autocast(x):
    return torch.autocast(device_type=x.device.type, enabled=False)


class Norm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()


def rope_freqs(rope_dim, base, yarn):
    """f32 frequencies of the rope_dim/2 pairs (spec §2.8; the engine's make_rope_table)."""
    i = torch.arange(rope_dim // 2, dtype=torch.float32)
    theta = 1.0 / torch.pow(torch.tensor(float(base), dtype=torch.float32), (2 * i) / rope_dim)
    if yarn is not None:
        def corr(beta):
            return rope_dim * math.log(yarn["original_max_position_embeddings"] / (beta * 2 * math.pi)) / (
                2 * math.log(base))
        lo = max(math.floor(corr(yarn["beta_fast"])), 0.0)
        hi = min(math.ceil(corr(yarn["beta_slow"])), rope_dim - 1.0)
        if lo == hi:
            hi += 0.001
        ramp = ((i.double() - lo) / (hi - lo)).float().clamp(0, 1)
        smooth = 1 - ramp
        theta = theta / yarn["factor"] * (1 - smooth) + theta * smooth
    return theta


def apply_rope(x, pos, freqs, inverse=False):
    """Interleaved pairs on the last 2*len(freqs) dims of x [..., T, (heads,) d]; pos [T] (int)."""
    r = freqs.numel() * 2
    ang = pos.float()[:, None] * freqs[None, :]  # [T, r/2]
    cos, sin = torch.cos(ang), torch.sin(ang)
    if inverse:
        sin = -sin
    while cos.dim() < x.dim() - 1:  # broadcast over heads
        cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
    xr = x[..., -r:].float().reshape(*x.shape[:-1], r // 2, 2)
    a, b = xr[..., 0], xr[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), -1).reshape(*x.shape[:-1], r)
    return torch.cat((x[..., :-r].float(), out), -1)


def hadamard_matrix(n, device):
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat((torch.cat((h, h), 1), torch.cat((h, -h), 1)), 0)
    return (h / math.sqrt(n)).to(device)


class Compressor(nn.Module):
    """Gated-softmax pooling of `ratio` tokens into one entry (spec §5.7); overlapping (c=2) for ratio 4."""

    def __init__(self, D, dout, ratio, rope_dim, eps):
        super().__init__()
        c = 2 if ratio == 4 else 1
        self.ratio, self.dout, self.c = ratio, dout, c
        self.wkv = nn.Linear(D, c * dout, bias=False)
        self.wgate = nn.Linear(D, c * dout, bias=False)
        self.ape = nn.Parameter(torch.zeros(ratio, c * dout))
        self.norm = Norm(dout, eps)

    def forward(self, x, freqs):
        B, T, _ = x.shape
        m, d = self.ratio, self.dout
        W = T // m
        a = self.wkv(x[:, :W * m]).float().view(B, W, m, self.c * d)
        g = self.wgate(x[:, :W * m]).float().view(B, W, m, self.c * d) + self.ape.float()
        if self.c == 2:
            A, Bv = a[..., :d], a[..., d:]
            GA, GB = g[..., :d], g[..., d:]
            A_prev = torch.cat((torch.zeros_like(A[:, :1]), A[:, :-1]), 1)
            GA_prev = torch.cat((torch.full_like(GA[:, :1], float("-inf")), GA[:, :-1]), 1)
            vals, gates = torch.cat((A_prev, Bv), 2), torch.cat((GA_prev, GB), 2)
        else:
            vals, gates = a, g
        e = (torch.softmax(gates, dim=2) * vals).sum(2)  # [B, W, d]
        e = self.norm(e)
        pos = torch.arange(W, device=x.device) * m
        return apply_rope(e, pos, freqs)


class Indexer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, ql = cfg["hidden_size"], cfg["q_lora_rank"]
        self.nh, self.hd = cfg["index_n_heads"], cfg["index_head_dim"]
        self.wq_b = nn.Linear(ql, self.nh * self.hd, bias=False)
        self.weights_proj = nn.Linear(D, self.nh, bias=False)
        self.compressor = Compressor(D, self.hd, 4, cfg["qk_rope_head_dim"], cfg["rms_norm_eps"])
        self.qat = False

    def forward(self, x, qr, pos, freqs, had):
        B, T, _ = x.shape
        wq = fq_weight_fp8(self.wq_b.weight) if self.qat else self.wq_b.weight
        q = F.linear(qr, wq).view(B, T, self.nh, self.hd)
        q = apply_rope(q, pos, freqs)
        k = self.compressor(x, freqs)  # [B, W, hd]
        if FAKE_QUANT:  # Hadamard then FP4 (spec §5.8); H is orthonormal, so without FP4 it is a no-op
            q = ste(q, fq_blocks(q @ had, 32, "fp4", 6 * 2.0 ** -126))
            k = ste(k, fq_blocks(k @ had, 32, "fp4", 6 * 2.0 ** -126))
        w = self.weights_proj(x).float() * (self.hd ** -0.5 * self.nh ** -0.5)  # [B, T, nh]
        s = torch.einsum("bthd,bwd->bhtw", q.to(ACT), k.to(ACT)).float().relu()
        return torch.einsum("bhtw,bth->btw", s, w)  # [B, T, W]


class Attention(nn.Module):
    def __init__(self, cfg, ratio):
        super().__init__()
        D, H, d = cfg["hidden_size"], cfg["num_attention_heads"], cfg["head_dim"]
        ql, G, R = cfg["q_lora_rank"], cfg["o_groups"], cfg["o_lora_rank"]
        eps = cfg["rms_norm_eps"]
        self.H, self.d, self.G, self.R, self.eps = H, d, G, R, eps
        self.ratio, self.window, self.topk = ratio, cfg["sliding_window"], cfg["index_topk"]
        self.rope_dim = cfg["qk_rope_head_dim"]
        self.attn_sink = nn.Parameter(torch.zeros(H))
        self.wq_a = nn.Linear(D, ql, bias=False)
        self.q_norm = Norm(ql, eps)
        self.wq_b = nn.Linear(ql, H * d, bias=False)
        self.wkv = nn.Linear(D, d, bias=False)
        self.kv_norm = Norm(d, eps)
        self.wo_a = nn.Linear(H * d // G, G * R, bias=False)
        self.wo_b = nn.Linear(G * R, D, bias=False)
        if ratio > 0:
            self.compressor = Compressor(D, d, ratio, self.rope_dim, eps)
        if ratio == 4:
            self.indexer = Indexer(cfg)
        self.qat = False

    def lin(self, mod, x):
        return F.linear(x, fq_weight_fp8(mod.weight) if self.qat else mod.weight)

    def kv_fq(self, kv):
        if not FAKE_QUANT:
            return kv
        n = self.d - self.rope_dim
        nope = ste(kv[..., :n], fq_blocks(kv[..., :n], 64, "fp8", 1e-4))
        return torch.cat((nope, kv[..., n:]), -1)

    def _needle_entries(self, ctx, vis, B, Wc):
        """[B, T, Wc] bool: on the supervised answer rows (ctx sup_rows [B, T]), the visible ratio-4 entries
        that pool a needle key token (ctx sup_keys [B, T]); entry w pools windows w-1 and w (overlap c=2).
        None without supervision."""
        sk, sr = ctx.get("sup_keys"), ctx.get("sup_rows")
        if sk is None or sr is None:
            return None
        m = self.ratio
        own = sk[:, :Wc * m].reshape(B, Wc, m).any(-1)
        ent = own | torch.cat((own.new_zeros(B, 1), own[:, :-1]), 1)  # [B, Wc]
        return ent[:, None, :] & vis[None] & sr[:, :, None]

    def forward(self, x, ctx):
        B, T, _ = x.shape
        H, d, Wn = self.H, self.d, self.window
        pos, freqs = ctx["pos"], ctx["freqs"][self.ratio > 0]
        qr = self.q_norm(self.lin(self.wq_a, x))
        q = self.lin(self.wq_b, qr).float().view(B, T, H, d)
        q = q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + self.eps)
        q = apply_rope(q, pos, freqs)
        kv = self.kv_fq(apply_rope(self.kv_norm(self.lin(self.wkv, x)), pos, freqs))  # [B, T, d]
        scale = d ** -0.5
        qb = q.to(ACT)
        # Window: query block n attends to key blocks n-1 and n (T is a multiple of the window).
        nb = T // Wn
        kvp = torch.cat((kv.new_zeros(B, Wn, d), kv), 1).to(ACT)
        kwin = kvp.unfold(1, 2 * Wn, Wn)  # [B, nb, d, 2Wn]
        lw = torch.einsum("bnqhd,bndk->bhnqk", qb.view(B, nb, Wn, H, d), kwin).float() * scale
        ii = torch.arange(Wn, device=x.device)[:, None]
        jj = torch.arange(2 * Wn, device=x.device)[None, :]
        mwin = (jj >= ii + 1) & (jj <= ii + Wn)
        mfirst = mwin & (jj >= Wn)
        mask_w = torch.cat((mfirst[None], mwin[None].expand(nb - 1, -1, -1)), 0)  # [nb, Wn, 2Wn]
        lw = lw.masked_fill(~mask_w, float("-inf")).reshape(B, H, T, 2 * Wn)
        parts = [lw]
        aux = x.new_zeros(())
        tv = None
        if self.ratio > 0:
            comp = self.kv_fq(self.compressor(x, freqs)).to(ACT)  # [B, Wc, d]
            Wc = comp.shape[1]
            lc = torch.einsum("bthd,bwd->bhtw", qb, comp).float() * scale
            vis = torch.arange(Wc, device=x.device)[None, :] < ((pos[:, None] + 1) // self.ratio)  # [T, Wc]
            if self.ratio == 4:
                score = self.indexer(x.detach(), qr.detach(), pos, freqs, ctx["had"])  # [B, T, Wc]
                score = score.masked_fill(~vis, float("-inf"))
                # Indexer loss: KL(main attention over the visible entries, averaged over heads || indexer).
                with torch.no_grad():
                    tgt = torch.softmax(lc.detach().masked_fill(~vis, float("-inf")), -1).nan_to_num(0).mean(1)
                logp = torch.log_softmax(score, -1)
                rows = vis.any(-1)  # [T]
                kl = (tgt * (torch.log(tgt.clamp(min=1e-20)) - logp.masked_fill(~vis, 0))).sum(-1)
                aux = (kl * rows).sum() / (rows.sum() * B).clamp(min=1)
                arows = ctx.get("idx_rows")  # [B, T] bool: pass-key answer queries (train.py --passkey-v2)
                if arows is not None and ctx.get("idx_rows_w", 0.0) > 0:
                    ar = arows & rows[None]
                    kl_ans = (kl * ar).sum() / ar.sum().clamp(min=1)
                    self.last_kl_ans = kl_ans.detach()
                    aux = aux + ctx["idx_rows_w"] * kl_ans
                tv = self._needle_entries(ctx, vis, B, Wc)  # [B, T, Wc] or None (train.py --passkey-v3)
                if tv is not None:
                    # The indexer's own supervision on the answer rows: its softmax mass on the needle's entries.
                    lpi = torch.log_softmax(score, -1).masked_fill(~tv, float("-inf"))
                    rows_s = tv.any(-1)
                    mi = torch.logsumexp(lpi, -1).masked_fill(~rows_s, 0.0)
                    aux = aux + ctx["idx_sup_w"] * (-mi.sum() / rows_s.sum().clamp(min=1))
                if not ctx["dense_csa"] and Wc > self.topk:
                    idx = score.detach().topk(self.topk, dim=-1).indices
                    sel = torch.zeros_like(score, dtype=torch.bool).scatter_(-1, idx, True) & vis
                    lc = lc.masked_fill(~sel[:, None], float("-inf"))
                else:
                    lc = lc.masked_fill(~vis, float("-inf"))
            else:
                lc = lc.masked_fill(~vis, float("-inf"))
            parts.append(lc)
        parts.append(self.attn_sink.float()[None, :, None, None].expand(B, H, T, 1))
        p = torch.softmax(torch.cat(parts, -1), -1)
        self.last_sup = None
        if self.ratio == 4 and tv is not None:
            # Attention supervision (--passkey-v3): on the answer rows, the best head's probability mass on the
            # compressed entries that pool the needle's key tokens (only where the indexer selected them).
            rows_s = tv.any(-1)  # [B, T]
            if bool(rows_s.any()):
                mass = (p[..., 2 * Wn:2 * Wn + Wc] * tv[:, None].to(p.dtype)).sum(-1).amax(1)  # [B, T]
                self.last_sup = -(torch.log(mass + 1e-4) * rows_s).sum() / rows_s.sum()
        pw = p[..., :2 * Wn].reshape(B, H, nb, Wn, 2 * Wn).to(ACT)
        o = torch.einsum("bhnqk,bndk->bnqhd", pw, kwin).reshape(B, T, H, d).float()
        if self.ratio > 0:
            pc = p[..., 2 * Wn:2 * Wn + Wc].to(ACT)
            o = o + torch.einsum("bhtw,bwd->bthd", pc, comp).float()
        o = apply_rope(o, pos, freqs, inverse=True)
        u = o.reshape(B, T, self.G, H // self.G * d).to(ACT)
        wa = (fq_weight_fp8(self.wo_a.weight) if self.qat else self.wo_a.weight).view(self.G, self.R, -1)
        z = torch.einsum("btgk,grk->btgr", u, wa.to(ACT)).reshape(B, T, self.G * self.R)
        return self.lin(self.wo_b, z), aux


class Gate(nn.Module):
    def __init__(self, cfg, hashed):
        super().__init__()
        E, D = cfg["n_routed_experts"], cfg["hidden_size"]
        self.weight = nn.Parameter(torch.empty(E, D))
        self.hashed = hashed
        if hashed:
            self.register_buffer("tid2eid", torch.zeros(cfg["vocab_size"], cfg["num_experts_per_tok"],
                                                        dtype=torch.int64))
        else:
            self.register_buffer("bias", torch.zeros(E))


class SharedExperts(nn.Module):
    def __init__(self, D, I):
        super().__init__()
        self.w1 = nn.Linear(D, I, bias=False)
        self.w2 = nn.Linear(I, D, bias=False)
        self.w3 = nn.Linear(D, I, bias=False)


class MoE(nn.Module):
    def __init__(self, cfg, hashed):
        super().__init__()
        E, D, I = cfg["n_routed_experts"], cfg["hidden_size"], cfg["moe_intermediate_size"]
        self.E, self.I, self.K = E, I, cfg["num_experts_per_tok"]
        self.limit, self.route_scale = cfg["swiglu_limit"], cfg["routed_scaling_factor"]
        self.gate = Gate(cfg, hashed)
        self.experts_w1 = nn.Parameter(torch.empty(E, I, D))
        self.experts_w2 = nn.Parameter(torch.empty(E, D, I))
        self.experts_w3 = nn.Parameter(torch.empty(E, I, D))
        self.shared_experts = SharedExperts(D, I)
        self.qat = False
        self.load = None  # tokens per expert in the last forward (for the bias update)

    def forward(self, x, tokens):
        shp = x.shape
        x = x.reshape(-1, shp[-1])
        N, E, I = x.shape[0], self.E, self.I
        with no_autocast(x):
            s = torch.sqrt(F.softplus(x.float() @ self.gate.weight.float().t()))  # [N, E]
        if self.gate.hashed:
            sel = self.gate.tid2eid[tokens.reshape(-1)]
        else:
            sel = (s.detach() + self.gate.bias).topk(self.K, -1).indices
        w = s.gather(1, sel)
        w = w / w.sum(-1, keepdim=True) * self.route_scale
        dense_w = torch.zeros_like(s).scatter(1, sel, w)  # [N, E]
        self.load = torch.bincount(sel.reshape(-1), minlength=E).detach()
        w1, w2, w3 = self.experts_w1, self.experts_w2, self.experts_w3
        sw1, sw2, sw3 = self.shared_experts.w1.weight, self.shared_experts.w2.weight, self.shared_experts.w3.weight
        if self.qat:
            w1, w2, w3 = fq_weight_fp4(w1), fq_weight_fp4(w2), fq_weight_fp4(w3)
            sw1, sw2, sw3 = fq_weight_fp8(sw1), fq_weight_fp8(sw2), fq_weight_fp8(sw3)
        # All experts + the shared one as one wide SwiGLU (dense; E is small): [N, (E+1) I].
        W1 = torch.cat((w1.reshape(E * I, -1), sw1), 0)
        W3 = torch.cat((w3.reshape(E * I, -1), sw3), 0)
        W2 = torch.cat((w2.permute(1, 0, 2).reshape(-1, E * I), sw2), 1)  # [D, (E+1) I]
        g = F.linear(x, W1).float().clamp(max=self.limit)
        u = F.linear(x, W3).float().clamp(-self.limit, self.limit)
        omega = torch.cat((dense_w, torch.ones_like(dense_w[:, :1])), 1)  # [N, E+1]
        h = (F.silu(g) * u).view(N, E + 1, I) * omega[..., None]
        return F.linear(h.view(N, -1).to(W2.dtype) if not torch.is_autocast_enabled() else h.view(N, -1),
                        W2).reshape(shp)


def hc_pre(X, fn, scale, base, iters, eps, norm_eps):
    """X [B, T, hc, D] -> x [B, T, D], post [B, T, hc], comb [B, T, hc(src), hc(dst)] (spec §4.1)."""
    B, T, hc, D = X.shape
    with no_autocast(X):
        v = X.reshape(B, T, hc * D).float()
        rho = torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + norm_eps)
        mu = (v @ fn.t()) * rho
        pre = torch.sigmoid(mu[..., :hc] * scale[0] + base[:hc]) + eps
        post = 2 * torch.sigmoid(mu[..., hc:2 * hc] * scale[1] + base[hc:2 * hc])
        C = (mu[..., 2 * hc:] * scale[2] + base[2 * hc:]).view(B, T, hc, hc)
        C = torch.softmax(C, -1) + eps
        C = C / (C.sum(-2, keepdim=True) + eps)
        for _ in range(iters - 1):
            C = C / (C.sum(-1, keepdim=True) + eps)
            C = C / (C.sum(-2, keepdim=True) + eps)
        x = (pre[..., None] * X.float()).sum(2)
    return x, post, C


def hc_post(a, R, post, C):
    return post[..., None] * a.float()[:, :, None, :] + torch.einsum("btjk,btjd->btkd", C, R.float())


def hc_head(X, fn, scale, base, eps, norm_eps):
    B, T, hc, D = X.shape
    with no_autocast(X):
        v = X.reshape(B, T, hc * D).float()
        mu = (v @ fn.t()) * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + norm_eps)
        pre = torch.sigmoid(mu * scale[0] + base) + eps
        return (pre[..., None] * X.float()).sum(2)


class Block(nn.Module):
    def __init__(self, cfg, ratio, hashed):
        super().__init__()
        D, hc = cfg["hidden_size"], cfg["hc_mult"]
        mix = (2 + hc) * hc
        for s in ("attn", "ffn"):
            setattr(self, f"hc_{s}_fn", nn.Parameter(torch.empty(mix, hc * D)))
            setattr(self, f"hc_{s}_base", nn.Parameter(torch.zeros(mix)))
            setattr(self, f"hc_{s}_scale", nn.Parameter(torch.zeros(3)))
        self.attn_norm = Norm(D, cfg["rms_norm_eps"])
        self.ffn_norm = Norm(D, cfg["rms_norm_eps"])
        self.attn = Attention(cfg, ratio)
        self.ffn = MoE(cfg, hashed)
        self.iters, self.hc_eps, self.eps = cfg["hc_sinkhorn_iters"], cfg["hc_eps"], cfg["rms_norm_eps"]

    def forward(self, X, tokens, ctx):
        x, post, C = hc_pre(X, self.hc_attn_fn, self.hc_attn_scale, self.hc_attn_base, self.iters, self.hc_eps,
                            self.eps)
        a, aux = self.attn(self.attn_norm(x), ctx)
        X = hc_post(a, X, post, C)
        x, post, C = hc_pre(X, self.hc_ffn_fn, self.hc_ffn_scale, self.hc_ffn_base, self.iters, self.hc_eps,
                            self.eps)
        f = self.ffn(self.ffn_norm(x), tokens)
        return hc_post(f, X, post, C), aux


class MTPBlock(Block):
    def __init__(self, cfg, ratio):
        super().__init__(cfg, ratio, False)
        D, hc = cfg["hidden_size"], cfg["hc_mult"]
        eps = cfg["rms_norm_eps"]
        self.e_proj = nn.Linear(D, D, bias=False)
        self.h_proj = nn.Linear(D, D, bias=False)
        self.enorm, self.hnorm, self.norm = Norm(D, eps), Norm(D, eps), Norm(D, eps)
        self.hc_head_fn = nn.Parameter(torch.empty(hc, hc * D))
        self.hc_head_base = nn.Parameter(torch.zeros(hc))
        self.hc_head_scale = nn.Parameter(torch.zeros(1))


class DeepseekV4Tiny(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        V, D, hc = cfg["vocab_size"], cfg["hidden_size"], cfg["hc_mult"]
        nL = cfg["num_hidden_layers"]
        ratios = cfg["compress_ratios"]
        self.embed = nn.Embedding(V, D)
        self.layers = nn.ModuleList(Block(cfg, ratios[i], i < cfg["num_hash_layers"]) for i in range(nL))
        self.norm = Norm(D, cfg["rms_norm_eps"])
        self.head = nn.Linear(D, V, bias=False)
        self.hc_head_fn = nn.Parameter(torch.empty(hc, hc * D))
        self.hc_head_base = nn.Parameter(torch.zeros(hc))
        self.hc_head_scale = nn.Parameter(torch.zeros(1))
        self.mtp = nn.ModuleList(MTPBlock(cfg, ratios[nL + j]) for j in range(cfg["num_nextn_predict_layers"]))
        rd = cfg["qk_rope_head_dim"]
        self.register_buffer("freqs_main", rope_freqs(rd, cfg["rope_theta"], None), persistent=False)
        self.register_buffer("freqs_comp", rope_freqs(rd, cfg["compress_rope_theta"], cfg["rope_scaling"]),
                             persistent=False)
        self.register_buffer("had", hadamard_matrix(cfg["index_head_dim"], "cpu"), persistent=False)

    def set_qat(self, on):
        for m in self.modules():
            if hasattr(m, "qat"):
                m.qat = on

    def ctx(self, T, device, dense_csa, idx_rows=None, idx_rows_w=0.0, sup=None):
        c = {"pos": torch.arange(T, device=device), "freqs": (self.freqs_main, self.freqs_comp),
             "had": self.had, "dense_csa": dense_csa, "idx_rows": idx_rows, "idx_rows_w": idx_rows_w}
        if sup is not None:  # (sup_rows [B, T] bool, sup_keys [B, T] bool, idx_sup_w)
            c["sup_rows"], c["sup_keys"], c["idx_sup_w"] = sup
        return c

    def logits(self, X, fn, scale, base, norm):
        c = self.cfg
        y = norm(hc_head(X, fn, scale, base, c["hc_eps"], c["rms_norm_eps"]))
        return F.linear(y.to(self.head.weight.dtype) if not torch.is_autocast_enabled() else y, self.head.weight)

    def forward(self, tokens, dense_csa=False, with_mtp=True, idx_rows=None, idx_rows_w=0.0, sup=None):
        """tokens [B, T] -> (main logits [B, T, V], mtp logits [B, T-1, V] predicting t+2 or None, aux).
        idx_rows [B, T] (bool, optional) marks query rows whose indexer KL is added again with weight
        idx_rows_w (the pass-key answer queries of train.py --passkey-v2). sup (--passkey-v3): (answer rows,
        needle key-token positions, indexer weight): the CSA layers' attention and indexer supervision, left
        in each Attention's last_sup (model loss) and added to aux (indexer)."""
        B, T = tokens.shape
        hc = self.cfg["hc_mult"]
        ctx = self.ctx(T, tokens.device, dense_csa, idx_rows, idx_rows_w, sup)
        h = self.embed(tokens).float()
        X = h[:, :, None, :].expand(B, T, hc, h.shape[-1]).contiguous()
        aux = h.new_zeros(())
        for layer in self.layers:
            X, a = layer(X, tokens, ctx)
            aux = aux + a
        logits = self.logits(X, self.hc_head_fn, self.hc_head_scale, self.hc_head_base, self.norm)
        mtp_logits = None
        if with_mtp and len(self.mtp) > 0:
            m = self.mtp[0]
            nxt = tokens[:, 1:]
            e = m.enorm(self.embed(nxt))
            hs = m.hnorm(X[:, :-1])
            Xm = (m.e_proj(e)[:, :, None, :] + m.h_proj(hs)).float()
            Xm, a = m(Xm, nxt, self.ctx(T - 1, tokens.device, dense_csa)) if (T - 1) % self.cfg[
                "sliding_window"] == 0 else self._mtp_padded(m, Xm, nxt, tokens.device, dense_csa)
            mtp_logits = self.logits(Xm, m.hc_head_fn, m.hc_head_scale, m.hc_head_base, m.norm)
        return logits, mtp_logits, aux

    def _mtp_padded(self, m, Xm, nxt, device, dense_csa):
        """The MTP block over T-1 rows, padded at the end to a multiple of the window (causal: no effect)."""
        B, T1 = nxt.shape
        Wn = self.cfg["sliding_window"]
        pad = -T1 % Wn
        Xp = torch.cat((Xm, Xm.new_zeros(B, pad, *Xm.shape[2:])), 1)
        tp = torch.cat((nxt, nxt.new_zeros(B, pad)), 1)
        out, a = m(Xp, tp, self.ctx(T1 + pad, device, dense_csa))
        return out[:, :T1], a


def init_weights(model, seed):
    """Deterministic init: linears N(0, 0.02) (output projections scaled by 1/sqrt(2 L)), embedding N(0, 1),
    mHC fn N(0, 1/(hc D)) with scale 0.1, pre bias so the 4 streams average, comb bias near identity."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    nL = cfg["num_hidden_layers"] + cfg["num_nextn_predict_layers"]
    hc = cfg["hc_mult"]
    for name, p in model.named_parameters():
        with torch.no_grad():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name == "embed.weight":
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("_fn"):
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            elif name.endswith("_scale"):
                p.fill_(0.1)
            elif name.endswith("hc_head_base"):
                p.fill_(-math.log(hc - 1))  # sigmoid = 1/hc
            elif name.endswith("_base"):
                b = torch.zeros(p.shape)
                b[:hc] = -math.log(hc - 1)
                b[2 * hc:] = (torch.eye(hc) * 4.0).reshape(-1)
                p.copy_(b)
            elif name.endswith("attn_sink") or name.endswith(".ape"):
                p.zero_()
            else:
                std = 0.02
                if any(name.endswith(s) for s in ("wo_b.weight", "experts_w2", "shared_experts.w2.weight")):
                    std = 0.02 / math.sqrt(2 * nL)
                p.copy_(torch.randn(p.shape, generator=g) * std)
    for name, b in model.named_buffers():
        if name.endswith("tid2eid"):
            E, K = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
            rows = torch.stack([torch.randperm(E, generator=g)[:K] for _ in range(b.shape[0])])
            b.copy_(rows)
