#!/usr/bin/env python3
"""Golden data for the dsv4 tokenizer, produced by the reference: Hugging Face `tokenizers`.

Runs where `tokenizers` is installed (the GPU machine; no network needed). Everything is deterministic:
the inputs come from a seeded generator over the fragments below, so a rerun gives the same files.

Writes into --out:
  golden.jsonl          one case per line {"name", "text", "ids"} (+ "decoded" when HF's decode differs from
                        text), encoded with Tokenizer.encode(text, add_special_tokens=False); the first line is
                        a header {"header": {...}} with the tokenizers version and the tokenizer's sha256.
  v4_fixture.jsonl      the same for the V4 test fixture (the V3 tokenizer + the V4 special tokens appended,
                        built by v4_fixture_tokenizer() below) on the official chat-encoding outputs and
                        special-token strings.
  unicode_classes.json  membership of every Unicode scalar value in \\p{L} \\p{M} \\p{N} \\p{P} \\p{S} \\p{Z}
                        \\s \\d \\w as the regex engine inside `tokenizers` (Oniguruma) sees it, as [lo, hi]
                        ranges. src/tokenizer/generated/unicode_classes.inc is generated from it
                        (--emit-inc).
  hf_bench.json         single-threaded encode throughput of HF tokenizers on the golden corpus.

Usage:
  gen_tokenizer_goldens.py --tokenizer-dir DIR --chat-dir tests/data/tokenizer/chat/official --out OUT
  gen_tokenizer_goldens.py --emit-inc unicode_classes.json > src/tokenizer/generated/unicode_classes.inc
  gen_tokenizer_goldens.py --inputs-only OUT.jsonl      (just the inputs; no tokenizers needed)
  gen_tokenizer_goldens.py --chat-vectors REF_DIR > tests/data/tokenizer/chat/vectors.jsonl
      runs DeepSeek's reference encoding (REF_DIR/encoding_dsv4.py, from the model repository's encoding/
      folder; not part of dsv4) on CHAT_CASES and PARSE_CASES below and writes inputs with expected outputs.
"""
import argparse
import hashlib
import json
import os
import random
import sys
import time

SEED = 20260707

PROSE = {
    "en": "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see what they've done—don't worry!",
    "zh": "深度求索公司发布了新的语言模型。今天天气很好，我们去公园散步吧！人工智能正在改变世界，你觉得呢？",
    "ja": "東京は日本の首都です。ひらがなとカタカナ、そして漢字を混ぜて書きます。ラーメンを食べに行きましょう！",
    "ko": "안녕하세요, 저는 학생입니다. 서울의 날씨가 오늘 아주 좋네요. 한국어는 아름다운 언어입니다.",
    "ar": "مرحبا بكم في عالم الذكاء الاصطناعي. اللغة العربية جميلة جداً، أليس كذلك؟ ١٢٣ كتاباً في المكتبة.",
    "hi": "नमस्ते, आप कैसे हैं? भारत एक विशाल देश है। हिन्दी भाषा देवनागरी लिपि में लिखी जाती है। ४५६ लोग आए।",
    "ru": "Привет, как дела? Москва — столица России. Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "de": "Größere Straßen führen über die Brücke. Die Bären aßen Äpfel und Öl; Grüße aus München!",
    "fr": "L'été dernier, nous sommes allés à la plage. Ça a été très agréable, n'est-ce pas ? Où êtes-vous ?",
    "es": "¿Dónde está la biblioteca? ¡El niño comió piña y jalapeños! Mañana será otro día, señor.",
    "pt": "Não há nada mais bonito que o pôr do sol em São Paulo. Ações e informações são importantes.",
    "el": "Καλημέρα σας! Η Ελλάδα έχει πλούσια ιστορία. Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "he": "שלום עולם! עברית נכתבת מימין לשמאל. האם אתה מדבר עברית? בְּרֵאשִׁית בָּרָא אֱלֹהִים",
    "th": "สวัสดีครับ ประเทศไทยมีอาหารอร่อยมากมาย ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "vi": "Tiếng Việt có nhiều dấu thanh điệu. Hà Nội là thủ đô của Việt Nam, phở rất ngon!",
    "tr": "İstanbul'da yaşıyorum. Türkçe çok güzel bir dildir; ğ, ş, ı ve ö harfleri vardır.",
    "pl": "Zażółć gęślą jaźń. Wrocław i Kraków to piękne miasta w Polsce.",
    "uk": "Україна — країна з багатою історією. Ґанок, їжак, єнот і ще багато слів.",
    "bn": "আমি বাংলায় গান গাই। বাংলাদেশের রাজধানী ঢাকা। ৭৮৯ টাকা দাম।",
    "ta": "வணக்கம்! தமிழ் ஒரு பழமையான மொழி. சென்னை தமிழ்நாட்டின் தலைநகரம்.",
    "fa": "سلام، حال شما چطور است؟ زبان فارسی بسیار زیباست. ۱۴۰۲ سال خوبی بود.",
    "sw": "Habari yako? Kiswahili ni lugha ya Afrika Mashariki. Asante sana, rafiki!",
    "ka": "გამარჯობა! საქართველო ლამაზი ქვეყანაა.",
    "am": "ሰላም ነው? አማርኛ በግዕዝ ፊደል ይጻፋል።",
    "hy": "Բարեւ Ձեզ։ Հայաստանը հին երկիր է։",
    "my": "မင်္ဂလာပါ။ မြန်မာဘာသာစကား",
    "km": "សួស្តី! ភាសាខ្មែរ",
}

