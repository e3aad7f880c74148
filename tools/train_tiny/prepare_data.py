#!/usr/bin/env python3
"""Corpus for the embedded default model (models/dsv4-tiny): free English text from Debian packages, cleaned,
de-duplicated and split into train / held-out documents.

Runs on the CPU machine with only the Python standard library. Needs these Debian packages (the script checks
and names any that are missing; install them with apt-get):
  bible-kjv bible-kjv-text   King James Version (1611, public domain), extracted with the `bible` program
  fortunes fortunes-min      fortune cookie files (BSD-licensed package; files listed in ENGLISH_FORTUNES)
  fortunes-bofh-excuses      BOFH excuses
  jargon-text                The Jargon File 4.4.7 (public domain)
  dict-devil                 Ambrose Bierce, The Devil's Dictionary (public domain)

Writes into --out (default .traindata/, git-ignored):
  corpus.jsonl   one document per line {"src": SOURCE, "split": "train"|"heldout", "text": TEXT}
  manifest.json  package versions, per-source counts, sha256 of corpus.jsonl, the cleaning rules' version

Invariants: deterministic (sorted inputs, the held-out choice is a hash of the document text); documents
are exact-de-duplicated after normalisation (lower case, letters and digits only), across sources too.
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import unicodedata

CLEANING_VERSION = 1
HELDOUT_PERMILLE = 25  # 2.5 % of documents, chosen by hash

FORTUNE_DIR = "/usr/share/games/fortunes"
# English fortune files whose text is prose or verse (skipped: ascii-art, translate-me, ethnic, men-women,
# and the language sub-folders).
ENGLISH_FORTUNES = [
    "art", "bofh-excuses", "computers", "cookie", "debian", "definitions", "disclaimer", "drugs", "education",
    "food", "fortunes", "goedel", "humorists", "kids", "knghtbrd", "law", "linux", "linuxcookie", "literature",
    "love", "magic", "medicine", "miscellaneous", "news", "paradoxum", "people", "perl", "pets", "platitudes",
    "politics", "pratchett", "riddles", "science", "songs-poems", "sports", "startrek", "tao", "wisdom", "work",
    "zippy",
]
PACKAGES = ["bible-kjv", "bible-kjv-text", "fortunes", "fortunes-min", "fortunes-bofh-excuses", "jargon-text",
            "dict-devil"]
LICENCES = {
    "kjv": "King James Version (1611): public domain (bible-kjv-text copyright file: 'copyright ... is expired')",
    "fortunes": "fortune-mod data files (fortunes, fortunes-min, fortunes-bofh-excuses): distributed in Debian "
                "main under the BSD licence of fortune-mod; quotations are short excerpts",
    "jargon": "The Jargon File 4.4.7, Eric S. Raymond et al.: public domain (jargon-text copyright file)",
    "devil": "Ambrose Bierce, The Devil's Dictionary (1911): public domain, copyright expired (dict-devil)",
}

KJV_BOOKS = {
    "Ge": "Genesis", "Exo": "Exodus", "Lev": "Leviticus", "Num": "Numbers", "Deu": "Deuteronomy",
    "Josh": "Joshua", "Jdgs": "Judges", "Ruth": "Ruth", "1Sm": "1 Samuel", "2Sm": "2 Samuel", "1Ki": "1 Kings",
    "2Ki": "2 Kings", "1Chr": "1 Chronicles", "2Chr": "2 Chronicles", "Ezra": "Ezra", "Neh": "Nehemiah",
    "Est": "Esther", "Job": "Job", "Psa": "Psalms", "Prv": "Proverbs", "Eccl": "Ecclesiastes",
    "SSol": "Song of Solomon", "Isa": "Isaiah", "Jer": "Jeremiah", "Lam": "Lamentations", "Eze": "Ezekiel",
    "Dan": "Daniel", "Hos": "Hosea", "Joel": "Joel", "Amos": "Amos", "Obad": "Obadiah", "Jonah": "Jonah",
    "Mic": "Micah", "Nahum": "Nahum", "Hab": "Habakkuk", "Zep": "Zephaniah", "Hag": "Haggai", "Zec": "Zechariah",
    "Mal": "Malachi", "Mat": "Matthew", "Mark": "Mark", "Luke": "Luke", "John": "John", "Acts": "Acts",
    "Rom": "Romans", "1Cor": "1 Corinthians", "2Cor": "2 Corinthians", "Gal": "Galatians", "Eph": "Ephesians",
    "Phi": "Philippians", "Col": "Colossians", "1Th": "1 Thessalonians", "2Th": "2 Thessalonians",
    "1Tim": "1 Timothy", "2Tim": "2 Timothy", "Titus": "Titus", "Phmn": "Philemon", "Heb": "Hebrews",
    "Jas": "James", "1Pet": "1 Peter", "2Pet": "2 Peter", "1Jn": "1 John", "2Jn": "2 John", "3Jn": "3 John",
    "Jude": "Jude", "Rev": "Revelation",
}


def package_versions():
    out, missing = {}, []
    for p in PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", p], capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.startswith("install ok installed"):
            missing.append(p)
        else:
            out[p] = r.stdout.split("\t")[1]
    if missing:
        sys.exit("missing Debian packages: " + " ".join(missing) + "  (apt-get install -y " + " ".join(missing) + ")")
    return out


def clean_text(t):
    """Unicode NFC, no control characters but newline, tabs to spaces, no trailing spaces, <= 2 blank lines."""
    t = unicodedata.normalize("NFC", t.replace("\r\n", "\n").replace("\r", "\n"))
    t = t.replace("\t", "    ")
    t = "".join(ch for ch in t if ch == "\n" or unicodedata.category(ch)[0] != "C")
    t = "\n".join(line.rstrip() for line in t.split("\n"))
    t = re.sub(r"\n{3,}", "\n\n", t)
    return t.strip("\n")


def reflow(block_lines):
    """Paragraphs of hard-wrapped lines -> one line per paragraph (blank lines separate paragraphs)."""
    paras, cur = [], []
    for line in block_lines:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return "\n\n".join(paras)


def kjv_docs():
    r = subprocess.run(["bible", "-f", "-l", "0", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True)
    chapters = {}
    order = []
    for line in r.stdout.split("\n"):
        m = re.match(r"^(\w+?)(\d+):(\d+) (.*)$", line)
        if not m:
            continue
        book, ch, v, text = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4).strip()
        key = (KJV_BOOKS[book], ch)
        if key not in chapters:
            chapters[key] = []
            order.append(key)
        chapters[key].append(f"{v} {text}")
    return [f"{b} {c}\n\n" + "\n".join(chapters[(b, c)]) for (b, c) in order]


def is_prose(t):
    """Rejects ascii art, tables and code-like fortunes: most non-space characters must be letters."""
    chars = [c for c in t if not c.isspace()]
    if len(chars) < 20:
        return False
    letters = sum(c.isalpha() for c in chars)
    return letters / len(chars) >= 0.7 and len(t) <= 2500


def fortune_docs():
    docs = []
    for name in ENGLISH_FORTUNES:
        path = os.path.join(FORTUNE_DIR, name)
        with open(path, "rb") as f:
            raw = f.read().decode("utf-8", errors="replace")
        for item in re.split(r"\n%\n", "\n" + raw + "\n"):
            t = clean_text(item)
            if t and is_prose(t):
                docs.append(t)
    return docs


def jargon_docs():
    with gzip.open("/usr/share/doc/jargon-text/jargon.txt.gz", "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = next(i for i, l in enumerate(lines) if l.startswith("   :(TM):"))
    end = next((i for i, l in enumerate(lines[start:], start) if re.match(r"^Appendix A", l)), len(lines))
    docs, cur = [], None
    for line in lines[start:end]:
        m = re.match(r"^   :(.+?):\s*(.*)$", line)
        if m:
            if cur:
                docs.append(cur)
            cur = [m.group(1), m.group(2), []]
        elif cur is not None:
            cur[2].append(line)
    if cur:
        docs.append(cur)
    out = []
    for term, gram, body in docs:
        gram = re.sub(r"^//,?\s*", "", gram).strip()
        text = reflow(body)
        text = re.sub(r"\{([^{}]*)\}", r"\1", text)
        head = term + (", " + gram if gram else "") + "."
        t = clean_text(head + "\n\n" + text)
        if len(t) > 40:
            out.append(t)
    return out


def b64int(s):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    v = 0
    for ch in s:
        v = v * 64 + alphabet.index(ch)
    return v


def devil_docs():
    with gzip.open("/usr/share/dictd/devil.dict.dz", "rb") as f:
        data = f.read()
    out, seen = [], set()
    with open("/usr/share/dictd/devil.index", encoding="utf-8") as f:
        for line in f:
            word, off, ln = line.rstrip("\n").split("\t")
            if word.startswith("00database") or (off, ln) in seen:
                continue
            seen.add((off, ln))
            body = data[b64int(off):b64int(off) + b64int(ln)].decode("utf-8", errors="replace")
            blines = body.split("\n")
            # First line: "HEADWORD, part of speech.  definition start..." (hard-wrapped); verse is indented.
            paras, cur = [], []
            for l in blines:
                if not l.strip():
                    if cur:
                        paras.append(cur)
                        cur = []
                    continue
                cur.append(l)
            if cur:
                paras.append(cur)
            texts = []
            for p in paras:
                if all(l.startswith("    ") for l in p[1:]) and len(p) > 1 and p[0].startswith("    "):
                    texts.append("\n".join(l.strip() for l in p))  # verse: keep lines
                else:
                    texts.append(" ".join(l.strip() for l in p))
            t = clean_text("\n\n".join(texts).replace("_", ""))
            if len(t) > 40:
                out.append(t)
    return out


def norm_key(t):
    return re.sub(r"[^a-z0-9]+", "", t.lower())


def is_heldout(t):
    h = int(hashlib.sha256(t.encode("utf-8")).hexdigest()[:8], 16)
    return h % 1000 < HELDOUT_PERMILLE


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=".traindata")
    args = ap.parse_args()
    versions = package_versions()
    sources = [("kjv", kjv_docs()), ("fortunes", fortune_docs()), ("jargon", jargon_docs()), ("devil", devil_docs())]
    seen = set()
    rows, stats = [], {}
    for src, docs in sources:
        st = stats.setdefault(src, {"raw": len(docs), "dup": 0, "train": 0, "heldout": 0, "chars": 0})
        for t in docs:
            k = norm_key(t)
            if not k or k in seen:
                st["dup"] += 1
                continue
            seen.add(k)
            split = "heldout" if is_heldout(t) else "train"
            st[split] += 1
            st["chars"] += len(t)
            rows.append({"src": src, "split": split, "text": t})
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "corpus.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    manifest = {
        "cleaning_version": CLEANING_VERSION,
        "heldout_permille": HELDOUT_PERMILLE,
        "debian_packages": versions,
        "fortune_files": ENGLISH_FORTUNES,
        "licences": LICENCES,
        "sources": stats,
        "corpus_sha256": digest,
        "n_documents": len(rows),
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest["sources"], indent=1))
    print("corpus", path, "sha256", digest)


if __name__ == "__main__":
    main()
