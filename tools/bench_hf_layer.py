#!/usr/bin/env python3
"""HF transformers side of the GPU benchmark (issue 6, item 6): DeepseekV4ForCausalLM at DeepSeek-V4-Flash shapes,
random weights in bf16 on the GPU, eager attention, timed per layer with CUDA events (forward pre/post hooks on
every decoder layer) so its numbers sit next to bench/cuda_bench.cpp's per-layer-kind rows.

Measures
  decode   batch B in --batches at a --context-token context: one prefill of the context at batch 1, its cache
           copied and repeated along the batch dimension to B rows, then single-token decode steps with that
           cache (each step appends one token; warm-up 2, then up to --steps steps or --min-time seconds).
           When the cache cannot be repeated, the context is prefilled at batch B directly (may be "oom").
  prefill  one forward of --prefill tokens at batch 1 (use_cache=True), warm-up 1, then 2 timed.
Output: CSV lines on stdout (header "section,kind,layer,batch,context,prompt,ms,tok_s,note"; log lines start with
"# "), also written to --out. Out-of-memory conditions print "oom" rows and the run continues.
Usage on the GPU machine: PYTHONUNBUFFERED=1 python3 tools/bench_hf_layer.py [--layers 0,4,128] [--batches 1,8,64]
       [--context 4096] [--prefill 8192] [--out hf_layers.csv]
Layers: one compress ratio per layer (0 SWA, 4 CSA, 128 HCA); num_hash_layers = 0 (every layer routes by gate +
bias, as in dsv4_cuda_bench). The whole run is time-boxed by --budget-s (default 160 s after the imports).
"""
import argparse
import copy
import gc
import statistics
import sys
import time
import traceback

CSV_HEADER = "section,kind,layer,batch,context,prompt,ms,tok_s,note"
KIND = {0: "swa", 4: "csa", 128: "hca"}
TYPE_KIND = {"sliding_attention": "swa", "compressed_sparse_attention": "csa", "heavily_compressed_attention": "hca"}