CODE = [
    "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])\n",
    "#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto& x : v) x *= 2;\n\treturn v.size() > 2 ? 0 : -1;\n}\n",
    "const add = (a, b) => a + b;\nexport default function App() {\n  return <div className=\"app\">{add(1, 2)}</div>;\n}\n",
    "fn main() {\n    let s: Vec<u8> = b\"hello\".to_vec();\n    println!(\"{:?} {}\", s, s.len());\n}\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello, 世界\")\n}\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%smith%' ORDER BY id DESC LIMIT 10;\n",
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Test &amp; page</title></head>\n</html>\n",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\" | sed 's/a/b/g' >> out.log; done\n",
    "{\"name\": \"dsv4\", \"version\": \"0.1.0\", \"tags\": [\"llm\", \"inference\"], \"nested\": {\"a\": null, \"b\": 1.5e-3}}\n",
    "public class Hello {\n    public static void main(String[] args) {\n        System.out.println(\"Hi\\n\");\n    }\n}\n",
    "\\begin{equation}\n  E = mc^2 \\quad \\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2}\n\\end{equation}\n",
    "x = [1,2,3]\r\ny = {'a':1}\r\nif x and y:\r\n\tpass\r\n",
]

NUMBERS = ["0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "-0.001", "1e10", "6.022e23",
           "2024-11-15", "12:30:45", "1,000,000", "0xDEADBEEF", "192.168.0.1", "٣٤٥", "१२३", "一二三", "①②③",
           "Ⅻ", "½", "²³", "𝟙𝟚𝟛", "99999999999999999999", "v1.2.3-rc4", "+86 138 0000 0000"]

WHITESPACE = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", " \t \n", "\r",
              "\u00a0", "\u3000", "\u2003", "\u2028", "\u2029", "\u0085", "\u000b", "\u000c", "\u180e", "\u200b",
              "\ufeff", "        ", "\n\n\n\n"]

EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👩🏿‍💻", "🧑🏻‍🤝‍🧑🏼", "❤️", "🇯🇵🇺🇸", "✌🏾", "🤷‍♀️", "1️⃣", "🫠",
         "🐈‍⬛", "©", "™", "⌘", "🎉🎉🎉"]

COMBINING = ["e\u0301", "a\u0308\u0304", "Z\u0351\u0352\u0357\u035b\u0300\u0301\u0302", "\u0915\u094d\u0937",
             "n\u0303o", "\u0e01\u0e34\u0e4a", "\u05e9\u05c1\u05b8", "\u1100\u1161\u11a8", "o\u0338", "\u0301abc",
             " \u0301", "\u093f", "\u200d", "\ufe0f", "a\u200db", "\u0300\u0300\u0300"]

SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜▁pad▁｜>",
           "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜fim▁hole｜>",
           "<｜place▁holder▁no▁7｜>", "<｜User", "<｜User｜", "｜User｜>", "<|User|>", "<think>", "</think>",
           "｜DSML｜", "<｜DSML｜invoke name=\"f\">", "<tool_result>", "<｜latest_reminder｜>",
           "<｜begin▁of▁sentence｜><｜begin▁of▁sentence｜>", "<<｜User｜>>"]

PUNCT = ["...", "!?", "—", "–", "«»", "“quoted”", "‘x’", "()", "[]{}", "@#$%^&*", "~`|\\", "¿¡", "、。", "，！？",
         "''", "'s", "'T", "'ll", ".com", "-->", "::", "<=>", "###", "$100", "€5", "¥300", "%d", "\\n"]

# Code points that sit on the edges of the regex classes, including characters assigned only in recent
# Unicode versions (where regex engines with older tables disagree).
EDGE_CODEPOINTS = [0x0, 0x1, 0x1f, 0x7f, 0x80, 0x85, 0x9f, 0xa0, 0xad, 0x2bf, 0x300, 0x36f, 0x37e, 0x387,
                   0x5be, 0x600, 0x61c, 0x640, 0x660, 0x6dd, 0x897, 0x900, 0x9f4, 0xb72, 0xcf3, 0xece, 0x1680,
                   0x1c89, 0x1b4e, 0x1b7f, 0x2000, 0x200a, 0x200b, 0x200c, 0x200d, 0x200e, 0x2027, 0x202f, 0x205f,
                   0x2060, 0x20c1, 0x2427, 0x2ffc, 0x3000, 0x3007, 0x303f, 0x3040, 0x3097, 0x3099, 0x309b, 0x309d,
                   0x309f, 0x30a0, 0x30fb, 0x30fc, 0x30ff, 0x31e4, 0x4dbf, 0x4e00, 0x9fa5, 0x9fa6, 0x9fff, 0xa7cb,
                   0xa7dc, 0xd7ff, 0xe000, 0xf8ff, 0xfdd0, 0xfe0f, 0xfeff, 0xff10, 0xff5c, 0xfff9, 0xfffd, 0xffff,
                   0x10000, 0x10d40, 0x10d4e, 0x10d69, 0x10d6e, 0x113d4, 0x11f5a, 0x16d40, 0x18cff, 0x1d7ce,
                   0x1e4d0, 0x1f3fb, 0x1f3ff, 0x1fbf0, 0x1fbfa, 0x1ff80, 0x20000, 0x2a6df, 0x2ebf0, 0x2ee5d,
                   0x31350, 0x323af, 0xe0001, 0xe0020, 0xe007f, 0xe0100, 0xf0000, 0x10fffd, 0x10ffff]


def random_scalar(rng):
    while True:
        r = rng.random()
        if r < 0.3:
            c = rng.randint(0x20, 0x7e)
        elif r < 0.4:
            c = rng.choice(EDGE_CODEPOINTS)
        elif r < 0.55:
            c = rng.randint(0x80, 0x2fff)
        elif r < 0.7:
            c = rng.randint(0x3000, 0xffff)
        elif r < 0.8:
            c = rng.randint(0x10000, 0x1ffff)
        else:
            c = rng.randint(0, 0x10ffff)
        if not 0xd800 <= c <= 0xdfff:
            return chr(c)


def fragment(rng):
    kind = rng.random()
    if kind < 0.30:
        text = rng.choice(list(PROSE.values()))
        a = rng.randint(0, len(text) - 1)
        return text[a:a + rng.randint(1, 80)]
    if kind < 0.42:
        text = rng.choice(CODE)
        a = rng.randint(0, len(text) - 1)
        return text[a:a + rng.randint(1, 120)]
    pools = [NUMBERS, WHITESPACE, EMOJI, COMBINING, SPECIAL, PUNCT]
    if kind < 0.85:
        return rng.choice(rng.choice(pools))
    return "".join(random_scalar(rng) for _ in range(rng.randint(1, 12)))


