#!/usr/bin/env python3
"""Reference outputs of a BERT encoder, computed independently of frost's C++
(examples/common/bert.hpp), for tests/test_pretrained.cpp.

Two fixtures, both small safetensors files under tests/data/:

  tiny  (default): a tiny BERT (vocabulary 40, width 16, 2 layers, 4 heads,
        feed-forward 32, 24 positions) with fixed random weights under the
        real checkpoint's names (pooler and position_ids included, as in
        all-MiniLM-L6-v2's file), three fixed inputs with different padding,
        and its outputs: every position's final hidden state, the mean-pooled
        and the [CLS] feature. Written to tests/data/minilm-tiny.safetensors
        (weights and outputs in one file; the C++ test loads the weights
        with frost_examples::load_bert and compares).

  --real DIR: the real all-MiniLM-L6-v2 weights (DIR/model.safetensors, as
        scripts/minilm-weights.sh leaves them) on two fixed sentences whose
        words are whole tokens of DIR/vocab.txt; the mean-pooled embedding
        and the [CLS] hidden state, written to
        tests/data/minilm-l6-real-reference.safetensors (a few KB), so the
        C++ check of the real weights needs no Python.

The implementation is plain torch functional code written from BERT's
definition (transformers' modeling_bert.py: post-norm layers, erf GELU,
additive attention mask of finfo(float32).min at padded keys, LayerNorm eps
1e-12) and sentence-transformers' mean pooling (sum of masked states / count
clamped at 1e-9): nothing is shared with the C++ code but the names. It runs
with pip's torch in ~/.cache/frost/torch-2.11.0-venv (scripts/test-torch2.sh
--install-only), in float64 so that the reference's own rounding is far below
the test's tolerance:

  ~/.cache/frost/torch-2.11.0-venv/bin/python scripts/minilm_reference.py
  ~/.cache/frost/torch-2.11.0-venv/bin/python scripts/minilm_reference.py --real ~/.cache/frost/minilm-l6
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def bert_forward(w, ids, layers, heads, eps=1e-12):
    """Final hidden states [B, L, H] of token ids [B, L] (pad 0), weights `w` by name."""
    B, L = ids.shape
    mask = (ids != 0).to(torch.float64)
    pos = torch.arange(L)
    x = (F.embedding(ids, w["embeddings.word_embeddings.weight"])
         + F.embedding(pos, w["embeddings.position_embeddings.weight"])[None]
         + w["embeddings.token_type_embeddings.weight"][0])
    H = x.shape[-1]
    x = F.layer_norm(x, (H,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min
    d = H // heads
    for i in range(layers):
        p = f"encoder.layer.{i}."
        lin = lambda t, n: F.linear(t, w[p + n + ".weight"], w[p + n + ".bias"])
        split = lambda t: t.view(B, L, heads, d).permute(0, 2, 1, 3)
        q, k, v = (split(lin(x, "attention.self." + n)) for n in ("query", "key", "value"))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1)
        ctx = (a @ v).permute(0, 2, 1, 3).reshape(B, L, H)
        x = F.layer_norm(lin(ctx, "attention.output.dense") + x, (H,),
                         w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(F.gelu(lin(x, "intermediate.dense")), "output.dense")
        x = F.layer_norm(f + x, (H,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x, mask


def mean_pool(x, mask):
    m = mask[..., None]
    return (x * m).sum(1) / m.sum(1).clamp(min=1e-9)


def tiny():
    V, H, NL, NH, I, P = 40, 16, 2, 4, 32, 24
    g = torch.Generator().manual_seed(20261207)
    r = lambda *s, scale=0.3: torch.randn(*s, generator=g, dtype=torch.float64) * scale
    w = {
        "embeddings.word_embeddings.weight": r(V, H, scale=1.0),
        "embeddings.position_embeddings.weight": r(P, H, scale=0.5),
        "embeddings.token_type_embeddings.weight": r(2, H, scale=0.5),
        "embeddings.LayerNorm.weight": 1.0 + r(H, scale=0.1),
        "embeddings.LayerNorm.bias": r(H, scale=0.1),
        "pooler.dense.weight": r(H, H),
        "pooler.dense.bias": r(H),
    }
    for i in range(NL):
        p = f"encoder.layer.{i}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            w[p + n + ".weight"], w[p + n + ".bias"] = r(H, H), r(H, scale=0.1)
        w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"] = r(I, H), r(I, scale=0.1)
        w[p + "output.dense.weight"], w[p + "output.dense.bias"] = r(H, I), r(H, scale=0.1)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + n + ".weight"], w[p + n + ".bias"] = 1.0 + r(H, scale=0.1), r(H, scale=0.1)
    # The weights as the file stores them (float32); the reference runs on
    # exactly these values, in float64.
    w = {k: v.to(torch.float32) for k, v in w.items()}
    w64 = {k: v.to(torch.float64) for k, v in w.items()}
    # [CLS]=1 ... [SEP]=2, then padding 0: lengths 10, 6, 3 in a row of 10.
    ids = torch.tensor([[1, 5, 17, 33, 8, 39, 12, 21, 30, 2],
                        [1, 9, 9, 26, 14, 2, 0, 0, 0, 0],
                        [1, 38, 2, 0, 0, 0, 0, 0, 0, 0]], dtype=torch.int64)
    x, mask = bert_forward(w64, ids, NL, NH)
    weights = dict(w)
    weights["embeddings.position_ids"] = torch.arange(P, dtype=torch.int64)[None]
    config = f"vocab {V} hidden {H} layers {NL} heads {NH} intermediate {I} positions {P}"
    data = os.path.join(ROOT, "tests", "data")
    save_file(weights, os.path.join(data, "minilm-tiny.safetensors"),
              metadata={"made_by": "scripts/minilm_reference.py", "config": config})
    ref = {"input_ids": ids, "last_hidden_state": x.to(torch.float32),
           "mean_pooled": mean_pool(x, mask).to(torch.float32), "cls": x[:, 0].to(torch.float32).contiguous()}
    save_file(ref, os.path.join(data, "minilm-tiny.reference.safetensors"),
              metadata={"made_by": "scripts/minilm_reference.py", "config": config})
    for f in ("minilm-tiny.safetensors", "minilm-tiny.reference.safetensors"):
        print(f"{os.path.join(data, f)}: {os.path.getsize(os.path.join(data, f))} bytes")


def real(d):
    w = {k: v.to(torch.float64) for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    vocab = {t: i for i, t in enumerate(open(os.path.join(d, "vocab.txt"), encoding="utf-8").read().split("\n"))}
    sentences = ["a small dog is running in the park", "the bank of a river"]
    rows = [[vocab["[CLS]"]] + [vocab[t] for t in s.split()] + [vocab["[SEP]"]] for s in sentences]
    L = max(len(r) for r in rows) + 2  # padding in every row
    ids = torch.tensor([r + [0] * (L - len(r)) for r in rows], dtype=torch.int64)
    x, mask = bert_forward(w, ids, 6, 12)
    out = {"input_ids": ids, "mean_pooled": mean_pool(x, mask).to(torch.float32),
           "cls": x[:, 0].to(torch.float32).contiguous()}
    path = os.path.join(ROOT, "tests", "data", "minilm-l6-real-reference.safetensors")
    save_file(out, path, metadata={"made_by": "scripts/minilm_reference.py --real",
                                   "sentences": " | ".join(sentences)})
    print(f"{path}: {os.path.getsize(path)} bytes; ids {ids.tolist()}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) == 3 and sys.argv[1] == "--real":
        real(sys.argv[2])
    elif len(sys.argv) == 1:
        tiny()
    else:
        sys.exit("usage: minilm_reference.py [--real DIR]")
