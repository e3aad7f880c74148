#!/usr/bin/env python3
"""Generates tests/data/server/tokenizer.json and tokenizer_config.json: a tiny byte-level BPE tokenizer for the
server tests, whose ids fit the golden checkpoints' vocab_size of 512.

Ids: 0..9 the DeepSeek-V4 special tokens (0 = BOS and 1 = EOS, as config.json's bos_token_id / eos_token_id),
10..17 the "script" tokens (non-special added tokens whose texts are a reasoning sentence, an answer, and the
pieces of a DSML tool call: tests/e2e/node/scripted_model.mjs builds a model that emits them in order),
18..273 the 256 ByteLevel byte tokens, 274..511 BPE merges learned from the text below (238 merges). The
pre-tokenizer and decoder are the ones of the DeepSeek tokenizer. Deterministic: rerunning gives the same files.
Usage: python3 tests/data/server/make_tokenizer.py   (writes next to itself)
"""
import collections
import json
import os
import re

SPECIALS = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>",
            "｜DSML｜", "<｜latest_reminder｜>", "<｜▁pad▁｜>", "<｜tool▁calls▁begin｜>"]
SCRIPT = ["The user asks about the weather, so I will call a tool.", "Let me check the weather.",
          "\n\n<｜DSML｜tool_calls>\n", "<｜DSML｜invoke name=\"get_weather\">\n",
          "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n", "</｜DSML｜invoke>\n",
          "</｜DSML｜tool_calls>", "It is sunny in Paris."]
VOCAB_SIZE = 512
# The pre-tokenizer of the DeepSeek tokenizer (V3 and V4).
PRE_TOKENIZER = json.loads(r'''{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false}, {"type": "Split", "pattern": {"Regex": "[一-龥぀-ゟ゠-ヿ]+"}, "behavior": "Isolated", "invert": false}, {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}''')
CORPUS = """The quick brown fox jumps over the lazy dog. Hello world! This is a test of the server. The model
answers the question of the user, and the assistant calls a tool when it needs the weather in a city.
What is the weather in Paris today? It is sunny and the temperature is twenty degrees. Please tell me a story
about a robot that learns to paint. Once upon a time there was a small robot in a big city. The robot wanted to
understand the world, so it read every book in the library and then it started to write its own stories.
function get_weather(city) returns the current weather; the arguments are a JSON object with the name of the
city and the unit of the temperature. The server streams tokens to the client as server-sent events.
""" * 4


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    b2u = bytes_to_unicode()
    vocab = {s: i for i, s in enumerate(SPECIALS + SCRIPT)}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    words = collections.Counter(re.findall(r" ?[A-Za-z]+| ?[0-9]|\s+|[^\sA-Za-z0-9]+", CORPUS))
    seqs = {w: [b2u[b] for b in w.encode()] for w in words}
    merges = []
    while len(vocab) < VOCAB_SIZE:
        pairs = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
        for w in words:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    here = os.path.dirname(os.path.abspath(__file__))
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": i < len(SPECIALS)} for i, s in enumerate(SPECIALS + SCRIPT)],
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": PRE_TOKENIZER,
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges},
    }
    with open(os.path.join(here, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
        f.write("\n")
    cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": SPECIALS[0], "eos_token": SPECIALS[1],
           "model_max_length": 4096, "tokenizer_class": "LlamaTokenizerFast"}
    with open(os.path.join(here, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(vocab)} tokens, {len(merges)} merges")


if __name__ == "__main__":
    main()