def make_inputs():
    """(name, text) pairs: whole samples, then seeded random mixtures, then long inputs."""
    rng = random.Random(SEED)
    cases = []
    for lang, text in PROSE.items():
        cases.append(("prose_" + lang, text))
    for i, text in enumerate(CODE):
        cases.append(("code_%d" % i, text))
    for group, pool in (("num", NUMBERS), ("ws", WHITESPACE), ("emoji", EMOJI), ("comb", COMBINING),
                        ("special", SPECIAL), ("punct", PUNCT)):
        for i, text in enumerate(pool):
            cases.append(("%s_%d" % (group, i), text))
            cases.append(("%s_%d_ctx" % (group, i), "a" + text + " b" + text + "1" + text + "\n"))
    for c in EDGE_CODEPOINTS:
        ch = chr(c)
        cases.append(("edge_%x" % c, ch + " " + ch + "a" + ch + "1" + ch + ch + "\n" + ch + "，" + ch))
    while len(cases) < 5400:
        n = rng.randint(1, 6)
        text = "".join(fragment(rng) for _ in range(n))
        cases.append(("mix_%d" % len(cases), text))
    while len(cases) < 6000:
        cases.append(("rand_%d" % len(cases), "".join(random_scalar(rng) for _ in range(rng.randint(1, 40)))))
    cases.extend(long_inputs(rng))
    return cases


def long_inputs(rng):
    prose = []
    while sum(len(p.encode()) for p in prose) < 100_000:
        prose.append(rng.choice(list(PROSE.values())))
        prose.append(rng.choice(["\n", " ", "\n\n", "\t", " 12345 ", "\r\n"]))
    code = []
    while sum(len(c.encode()) for c in code) < 100_000:
        code.append(rng.choice(CODE))
    patho = "a" * 20000 + " " * 5000 + "1" * 9000 + "\n" * 3000 + "ab" * 5000 + "😀" * 2000 + "é" * 3000
    return [("long_prose", "".join(prose)), ("long_code", "".join(code)), ("long_patho", patho)]


def v4_fixture_tokenizer(base):
    """The V3 tokenizer with DeepSeek-V4's added tokens appended after 128814 (spec §11.1). Ids whose string is
    not known are filled with reserved names, so the known ones land on their V4 ids."""
    known = {128821: "<think>", 128822: "</think>", 128825: "｜DSML｜", 128828: "<｜latest_reminder｜>",
             128829: "<｜action｜>", 128830: "<｜query｜>", 128831: "<｜authority｜>", 128832: "<｜domain｜>",
             128836: "<｜title｜>", 128844: "<｜extracted_url｜>", 128845: "<｜read_url｜>"}
    j = json.loads(json.dumps(base))
    for i in range(128815, 128846):
        content = known.get(i, "<｜v4_reserved_%d｜>" % i)
        j["added_tokens"].append({"id": i, "content": content, "single_word": False, "lstrip": False,
                                  "rstrip": False, "normalized": False, "special": True})
    return j


def v4_inputs(chat_dir):
    cases = []
    for i in range(1, 5):
        with open(os.path.join(chat_dir, "test_output_%d.txt" % i), encoding="utf-8") as f:
            cases.append(("official_output_%d" % i, f.read()))
    cases += [("think", "<think>reasoning</think>answer"), ("dsml", "<｜DSML｜invoke name=\"get\">\n"),
              ("dsml_bare", "a｜DSML｜b｜DSML｜"), ("reminder", "<｜latest_reminder｜>2026-01-01"),
              ("tasks", "q<｜query｜><｜action｜><｜title｜><｜read_url｜><｜extracted_url｜>u"),
              ("think_partial", "<think</think><thin>k>"), ("chat_mode", "<｜User｜>hi<｜Assistant｜></think>")]
    return cases


