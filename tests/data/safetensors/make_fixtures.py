#!/usr/bin/python3
"""Safetensors fixtures for tests/test_safetensors.c, written by PyTorch without the
safetensors package (Debian has python3-torch but not python3-safetensors), so the bytes
follow the format spec by hand: 8-byte little-endian header length, JSON header, data.

    /usr/bin/python3 make_fixtures.py            # rewrites the fixtures beside this script
    /usr/bin/python3 make_fixtures.py --check F  # loads F into torch.nn.LSTM(3, 4) with
                                                 # load_state_dict(strict=True) and compares
                                                 # it with lstm.json; exit status 0 when equal

Each .safetensors file has a .json sidecar {name: {"dtype", "shape", "values"}} with the
values as exact decimal text (float32 values widened to double, which is exact).
"""
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
          torch.bool: "BOOL", torch.bfloat16: "BF16", torch.uint8: "U8"}
TORCH = {v: k for k, v in DTYPES.items()}


def raw_bytes(t):
    # Little-endian row-major bytes; bfloat16 has no numpy dtype, so go through int16 bits.
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def serialize(tensors, metadata=None, pad=True):
    """Bytes of a safetensors file; tensors is a list of (name, tensor) in data order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in tensors:
        b = raw_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:  # the spec's writers pad with spaces so the data starts 8-byte aligned
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def parse(blob):
    """{name: tensor} and metadata of a safetensors file, checking offsets tile the data."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    out, at = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, end = e["data_offsets"]
        assert b == at, f"{name}: offsets not contiguous"
        dtype = TORCH[e["dtype"]]
        chunk = bytearray(data[b:end])
        t = torch.frombuffer(chunk, dtype=dtype) if chunk else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(e["shape"])
        at = end
    assert at == len(data), "trailing bytes"
    return out, metadata


def sidecar(tensors):
    return {name: {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                   "values": t.reshape(-1).to(torch.float64 if t.is_floating_point() else torch.int64).tolist()}
            for name, t in tensors}


def write(name, tensors, metadata=None, pad=True):
    with open(os.path.join(HERE, name + ".safetensors"), "wb") as f:
        f.write(serialize(tensors, metadata, pad))
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in sidecar(tensors).items()]
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def make():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4)
    # Sorted by name, with {"format": "pt"}, as safetensors.torch.save_file writes a state_dict.
    write("lstm", sorted(lstm.state_dict().items()), {"format": "pt"})
    # Layouts our writer never makes: no padding, a 3-byte BOOL first so the floats after it
    # are unaligned, dtypes to convert (F64, I64) or refuse (BF16), a scalar, an empty tensor.
    g = torch.Generator().manual_seed(1)
    write("mixed", [
        ("mask", torch.tensor([True, False, True])),
        ("scalar", torch.tensor(2.5, dtype=torch.float32)),
        ("f64", torch.randn(2, 3, generator=g, dtype=torch.float64)),
        ("ids", torch.tensor([[0, -7, 2147483647], [-2147483648, 5, 6]], dtype=torch.int64)),
        ("big_ids", torch.tensor([1, 2147483648], dtype=torch.int64)),
        ("empty", torch.zeros(0, 3)),
        ("half", torch.tensor([1.5, -2.0], dtype=torch.bfloat16)),
        ("f32", torch.randn(3, 2, generator=g)),
    ], pad=False)


def check(path):
    with open(path, "rb") as f:
        tensors, metadata = parse(f.read())
    lstm = torch.nn.LSTM(3, 4)
    lstm.load_state_dict(tensors, strict=True)
    with open(os.path.join(HERE, "lstm.json")) as f:
        want = json.load(f)
    for name, p in lstm.state_dict().items():
        expect = torch.tensor(want[name]["values"], dtype=torch.float32).reshape(want[name]["shape"])
        if not torch.equal(p, expect):
            sys.exit(f"{path}: {name} differs from lstm.json")
    print(f"{path}: loaded into torch.nn.LSTM(3, 4) with strict load_state_dict, values equal; metadata {metadata}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        make()