def log(msg):
    print("# " + msg, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", default="0,4,128", help="compress ratio of each layer (0, 4, 128)")
    p.add_argument("--batches", default="1,8,64")
    p.add_argument("--context", type=int, default=4096)
    p.add_argument("--prefill", type=int, default=8192)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--budget-s", type=float, default=160.0)
    p.add_argument("--experts-impl", default="eager", help="transformers experts implementation (eager, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="")
    a = p.parse_args()
    a.layers = [int(x) for x in a.layers.split(",") if x]
    a.batches = [int(x) for x in a.batches.split(",") if x]
    for r in a.layers:
        if r not in KIND:
            p.error("--layers takes compress ratios 0, 4, 128")
    return a


def flash_hub_config(ratios):
    """The HF-hub config.json of DeepSeek-V4-Flash (spec §1.1) with the given layers and no MTP block."""
    return {
        "vocab_size": 129280, "hidden_size": 4096, "num_hidden_layers": len(ratios), "num_attention_heads": 64,
        "num_key_value_heads": 1, "head_dim": 512, "qk_rope_head_dim": 64, "q_lora_rank": 1024, "o_lora_rank": 1024,
        "o_groups": 8, "sliding_window": 128, "compress_ratios": list(ratios), "compress_rope_theta": 160000.0,
        "rope_theta": 10000.0,
        "rope_scaling": {"type": "yarn", "factor": 16, "original_max_position_embeddings": 65536, "beta_fast": 32,
                         "beta_slow": 1},
        "max_position_embeddings": 1048576, "index_n_heads": 64, "index_head_dim": 128, "index_topk": 512,
        "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 6, "moe_intermediate_size": 2048,
        "routed_scaling_factor": 1.5, "scoring_func": "sqrtsoftplus", "norm_topk_prob": True, "num_hash_layers": 0,
        "swiglu_limit": 10.0, "hc_mult": 4, "hc_sinkhorn_iters": 20, "hc_eps": 1e-6, "rms_norm_eps": 1e-6,
        "num_nextn_predict_layers": 0, "hidden_act": "silu", "attention_bias": False, "attention_dropout": 0.0,
        "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": 1, "initializer_range": 0.02,
        "use_cache": True,
    }


def build_config(hub):
    """DeepseekV4Config from the hub dict (as tools/gen_goldens.py), falling back to rope_parameters."""
    from transformers import DeepseekV4Config
    try:
        cfg = DeepseekV4Config(**copy.deepcopy(hub))
    except Exception as exc:  # noqa: BLE001
        log(f"DeepseekV4Config(**hub) raised {exc!r}; retrying with rope_parameters")
        kw = {k: copy.deepcopy(v) for k, v in hub.items() if k != "rope_scaling"}
        rs = hub["rope_scaling"]
        kw["rope_parameters"] = {"rope_type": "yarn", "factor": rs["factor"],
                                 "original_max_position_embeddings": rs["original_max_position_embeddings"],
                                 "beta_fast": rs["beta_fast"], "beta_slow": rs["beta_slow"]}
        cfg = DeepseekV4Config(**kw)
    cfg._attn_implementation = "eager"
    return cfg


def layer_kinds(cfg, ratios):
    types = getattr(cfg, "layer_types", None)
    if types and len(types) == len(ratios) and all(t in TYPE_KIND for t in types):
        kinds = [TYPE_KIND[t] for t in types]
        if kinds != [KIND[r] for r in ratios]:
            log(f"WARNING: HF layer_types {types} differ from the requested ratios {ratios}")
        return kinds
    return [KIND[r] for r in ratios]


def new_model(cfg, torch, experts_impl):
    from transformers import DeepseekV4ForCausalLM
    model = None
    with torch.device("cuda"):
        for kw in ({"dtype": torch.bfloat16, "attn_implementation": "eager"},
                   {"torch_dtype": torch.bfloat16, "attn_implementation": "eager"}, {}):
            try:
                model = DeepseekV4ForCausalLM._from_config(cfg, **kw)
                break
            except TypeError as exc:
                log(f"_from_config({sorted(kw)}) raised {exc!r}")
        if model is None:
            model = DeepseekV4ForCausalLM(cfg)
    model = model.to(device="cuda", dtype=torch.bfloat16).eval()
    try:
        if hasattr(model, "set_experts_implementation"):
            model.set_experts_implementation(experts_impl)
        else:
            model.config._experts_implementation = experts_impl
    except Exception as exc:  # noqa: BLE001
        log(f"could not set experts implementation {experts_impl}: {exc!r}")
    # Sane random values whatever the init did (uninitialized memory could hold NaNs): matrices N(0, 0.02),
    # norm weights 1, other vectors 0.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.dtype.is_floating_point:
                continue
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
            elif "norm" in name:
                p.fill_(1.0)
            else:
                p.zero_()
    return model


class LayerTimer:
    """CUDA events before and after every decoder layer's forward."""

    def __init__(self, layers, torch):
        self.torch = torch
        self.enabled = False
        self.pending = []
        self.handles = []
        for i, layer in enumerate(layers):
            self.handles.append(layer.register_forward_pre_hook(self._pre(i)))
            self.handles.append(layer.register_forward_hook(self._post(i)))
        self.n = len(layers)
        self.starts = {}

    def _pre(self, i):
        def hook(_mod, _args):
            if self.enabled:
                ev = self.torch.cuda.Event(enable_timing=True)
                ev.record()
                self.starts[i] = ev
        return hook

    def _post(self, i):
        def hook(_mod, _args, _out):
            if self.enabled and i in self.starts:
                ev = self.torch.cuda.Event(enable_timing=True)
                ev.record()
                self.pending.append((i, self.starts.pop(i), ev))
        return hook

    def collect(self):
        """ms per layer of the events since the last collect (the device must be synchronized)."""
        ms = [0.0] * self.n
        for i, a, b in self.pending:
            ms[i] += a.elapsed_time(b)
        self.pending = []
        return ms


def timed_steps(step, timer, torch, warmup, max_steps, min_time):
    """Runs step() warm-up + timed; returns (median wall ms, median ms per layer, steps)."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    walls, layers = [], []
    t_start = time.perf_counter()
    while len(walls) < max_steps:
        timer.enabled = True
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        walls.append((time.perf_counter() - t0) * 1e3)
        timer.enabled = False
        layers.append(timer.collect())
        if time.perf_counter() - t_start >= min_time:
            break
    per_layer = [statistics.median(col) for col in zip(*layers)]
    return statistics.median(walls), per_layer, len(walls)


def is_oom(exc, torch):
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def batch_expand(obj, B, torch, depth=0):
    """Repeats every tensor with a leading batch dim of 1 to B rows, in tensors, dicts, lists and the attributes of
    plain objects (the cache and its layers)."""
    if torch.is_tensor(obj):
        return obj.repeat_interleave(B, dim=0) if obj.dim() >= 1 and obj.shape[0] == 1 else obj
    if isinstance(obj, dict):
        return {k: batch_expand(v, B, torch, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [batch_expand(v, B, torch, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(batch_expand(v, B, torch, depth + 1) for v in obj)
    # Only instances of transformers' own (cache) classes are walked: no modules, configs or classes.
    walk = (not isinstance(obj, (type, torch.nn.Module)) and hasattr(obj, "__dict__")
            and type(obj).__module__.startswith("transformers") and "Config" not in type(obj).__name__)
    if depth < 4 and walk:
        for k, v in list(vars(obj).items()):
            if torch.is_tensor(v) or isinstance(v, (dict, list, tuple)) or hasattr(v, "__dict__"):
                try:
                    setattr(obj, k, batch_expand(v, B, torch, depth + 1))
                except (AttributeError, TypeError):
                    pass
    return obj


class Bench:
    def __init__(self, args, torch, model, kinds):
        self.a, self.torch, self.model, self.kinds = args, torch, model, kinds
        self.V = model.config.vocab_size
        self.timer = LayerTimer(model.model.layers, torch)
        self.rows = []
        self.t0 = time.perf_counter()

    def emit(self, section, kind, layer, batch, context, prompt, ms, tok_s, note=""):
        line = (f"{section},{kind},{layer},{batch},{context},{prompt},"
                f"{'' if ms is None else f'{ms:.4f}'},{'' if tok_s is None else f'{tok_s:.2f}'},{note}")
        self.rows.append(line)
        print(line, flush=True)

    def over_budget(self, what):
        if time.perf_counter() - self.t0 < self.a.budget_s:
            return False
        self.emit("skipped", "", "", "", "", "", None, None, f"time budget: {what}")
        return True

    def ids(self, B, T):
        return self.torch.randint(2, self.V, (B, T), device="cuda")

    def report(self, section, B, ctx, prompt, wall, per_layer, steps, tokens, note):
        for i, ms in enumerate(per_layer):
            self.emit(section, self.kinds[i], i, B, ctx, prompt, ms, None, note)
        self.emit(section, "step wall", "", B, ctx, prompt, wall, tokens / wall * 1e3, f"{steps} timed; {note}")

    def decode_cache(self, base, B):
        """A cache with B rows at the context: repeated from the batch-1 prefill, else a batch-B prefill."""
        torch = self.torch
        if base is not None:
            try:
                cache = batch_expand(copy.deepcopy(base), B, torch)
                with torch.no_grad():
                    self.model(self.ids(B, 1), past_key_values=cache, use_cache=True)  # probe: shapes agree
                return cache, "cache repeated from a batch-1 prefill"
            except Exception as exc:  # noqa: BLE001
                if is_oom(exc, torch):
                    raise
                log(f"repeating the cache to batch {B} failed ({exc!r}); prefilling at batch {B}")
        with torch.no_grad():
            out = self.model(self.ids(B, self.a.context), use_cache=True)
        return out.past_key_values, f"batch-{B} prefill of the context"

    def decode(self, base, B):
        torch, ctx = self.torch, self.a.context
        if self.over_budget(f"decode B={B}"):
            return
        log(f"decode B={B} ctx={ctx}")
        try:
            cache, how = self.decode_cache(base, B)
            state = {"cache": cache}

            def step():
                with torch.no_grad():
                    out = self.model(self.ids(B, 1), past_key_values=state["cache"], use_cache=True)
                state["cache"] = out.past_key_values

            wall, per_layer, n = timed_steps(step, self.timer, torch, 2, self.a.steps, self.a.min_time)
            self.report("decode", B, ctx, 0, wall, per_layer, n, B, how)
        except Exception as exc:  # noqa: BLE001
            self.failed("decode", B, ctx, 0, exc)
        finally:
            state = cache = None
            self.cleanup()

    def prefill(self):
        torch, P = self.torch, self.a.prefill
        if self.over_budget(f"prefill P={P}"):
            return
        log(f"prefill P={P}")
        try:
            ids = self.ids(1, P)

            def step():
                with torch.no_grad():
                    self.model(ids, use_cache=True)

            wall, per_layer, n = timed_steps(step, self.timer, torch, 1, 2, float("inf"))  # exactly 2 timed
            self.report("prefill", 1, 0, P, wall, per_layer, n, P, "use_cache=True, batch 1")
        except Exception as exc:  # noqa: BLE001
            self.failed("prefill", 1, 0, P, exc)
        finally:
            self.cleanup()

    def failed(self, section, B, ctx, P, exc):
        torch = self.torch
        self.timer.enabled = False
        self.timer.pending = []
        if is_oom(exc, torch):
            self.emit(section, "oom", "", B, ctx, P, None, None, "oom")
        else:
            log(traceback.format_exc().replace("\n", "\n# "))
            self.emit(section, "error", "", B, ctx, P, None, None, repr(exc).replace(",", ";")[:200])

    def cleanup(self):
        gc.collect()
        self.torch.cuda.empty_cache()


def main():
    args = parse_args()
    t_import = time.perf_counter()
    import torch
    import transformers
    print(CSV_HEADER, flush=True)
    if not torch.cuda.is_available():
        log("no CUDA device")
        return 77
    torch.manual_seed(args.seed)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, GPU {torch.cuda.get_device_name(0)}, "
        f"imports {time.perf_counter() - t_import:.1f} s")
    hub = flash_hub_config(args.layers)
    cfg = build_config(hub)
    kinds = layer_kinds(cfg, args.layers)
    t0 = time.perf_counter()
    model = new_model(cfg, torch, args.experts_impl)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {len(args.layers)} layers {kinds}, {n_params / 1e9:.2f} B params bf16 "
        f"({torch.cuda.memory_allocated() / 2**30:.1f} GiB), attn={getattr(model.config, '_attn_implementation', None)} "
        f"experts={getattr(model.config, '_experts_implementation', None)}, "
        f"layer_types={getattr(cfg, 'layer_types', None)}, built in {time.perf_counter() - t0:.1f} s")
    bench = Bench(args, torch, model, kinds)
    base = None
    if args.batches:
        log(f"prefill of the {args.context}-token decode context at batch 1")
        try:
            with torch.no_grad():
                base = model(bench.ids(1, args.context), use_cache=True).past_key_values
        except Exception as exc:  # noqa: BLE001
            log(f"context prefill failed: {exc!r}")
            bench.cleanup()
    for B in args.batches:
        bench.decode(base, B)
    base = None
    bench.cleanup()
    if args.prefill > 0:
        bench.prefill()
    log(f"total {time.perf_counter() - t_import:.1f} s")
    if args.out:
        with open(args.out, "w") as f:
            f.write(CSV_HEADER + "\n" + "\n".join(bench.rows) + "\n")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