def class_ranges(tokenizers):
    from tokenizers import pre_tokenizers, Regex
    cps = [c for c in range(0x110000) if not 0xd800 <= c <= 0xdfff]
    text = "".join(chr(c) for c in cps)
    out = {}
    for name, pat in (("L", r"\p{L}"), ("M", r"\p{M}"), ("N", r"\p{N}"), ("P", r"\p{P}"), ("S", r"\p{S}"),
                      ("Z", r"\p{Z}"), ("s", r"\s"), ("d", r"\d"), ("w", r"\w")):
        split = pre_tokenizers.Split(Regex(pat), behavior="removed")
        non = set()
        for piece, _ in split.pre_tokenize_str(text):
            non.update(ord(ch) for ch in piece)
        ranges, start, prev = [], None, None
        for c in cps:
            if c in non:
                continue
            if start is not None and c == prev + 1:
                prev = c
                continue
            if start is not None:
                ranges.append([start, prev])
            start = prev = c
        if start is not None:
            ranges.append([start, prev])
        out[name] = ranges
    return out


def encode_cases(tok, cases):
    lines = []
    for name, text in cases:
        ids = tok.encode(text, add_special_tokens=False).ids
        rec = {"name": name, "text": text, "ids": ids}
        decoded = tok.decode(ids, skip_special_tokens=False)
        if decoded != text:
            rec["decoded"] = decoded
        lines.append(json.dumps(rec, ensure_ascii=False))
    return lines


def bench(tok, texts):
    """Single-threaded encode throughput (MB/s of UTF-8 input): per input, and the corpus as one string."""
    total = sum(len(t.encode()) for t in texts)
    joined = "\n".join(texts)
    res = {"corpus_bytes": total, "n_inputs": len(texts)}
    for mode in ("per_input", "joined"):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            if mode == "per_input":
                for t in texts:
                    tok.encode(t, add_special_tokens=False)
            else:
                tok.encode(joined, add_special_tokens=False)
            times.append(time.perf_counter() - t0)
        res[mode] = {"first_mb_s": total / times[0] / 1e6, "best_mb_s": total / min(times) / 1e6,
                     "seconds": times}
    return res


def emit_inc(path):
    with open(path) as f:
        classes = json.load(f)
    print("// Generated by tools/gen_tokenizer_goldens.py --emit-inc from the regex classes of HF tokenizers")
    print("// (Oniguruma); do not edit. One table of inclusive [lo, hi] code point ranges per class.")
    for name in ("L", "M", "N", "P", "S", "Z", "s", "d", "w"):
        ranges = classes[name]
        print("inline constexpr CodepointRange kClass_%s[] = {" % name)
        row = []
        for lo, hi in ranges:
            row.append("{0x%x, 0x%x}," % (lo, hi))
            if len(row) == 6:
                print("    " + " ".join(row))
                row = []
        if row:
            print("    " + " ".join(row))
        print("};")


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city — 天气",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer",
                   "minimum": 1, "maximum": 1.5e+20}, "units": {"enum": ["c", "f"]}}, "required": ["city"]}}}
SEARCH_TOOL = {"type": "function", "function": {"name": "search", "description": "Search\tthe web\n",
               "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "k": {"type": "number",
                              "default": 1.0, "eps": 1e-05}}}}}


def tc(i, name, args):
    return {"id": "call_%d" % i, "type": "function", "function": {"name": name, "arguments": args}}


