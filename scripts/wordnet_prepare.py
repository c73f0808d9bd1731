#!/usr/bin/env python3
"""frost-train's text task: WordNet noun glosses -> their supersense.

    wordnet_prepare.py --tokenizer tokenizer.json --out FILE [--wordnet DIR] [options]
    wordnet_prepare.py --list DATA_NOUN            # the reader only: offset, supersense, gloss (TSV)

Reads WordNet 3.0's data.noun (Debian package wordnet-base), takes each noun
synset's gloss (its definition, the usage examples removed) and its
lexicographer file (the supersense: noun.artifact, noun.person, ...), keeps
the ten largest supersenses, draws a class-balanced split by synset
(train / validation / test disjoint), tokenizes the glosses with the `tokenizers`
package (BERT's uncased WordPiece of all-MiniLM-L6-v2's tokenizer.json) and
writes a safetensors file that frost-train --model minilm-l6 reads
(examples/train/text_data.hpp):

    train_ids, val_ids, test_ids        int64 [N, L]: [CLS] ... [SEP], then [PAD] = 0
    train_labels, val_labels, test_labels  int64 [N]: 0 .. C-1 (the order of --classes)
    train_offsets, ...                  int64 [N]: the synset's byte offset in data.noun
    __metadata__: frost.task, frost.classes (comma-separated), frost.seq_len,
                  frost.prep_key, frost.truncated, the options (docs/minilm.md)

Cached: FILE's metadata holds frost.prep_key, a sha256 of every input (data.noun,
tokenizer.json, this script) and every option; when FILE exists with the same
key nothing is done. --list needs only Python's standard library (the ctest of
the reader runs it with the system python3); the rest needs `tokenizers`,
`safetensors` and `numpy` (the cached venv scripts/wordnet-data.sh makes).

Choices (docs/minilm.md says why):
  * the gloss is the definition only: the text before the first '; "' (the
    usage examples in double quotes, present in 10.6 % of noun glosses, often
    quote the headword itself and would make those glosses a different task);
  * classes: the ten largest noun supersenses (each >= 2,983 synsets), so that
    a balanced split of a few hundred glosses per class exists for every one;
  * balanced: the same number per class in each split, so that accuracy is not
    dominated by noun.artifact and noun.person (28 % of all noun synsets) and
    every class's mean is estimated from as many glosses (SimFreeze's class
    means); the training glosses are interleaved by class, so that any prefix
    (--train-limit) stays balanced;
  * duplicate definitions (the same text in several synsets) are kept once,
    and a definition found under two supersenses is dropped, so no text is in
    two splits or carries two labels.
"""
import argparse
import hashlib
import json
import os
import random
import sys

# WordNet 3.0's lexicographer file numbers of the noun files: lexnames(5WN)
# (/usr/share/man/man5/lexnames.5WN.gz; Debian's wordnet-base ships the man
# page but not the lexnames file itself, so the table is here, checked against
# DIR/lexnames when one exists).
NOUN_LEXNAMES = {
    3: "noun.Tops", 4: "noun.act", 5: "noun.animal", 6: "noun.artifact",
    7: "noun.attribute", 8: "noun.body", 9: "noun.cognition", 10: "noun.communication",
    11: "noun.event", 12: "noun.feeling", 13: "noun.food", 14: "noun.group",
    15: "noun.location", 16: "noun.motive", 17: "noun.object", 18: "noun.person",
    19: "noun.phenomenon", 20: "noun.plant", 21: "noun.possession", 22: "noun.process",
    23: "noun.quantity", 24: "noun.relation", 25: "noun.shape", 26: "noun.state",
    27: "noun.substance", 28: "noun.time",
}

# The ten largest noun supersenses of WordNet 3.0 (synsets: 11,587 artifact,
# 11,087 person, 8,030 plant, 7,509 animal, 6,650 act, 5,607 communication,
# 3,544 state, 3,209 location, 3,039 attribute, 2,983 substance).
DEFAULT_CLASSES = ["noun.artifact", "noun.person", "noun.plant", "noun.animal", "noun.act",
                   "noun.communication", "noun.state", "noun.location", "noun.attribute",
                   "noun.substance"]


class FormatError(Exception):
    """data.noun is not in the format of wndb(5WN); names the file and the line."""


def lexnames(wordnet_dir):
    """The noun lexicographer files by number: DIR/lexnames when present (it
    must agree with the table), else lexnames(5WN)'s table."""
    path = os.path.join(wordnet_dir, "lexnames") if wordnet_dir else ""
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                fields = line.split()
                if len(fields) == 3 and fields[2] == "1":
                    num = int(fields[0])
                    if NOUN_LEXNAMES.get(num) != fields[1]:
                        raise FormatError(f"{path}:{n}: file number {num} is {fields[1]}, "
                                          f"lexnames(5WN) says {NOUN_LEXNAMES.get(num)}")
    return NOUN_LEXNAMES


