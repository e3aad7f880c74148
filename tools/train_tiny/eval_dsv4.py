#!/usr/bin/env python3
"""Evaluates the embedded default model with the dsv4 binary itself (CPU), on the inputs train.py wrote
(models/dsv4-tiny/eval/): held-out perplexity (shipped FP8/FP4 weights, and the bf16 checkpoint when
--bf16 is given), pass-key accuracy by context length and depth, MTP draft acceptance (when the dsv4 build
has an MTP logits output), and greedy sample completions. Prints markdown tables; --json writes them.

Only the Python standard library and numpy (Debian's python3-numpy) are needed.
Usage:
  python3 tools/train_tiny/eval_dsv4.py --dsv4 build/dsv4 -m models/dsv4-tiny [--bf16 DIR]
      [--lengths 1024,2048,4096,8192] [--per-cell 2] [--skip ppl,passkey,mtp,samples] [--json out.json]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def write_ids(td, ids, name="ids.json"):
    p = os.path.join(td, name)
    with open(p, "w") as f:
        json.dump(ids, f)
    return p


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def heldout_ppl(dsv4, model, seqs, td):
    nll, n, t0 = 0.0, 0, time.time()
    for i, s in enumerate(seqs):
        out = os.path.join(td, "lg.npy")
        run([dsv4, "logits", "-m", model, "--tokens", write_ids(td, s), "--out", out])
        lp = log_softmax(np.load(out).astype(np.float64))
        nll -= lp[np.arange(len(s) - 1), np.asarray(s[1:])].sum()
        n += len(s) - 1
    return {"tokens": n, "nll": nll / n, "ppl": math.exp(nll / n), "seconds": time.time() - t0}


def has_mtp_output(dsv4):
    return "--mtp-out" in run([dsv4, "logits", "--help"])


def mtp_acceptance(dsv4, model, seqs, td):
    """Greedy draft acceptance: the MTP's argmax at t (hidden t, token t+1) equals the main model's argmax at
    t+1 (both predict token t+2), over the held-out text."""
    agree, text, n = 0, 0, 0
    for s in seqs:
        out, mout = os.path.join(td, "lg.npy"), os.path.join(td, "mtp.npy")
        run([dsv4, "logits", "-m", model, "--tokens", write_ids(td, s), "--out", out, "--mtp-out", mout])
        main, mtp = np.load(out).argmax(-1), np.load(mout).argmax(-1)
        draft = mtp[:len(s) - 2]
        agree += int((draft == main[1:len(s) - 1]).sum())
        text += int((draft == np.asarray(s[2:])).sum())
        n += len(draft)
    return {"positions": n, "acceptance_vs_main_greedy": agree / n, "top1_vs_text": text / n}


def passkey(dsv4, model, cases, lengths, per_cell, td):
    cells, t0 = {}, time.time()
    for c in cases:
        if c["length"] not in lengths:
            continue
        cell = cells.setdefault((c["length"], c["depth"]), [0, 0])
        if cell[1] >= per_cell:
            continue
        out = json.loads(run([dsv4, "generate", "-m", model, "--tokens", write_ids(td, c["prompt"]),
                              "-n", str(len(c["answer"]))]))
        cell[0] += int(out == c["answer"])
        cell[1] += 1
        print(f"  passkey L={c['length']} depth={c['depth']} key={c['key']}: {'ok' if out == c['answer'] else 'miss'}"
              f" ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    return {f"{L}@{d}": v for (L, d), v in sorted(cells.items())}


def samples(dsv4, model, prompts, n_new, td):
    res = []
    for p in prompts:
        ids = json.loads(run([dsv4, "generate", "-m", model, "--tokens", write_ids(td, p["ids"]), "-n", str(n_new)]))
        if 1 in ids:
            ids = ids[:ids.index(1)]
        text = run([dsv4, "detokenize", "-m", model, write_ids(td, ids, "gen.json")])
        res.append({"prompt": p["text"], "completion": text})
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsv4", default="build/dsv4")
    ap.add_argument("-m", "--model", default="models/dsv4-tiny")
    ap.add_argument("--bf16", help="the unquantized checkpoint (train.py's ckpt_bf16) for the comparison")
    ap.add_argument("--eval-dir", help="default: MODEL/eval")
    ap.add_argument("--lengths", default="1024,2048,4096,8192")
    ap.add_argument("--per-cell", type=int, default=2)
    ap.add_argument("--n-new", type=int, default=40)
    ap.add_argument("--skip", default="")
    ap.add_argument("--json")
    args = ap.parse_args()
    ev = args.eval_dir or os.path.join(args.model, "eval")
    skip = set(filter(None, args.skip.split(",")))
    load = lambda n: json.load(open(os.path.join(ev, n)))  # noqa: E731
    res = {"dsv4": args.dsv4, "model": args.model, "numerics": "dsv4 defaults (bf16 activations, fp8 KV, fp4 indexer)"}
    with tempfile.TemporaryDirectory() as td:
        if "ppl" not in skip:
            seqs = load("heldout_ids.json")
            res["ppl"] = {"shipped_fp8_fp4": heldout_ppl(args.dsv4, args.model, seqs, td)}
            if args.bf16:
                res["ppl"]["bf16"] = heldout_ppl(args.dsv4, args.bf16, seqs, td)
            print("\n| weights | held-out tokens | NLL (nats/token) | perplexity |\n|---|---|---|---|")
            for k, v in res["ppl"].items():
                print(f"| {k} | {v['tokens']} | {v['nll']:.4f} | {v['ppl']:.2f} |")
        if "mtp" not in skip:
            if has_mtp_output(args.dsv4):
                res["mtp"] = mtp_acceptance(args.dsv4, args.model, load("heldout_ids.json"), td)
                print(f"\nMTP draft acceptance (greedy, held-out text): {res['mtp']['acceptance_vs_main_greedy']:.3f}"
                      f" (MTP top-1 vs the text {res['mtp']['top1_vs_text']:.3f}, {res['mtp']['positions']} positions)")
            else:
                res["mtp"] = "this dsv4 build has no MTP logits output (dsv4 logits --mtp-out)"
                print("\nMTP: " + res["mtp"])
        if "passkey" not in skip:
            lengths = [int(x) for x in args.lengths.split(",")]
            pk = passkey(args.dsv4, args.model, load("passkey_cases.json"), lengths, args.per_cell, td)
            res["passkey"] = pk
            depths = sorted({float(k.split("@")[1]) for k in pk})
            print("\nPass-key accuracy (correct/total), context length x needle depth:\n")
            print("| length | " + " | ".join(f"depth {d}" for d in depths) + " | all |")
            print("|---" * (len(depths) + 2) + "|")
            for L in lengths:
                row = [pk.get(f"{L}@{d}", [0, 0]) for d in depths]
                tot = [sum(r[0] for r in row), sum(r[1] for r in row)]
                print(f"| {L} | " + " | ".join(f"{a}/{b}" for a, b in row) + f" | {tot[0]}/{tot[1]} |")
        if "samples" not in skip:
            res["samples"] = samples(args.dsv4, args.model, load("prompts.json"), args.n_new, td)
            print("\nGreedy completions:\n")
            for s in res["samples"]:
                print(f"* `{s['prompt']!r}` → `{s['completion']!r}`")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