CHAT_CASES = [
    ("chat_basic", [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}], {}),
    ("thinking_basic", [{"role": "user", "content": "hi"}], {"thinking_mode": "thinking"}),
    ("thinking_max", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
     {"thinking_mode": "thinking", "reasoning_effort": "max"}),
    ("thinking_max_no_system", [{"role": "user", "content": "2+2?"}],
     {"thinking_mode": "thinking", "reasoning_effort": "max"}),
    ("thinking_high", [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}],
     {"thinking_mode": "thinking", "reasoning_effort": "high"}),
    ("chat_max_ignored", [{"role": "user", "content": "q"}], {"reasoning_effort": "max"}),
    ("drop_rule", [{"role": "user", "content": "q1"},
                   {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
                   {"role": "user", "content": "q2"},
                   {"role": "assistant", "content": "a2", "reasoning_content": "r2"},
                   {"role": "user", "content": "q3"}], {"thinking_mode": "thinking"}),
    ("drop_rule_last_assistant", [{"role": "user", "content": "q1"},
                                  {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
                                  {"role": "user", "content": "q2"},
                                  {"role": "assistant", "content": "a2", "reasoning_content": "r2"}],
     {"thinking_mode": "thinking"}),
    ("keep_thinking", [{"role": "user", "content": "q1"},
                       {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
                       {"role": "user", "content": "q2"}], {"thinking_mode": "thinking", "drop_thinking": False}),
    ("chat_multi_turn", [{"role": "system", "content": "S"}, {"role": "user", "content": "q1"},
                         {"role": "assistant", "content": "a1", "reasoning_content": "ignored"},
                         {"role": "user", "content": "q2"}], {}),
    ("tools_multi_turn", [{"role": "system", "content": "You are helpful.", "tools": [WEATHER_TOOL, SEARCH_TOOL]},
                          {"role": "user", "content": "Weather in Paris and Tokyo?"},
                          {"role": "assistant", "content": "", "reasoning_content": "Two calls.",
                           "tool_calls": [tc(1, "get_weather", "{\"city\": \"Paris\", \"days\": 2}"),
                                          tc(2, "get_weather", "{\"city\": \"東京\", \"units\": \"c\"}")]},
                          {"role": "tool", "tool_call_id": "call_2", "content": "{\"t\": 18}"},
                          {"role": "tool", "tool_call_id": "call_1", "content": "{\"t\": 21}"},
                          {"role": "assistant", "content": "Paris 21, Tokyo 18.", "reasoning_content": "Done."},
                          {"role": "user", "content": "Thanks! And search news."}],
     {"thinking_mode": "thinking"}),
    ("tools_chat_mode", [{"role": "system", "content": "", "tools": [SEARCH_TOOL]},
                         {"role": "user", "content": "find x"},
                         {"role": "assistant", "content": None,
                          "tool_calls": [tc(1, "search", "{\"q\": \"x\", \"k\": 3, \"opts\": {\"a\": [1, 2.5, "
                                            "true, null]}, \"ratio\": 1.0, \"tiny\": 1e-7}")]},
                         {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "r1"},
                                                                                 {"type": "image", "url": "u"},
                                                                                 {"type": "text", "text": "r2"}]},
                         {"role": "user", "content": "more"}], {}),
    ("tool_args_not_json", [{"role": "user", "content": "q"},
                            {"role": "assistant", "content": "", "tool_calls": [tc(1, "f", "not json {")]},
                            {"role": "tool", "tool_call_id": "call_1", "content": "ok"}], {}),
    ("developer_tools_format", [{"role": "system", "content": "sys"},
                                {"role": "latest_reminder", "content": "2026-01-01, Paris"},
                                {"role": "developer", "content": "Search this.", "tools": [SEARCH_TOOL],
                                 "response_format": {"type": "json_schema", "schema": {"type": "object"}}}],
     {"thinking_mode": "thinking"}),
    ("system_response_format", [{"role": "system", "content": "S",
                                 "response_format": {"type": "json_object", "note": "ünïcode \"q\" \u0001"}},
                                {"role": "user", "content": "give json"}], {}),
    ("latest_reminder_between", [{"role": "user", "content": "q"}, {"role": "latest_reminder", "content": "R"},
                                 {"role": "assistant", "content": "a"}], {"thinking_mode": "thinking"}),
    ("task_action_chat", [{"role": "user", "content": "weather?", "task": "action"}], {}),
    ("task_action_thinking", [{"role": "user", "content": "weather?", "task": "action"}],
     {"thinking_mode": "thinking"}),
    ("task_query", [{"role": "user", "content": "news", "task": "query"}], {}),
    ("task_authority", [{"role": "user", "content": "x", "task": "authority"}], {}),
    ("task_domain", [{"role": "user", "content": "x", "task": "domain"}], {"thinking_mode": "thinking"}),
    ("task_read_url", [{"role": "user", "content": "see <｜extracted_url｜>http://a", "task": "read_url"}], {}),
    ("task_title", [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi", "task": "title"}],
     {"thinking_mode": "thinking"}),
    ("task_title_answer", [{"role": "user", "content": "hello"},
                           {"role": "assistant", "content": "hi", "task": "title"},
                           {"role": "assistant", "content": "Greeting"}], {"thinking_mode": "thinking"}),
    ("wo_eos", [{"role": "user", "content": "q"},
                {"role": "assistant", "content": "partial", "reasoning_content": "r", "wo_eos": True}],
     {"thinking_mode": "thinking"}),
    ("user_user_merge", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], {}),
    ("no_bos", [{"role": "user", "content": "q"}], {"add_default_bos_token": False}),
    ("empty_and_null_content", [{"role": "system", "content": None}, {"role": "user", "content": ""}], {}),
    ("unicode_control", [{"role": "user", "content": "tab\there\r\nnew 😀 é"}], {"thinking_mode": "thinking"}),
]