def definition(gloss):
    """The definition part of a gloss: the text before its first quoted
    example ('; "...'), without trailing separators."""
    cut = gloss.find('; "')
    if cut < 0 and gloss.startswith('"'):
        cut = 0  # a gloss that is only an example has no definition
    text = gloss if cut < 0 else gloss[:cut]
    return text.strip().rstrip(";").strip()


def read_noun_synsets(path, names=None):
    """Yields (offset, supersense, definition) for every synset of a data.noun
    file. Format (wndb(5WN)): lines starting with two spaces are the licence;
    every other line is

        synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...]
        p_cnt [ptr ...] | gloss

    w_cnt is two hexadecimal digits, lex_filenum two decimal ones, ss_type n
    for a noun. The offset is the line's own byte offset in the file (checked:
    a file that was edited or re-encoded fails here)."""
    names = names or NOUN_LEXNAMES
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    n = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        raw = data[pos:end]
        n += 1
        line_start, pos = pos, end + 1
        if raw.startswith(b"  ") or not raw.strip():
            continue
        line = raw.decode("utf-8")
        where = f"{path}:{n}"
        head, bar, gloss = line.partition(" | ")
        if not bar:
            raise FormatError(f"{where}: no ' | ' before the gloss (wndb(5WN) data line expected)")
        f_ = head.split()
        if len(f_) < 4:
            raise FormatError(f"{where}: fewer than 4 fields before the gloss")
        try:
            offset = int(f_[0])
            lexnum = int(f_[1])
            words = int(f_[3], 16)
        except ValueError:
            raise FormatError(f"{where}: offset, lex_filenum or w_cnt is not a number: {head[:40]!r}")
        if offset != line_start:
            raise FormatError(f"{where}: synset_offset {offset} is not the line's byte offset "
                              f"{line_start} (the file was changed; reinstall wordnet-base)")
        if f_[2] != "n":
            raise FormatError(f"{where}: ss_type {f_[2]!r} is not n (a noun file expected)")
        if lexnum not in names:
            raise FormatError(f"{where}: lex_filenum {lexnum} is not a noun file (03-28)")
        if len(f_) < 4 + 2 * words + 1:
            raise FormatError(f"{where}: w_cnt {words} words do not fit the line")
        yield offset, names[lexnum], definition(gloss)


