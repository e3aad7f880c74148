"""Tokenizer and training data for the embedded default model.

Tokenizer: byte-level BPE trained with HF `tokenizers` on the training documents, with DeepSeek-V3/V4's
pre-tokenizer (the three Split regexes, then ByteLevel without regex; spec §11.1) and the DeepSeek-V4 special
tokens as added tokens (ids 0.. in SPECIAL_TOKENS order: BOS 0, EOS 1, pad 2 as in the real model).
Documents: plain (BOS text EOS) and, for a fraction, in the DeepSeek-V4 chat encoding (spec §11.2, chat mode:
<｜User｜>q<｜Assistant｜></think>answer<｜end▁of▁sentence｜>).
Pass-key tasks: a key sentence at a chosen depth in filler text, asked for at the end.
"""
import json
import re

import numpy as np

BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
SPECIAL_TOKENS = [BOS, EOS, PAD, USER, ASSISTANT, "<think>", "</think>", "｜DSML｜", "<｜latest_reminder｜>",
                  "<｜action｜>", "<｜query｜>", "<｜authority｜>", "<｜domain｜>", "<｜title｜>", "<｜extracted_url｜>",
                  "<｜read_url｜>"]

# The DeepSeek-V3/V4 pre-tokenizer regexes, byte-identical to the engine's (src/tokenizer/deepseek_split.cpp).
DIGITS_RE = "\\p{N}{1,3}"
CJK_RE = "[一-龥぀-ゟ゠-ヿ]+"
MAIN_RE = ("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
           "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+")

NEEDLE = " The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = " What is the pass key? The pass key is"
ANSWER = " {key}"


def train_tokenizer(texts, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(DIGITS_RE), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(CJK_RE), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(MAIN_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def tokenizer_config():
    """tokenizer_config.json as DeepSeek ships it (spec §11.1), pointing at our special tokens."""
    def added(s):
        return {"__type": "AddedToken", "content": s, "lstrip": False, "normalized": True, "rstrip": False,
                "single_word": False}
    return {"add_bos_token": False, "add_eos_token": False, "bos_token": added(BOS), "eos_token": added(EOS),
            "clean_up_tokenization_spaces": False, "legacy": True, "model_max_length": 1048576,
            "pad_token": added(EOS), "sp_model_kwargs": {}, "unk_token": None,
            "tokenizer_class": "PreTrainedTokenizerFast"}


def chat(user, answer):
    return f"{BOS}{USER}{user}{ASSISTANT}</think>{answer}{EOS}"


def format_docs(rows, chat_frac, rng):
    """Corpus rows -> training strings (BOS text EOS, or a chat turn for a chat_frac fraction)."""
    out = []
    for r in rows:
        t, src = r["text"], r["src"]
        if rng.random() < chat_frac:
            if src == "kjv":
                book = t.split("\n", 1)[0]
                out.append(chat(f"Read me {book} from the King James Bible.", t.split("\n\n", 1)[-1]))
            elif src == "devil":
                word = t.split(",", 1)[0].split(".", 1)[0].strip().title()
                out.append(chat(f"What does the Devil's Dictionary say about {word}?", t))
            elif src == "jargon":
                term = t.split(",", 1)[0].split(".", 1)[0].strip()
                out.append(chat(f"What does \"{term}\" mean in hacker jargon?", t))
            else:
                q = ["Tell me a fortune.", "Say something wise.", "Tell me something funny.",
                     "Give me a quotation."][int(rng.integers(4))]
                out.append(chat(q, t))
        else:
            out.append(f"{BOS}{t}{EOS}")
    return out


def encode_all(tok, texts):
    enc = tok.encode_batch(texts, add_special_tokens=False)
    return [np.asarray(e.ids, dtype=np.int32) for e in enc]


def strip_numerals(text):
    """Filler for the v2 pass-key task (train.py --passkey-v2): the text without numerals (KJV verse numbers,
    dates, ...), so that the key is the only number in its context, as in the classic pass-key test."""
    t = "".join(c for c in text if not c.isnumeric())
    return re.sub(r"[ ]{2,}", " ", re.sub(r"(?m)^ +", "", t))


class PassKey:
    """kind "5digit": the first run's keys 10000-99999 (2-4 tokens under the \\p{N}{1,3} split + BPE);
    kind "num1tok": keys 10-99 whose digits are ONE token of the vocabulary (the v2 task; answer = " " + that
    token), falling back to 0-9 for the CPU test's byte tokenizer."""

    def __init__(self, tok, kind="5digit"):
        self.tok = tok
        self.kind = kind
        if kind == "num1tok":
            self.keys = [k for k in range(10, 100) if len(self.ids(str(k))) == 1] or list(range(10))
        self.last_needle = None  # (start, length) of the needle in the last built sequence

    def new_key(self, rng):
        if self.kind == "num1tok":
            return self.keys[int(rng.integers(len(self.keys)))]
        return int(rng.integers(10000, 100000))

    def ids(self, s):
        return self.tok.encode(s, add_special_tokens=False).ids

    def sample(self, filler, L, depth, key):
        """-> (ids [L], answer positions, answer ids). filler: 1-D int array of plain text ids."""
        needle = self.ids(NEEDLE.format(key=key))
        q = self.ids(QUESTION)
        ans = self.ids(ANSWER.format(key=key)) + self.ids(".")
        n_fill = L - 1 - len(needle) - len(q) - len(ans)
        return needle, q, ans, n_fill

    def build(self, filler, L, depth, key, rng):
        needle, q, ans, n_fill = self.sample(filler, L, depth, key)
        start = int(rng.integers(0, len(filler) - n_fill))
        fill = filler[start:start + n_fill].tolist()
        at = int(round(depth * n_fill))
        seq = [0] + fill[:at] + needle + fill[at:] + q + ans
        assert len(seq) == L
        self.last_needle = (1 + at, len(needle))
        return np.asarray(seq, dtype=np.int64), L - len(ans), ans


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