CONTEXT_CASES = [
    ("context_thinking", [{"role": "user", "content": "q1"},
                          {"role": "assistant", "content": "a1", "reasoning_content": "r1"}],
     [{"role": "user", "content": "q2"}], {"thinking_mode": "thinking"}),
    ("context_tools", [{"role": "system", "content": "s", "tools": [SEARCH_TOOL]}, {"role": "user", "content": "q"},
                       {"role": "assistant", "content": "", "tool_calls": [tc(1, "search", "{\"q\": \"z\"}"),
                                                                           tc(2, "search", "{}")]}],
     [{"role": "tool", "tool_call_id": "call_2", "content": "B"}, {"role": "tool", "tool_call_id": "call_1",
                                                                   "content": "A"}], {"thinking_mode": "thinking"}),
]

DS = "｜DSML｜"
EOS = "<｜end▁of▁sentence｜>"
PARSE_CASES = [
    ("p_thinking", "thinking", "Simple.</think>2 + 2 = 4." + EOS),
    ("p_chat", "chat", "Hello there." + EOS),
    ("p_empty", "chat", EOS),
    ("p_tools", "thinking", "Need weather.</think>\n\n<" + DS + "tool_calls>\n<" + DS + "invoke name=\"get_weather\">\n<"
     + DS + "parameter name=\"city\" string=\"true\">Paris \"FR\"</" + DS + "parameter>\n<" + DS
     + "parameter name=\"days\" string=\"false\">2</" + DS + "parameter>\n</" + DS + "invoke>\n<" + DS
     + "invoke name=\"search\">\n<" + DS + "parameter name=\"q\" string=\"true\">a\nb</" + DS + "parameter>\n</"
     + DS + "invoke>\n</" + DS + "tool_calls>" + EOS),
    ("p_tools_no_params", "chat", "Let me check.\n\n<" + DS + "tool_calls>\n<" + DS + "invoke name=\"now\">\n</" + DS
     + "invoke>\n</" + DS + "tool_calls>" + EOS),
    ("p_missing_think_end", "thinking", "reasoning without end" + EOS),
    ("p_missing_eos", "chat", "truncated answer"),
    ("p_bad_param", "chat", "x\n\n<" + DS + "tool_calls>\n<" + DS + "invoke name=\"f\">\n<" + DS
     + "parameter name=\"a\" string=\"maybe\">1</" + DS + "parameter>\n</" + DS + "invoke>\n</" + DS
     + "tool_calls>" + EOS),
    ("p_dup_param", "chat", "\n\n<" + DS + "tool_calls>\n<" + DS + "invoke name=\"f\">\n<" + DS
     + "parameter name=\"a\" string=\"true\">1</" + DS + "parameter>\n<" + DS + "parameter name=\"a\" "
     "string=\"true\">2</" + DS + "parameter>\n</" + DS + "invoke>\n</" + DS + "tool_calls>" + EOS),
    ("p_after_tools", "chat", "\n\n<" + DS + "tool_calls>\n<" + DS + "invoke name=\"f\">\n</" + DS
     + "invoke>\n</" + DS + "tool_calls>junk" + EOS),
    ("p_truncated_tools", "chat", "ok\n\n<" + DS + "tool_calls>\n<" + DS + "invoke name=\"f\">\n<" + DS
     + "parameter name=\"a\" string=\"true\">1"),
    ("p_special_in_content", "chat", "a<think>b" + EOS),
]