def split_balanced(synsets, classes, per_class, seed):
    """The class-balanced split by synset: for each class its glosses in a
    seeded random order, the first per_class[0] to train, the next per_class[1]
    to validation, the next per_class[2] to test. Duplicate definitions kept
    once; a definition under two classes dropped. Training examples are
    interleaved by class (class 0, 1, ..., C-1, 0, 1, ...), so every prefix is
    balanced; validation and test are in the same order."""
    label_of = {}
    first = {}
    for offset, sense, text in synsets:
        if not text:
            continue
        key = text.lower()
        if key in first:
            if first[key][1] != sense:
                label_of[key] = None  # two supersenses: ambiguous, dropped
            continue
        first[key] = (offset, sense, text)
        label_of[key] = sense
    by_class = {c: [] for c in classes}
    for key, (offset, sense, text) in first.items():
        if label_of[key] is not None and sense in by_class:
            by_class[sense].append((offset, text))
    rng = random.Random(seed)
    splits = ([], [], [])
    for c in classes:
        items = sorted(by_class[c])
        rng.shuffle(items)
        need = sum(per_class)
        if len(items) < need:
            raise ValueError(f"class {c} has {len(items)} distinct glosses, the split needs {need}")
        start = 0
        for s, k in enumerate(per_class):
            splits[s].append(items[start:start + k])
            start += k
    out = []
    for parts in splits:
        rows = []
        for i in range(max(len(p) for p in parts)):
            for label, p in enumerate(parts):
                if i < len(p):
                    rows.append((p[i][0], p[i][1], label))
        out.append(rows)
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def existing_key(path):
    """frost.prep_key of a safetensors file's metadata, or None."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > 100_000_000:
                return None
            header = json.loads(f.read(n))
        return header.get("__metadata__", {}).get("frost.prep_key")
    except (OSError, ValueError):
        return None


def tokenize(tokenizer_path, texts, seq_len):
    """Token ids [N, seq_len] (int64, [PAD] = 0) and the number truncated:
    tokenizers' BERT pipeline (normalizer: lower case, strip accents; WordPiece;
    post-processor: [CLS] ... [SEP]); a longer gloss keeps its first
    seq_len - 2 word pieces and [SEP]."""
    import numpy as np
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer_path)
    tok.no_padding()
    tok.enable_truncation(max_length=seq_len)  # keeps [CLS] and [SEP], cuts the middle's end
    if tok.token_to_id("[PAD]") != 0:
        raise ValueError(f"{tokenizer_path}: [PAD] is not id 0; frost's BERT masks id 0")
    enc = tok.encode_batch(texts)
    ids = np.zeros((len(texts), seq_len), dtype=np.int64)
    truncated = 0
    for i, e in enumerate(enc):
        ids[i, :len(e.ids)] = e.ids
        truncated += 1 if e.overflowing else 0
    return ids, truncated


def lengths(tokenizer_path, texts):
    """Token counts with [CLS] and [SEP], untruncated."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer_path)
    tok.no_padding()
    tok.no_truncation()
    return [len(e.ids) for e in tok.encode_batch(texts)]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", metavar="DATA_NOUN", help="print offset, supersense, definition (TSV)")
    ap.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet's dict directory")
    ap.add_argument("--tokenizer", help="tokenizer.json (all-MiniLM-L6-v2's)")
    ap.add_argument("--out", help="the safetensors file to write")
    ap.add_argument("--classes", default=",".join(DEFAULT_CLASSES))
    ap.add_argument("--per-class", default="300,60,150", help="train,validation,test glosses per class")
    ap.add_argument("--seq-len", type=int, default=32, help="L: tokens per gloss with [CLS], [SEP]")
    ap.add_argument("--seed", type=int, default=0, help="the split's seed")
    ap.add_argument("--stats", action="store_true", help="print the token-length distribution")
    a = ap.parse_args(argv)

    if a.list:
        try:
            for offset, sense, text in read_noun_synsets(a.list):
                print(f"{offset:08d}\t{sense}\t{text}")
        except FormatError as e:
            print(f"wordnet_prepare: {e}", file=sys.stderr)
            return 2
        return 0
    if not a.tokenizer or not a.out:
        ap.error("--tokenizer and --out are needed (or --list)")

    data_noun = os.path.join(a.wordnet, "data.noun")
    if not os.path.exists(data_noun):
        print(f"wordnet_prepare: no {data_noun}: install Debian's wordnet-base "
              f"(bash scripts/deps.sh --minilm) or give --wordnet DIR", file=sys.stderr)
        return 2
    classes = [c for c in a.classes.split(",") if c]
    per_class = [int(x) for x in a.per_class.split(",")]
    if len(per_class) != 3 or min(per_class) <= 0:
        ap.error("--per-class expects three positive counts: train,validation,test")
    unknown = [c for c in classes if c not in NOUN_LEXNAMES.values()]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        ap.error(f"--classes: two or more distinct noun supersenses of lexnames(5WN), got {a.classes}")
    if a.seq_len < 3:
        ap.error("--seq-len must be 3 or more ([CLS], one word piece, [SEP])")

    options = {"classes": classes, "per_class": per_class, "seq_len": a.seq_len, "seed": a.seed,
               "gloss": "definition, examples removed", "dedup": "text once, ambiguous dropped"}
    key_src = json.dumps({"data.noun": sha256_file(data_noun),
                          "tokenizer.json": sha256_file(a.tokenizer),
                          "script": sha256_file(os.path.abspath(__file__)),
                          "options": options}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()
    if not a.stats and existing_key(a.out) == key:
        print(f"wordnet_prepare: {a.out} is current (key {key[:16]})")
        return 0

    try:
        synsets = list(read_noun_synsets(data_noun, lexnames(a.wordnet)))
        splits = split_balanced(synsets, classes, per_class, a.seed)
    except (FormatError, ValueError) as e:
        print(f"wordnet_prepare: {e}", file=sys.stderr)
        return 2
    if a.stats:
        ls = sorted(lengths(a.tokenizer, [t for _, t, _ in splits[0]]))
        q = lambda p: ls[min(len(ls) - 1, int(p * len(ls)))]
        print(f"train glosses {len(ls)}: tokens with [CLS],[SEP]: mean {sum(ls) / len(ls):.1f}, "
              f"median {q(0.5)}, p90 {q(0.9)}, p95 {q(0.95)}, p99 {q(0.99)}, max {ls[-1]}")
        return 0

    import numpy as np
    from safetensors.numpy import save_file
    tensors = {}
    truncated = {}
    for name, rows in zip(("train", "val", "test"), splits):
        ids, truncated[name] = tokenize(a.tokenizer, [t for _, t, _ in rows], a.seq_len)
        tensors[f"{name}_ids"] = ids
        tensors[f"{name}_labels"] = np.array([l for _, _, l in rows], dtype=np.int64)
        tensors[f"{name}_offsets"] = np.array([o for o, _, _ in rows], dtype=np.int64)
    meta = {"frost.task": "wordnet-noun-supersense", "frost.classes": ",".join(classes),
            "frost.seq_len": str(a.seq_len), "frost.prep_key": key,
            "frost.truncated": ",".join(f"{k}={v}" for k, v in truncated.items()),
            "frost.options": json.dumps(options, sort_keys=True)}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, a.out)  # atomic: a reader never sees half a file
    sizes = {k: int(v.shape[0]) for k, v in tensors.items() if k.endswith("_labels")}
    print(f"wordnet_prepare: wrote {a.out} ({sizes}, L {a.seq_len}, truncated {truncated}, "
          f"key {key[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