def chat_vectors(ref_dir):
    sys.path.insert(0, ref_dir)
    import copy
    import encoding_dsv4 as ref
    for name, messages, opts in CHAT_CASES:
        o = {"thinking_mode": "chat", **opts}
        prompt = ref.encode_messages(copy.deepcopy(messages), **o)
        print(json.dumps({"kind": "encode", "name": name, "messages": messages, "options": o, "prompt": prompt},
                         ensure_ascii=False))
    for name, context, messages, opts in CONTEXT_CASES:
        o = {"thinking_mode": "chat", **opts}
        prompt = ref.encode_messages(copy.deepcopy(messages), context=copy.deepcopy(context), **o)
        print(json.dumps({"kind": "encode", "name": name, "context": context, "messages": messages, "options": o,
                          "prompt": prompt}, ensure_ascii=False))
    for name, mode, text in PARSE_CASES:
        rec = {"kind": "parse", "name": name, "thinking_mode": mode, "text": text}
        try:
            rec["result"] = ref.parse_message_from_completion_text(text, thinking_mode=mode)
        except (AssertionError, ValueError) as e:
            rec["error"] = str(e) or type(e).__name__
        print(json.dumps(rec, ensure_ascii=False))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer-dir")
    ap.add_argument("--chat-dir")
    ap.add_argument("--out")
    ap.add_argument("--emit-inc")
    ap.add_argument("--inputs-only")
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--chat-vectors")
    args = ap.parse_args()
    if args.chat_vectors:
        chat_vectors(args.chat_vectors)
        return
    if args.emit_inc:
        emit_inc(args.emit_inc)
        return
    cases = make_inputs()
    if args.inputs_only:
        with open(args.inputs_only, "w", encoding="utf-8") as f:
            for name, text in cases:
                f.write(json.dumps({"name": name, "text": text}, ensure_ascii=False) + "\n")
        return
    import tokenizers
    from tokenizers import Tokenizer
    os.makedirs(args.out, exist_ok=True)
    tok_path = os.path.join(args.tokenizer_dir, "tokenizer.json")
    with open(tok_path, "rb") as f:
        raw = f.read()
    header = {"tokenizers": tokenizers.__version__, "python": sys.version.split()[0],
              "tokenizer_sha256": hashlib.sha256(raw).hexdigest(), "seed": SEED,
              "call": "Tokenizer.encode(text, add_special_tokens=False)"}
    tok = Tokenizer.from_str(raw.decode("utf-8"))
    with open(os.path.join(args.out, "golden.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for line in encode_cases(tok, cases):
            f.write(line + "\n")
    v4 = Tokenizer.from_str(json.dumps(v4_fixture_tokenizer(json.loads(raw)), ensure_ascii=False))
    with open(os.path.join(args.out, "v4_fixture.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for line in encode_cases(v4, v4_inputs(args.chat_dir)):
            f.write(line + "\n")
    with open(os.path.join(args.out, "unicode_classes.json"), "w") as f:
        json.dump(class_ranges(tokenizers), f)
    if not args.skip_bench:
        res = bench(Tokenizer.from_str(raw.decode("utf-8")), [t for _, t in cases])
        res["header"] = header
        res["cpu"] = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" :\t")
        with open(os.path.join(args.out, "hf_bench.json"), "w") as f:
            json.dump(res, f, indent=1)
        print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
