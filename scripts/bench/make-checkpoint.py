#!/usr/bin/env python3
"""Writes a synthetic sharded BF16 checkpoint in the Hugging Face layout, for benchmarks.

Usage: make-checkpoint.py OUT_DIR WEIGHTS [--shards K] [--seed S]

OUT_DIR gets K shard files `model-0000i-of-0000K.safetensors` and
`model.safetensors.index.json`. Tensors (`layers.NNNN.weight`, 2^24 weights each, the last
one smaller) are spread over the shards in turn. Values are random finite BF16 numbers
with |x| below 2, which every fixed-point format pogo reads can encode. Python's standard
library only (no numpy): random bytes mapped to valid BF16 high bytes by a lookup table,
a chunk at a time, so memory stays at one chunk whatever the size. Nothing here is
written to the repository; the benchmark puts OUT_DIR outside it.
"""

import argparse
import json
import os
import random
import struct

TENSOR = 1 << 24
CHUNK = 1 << 24  # weights per write

# High byte of a BF16 value: the sign from bit 7 of a random byte, the exponent's top
# seven bits from 0x38..0x3f (values from 2^-15 up to just under 2).
HIGH = bytes((b & 0x80) | (0x38 + (b & 0x07)) for b in range(256))


def tensors(weights):
    """(name, size) for every tensor, in name order."""
    out, left, i = [], weights, 0
    while left > 0:
        n = min(TENSOR, left)
        out.append((f"layers.{i:04}.weight", n))
        left -= n
        i += 1
    return out


def write_shard(path, entries, rng):
    header, offset = {}, 0
    for name, n in entries:
        header[name] = {"dtype": "BF16", "shape": [n], "data_offsets": [offset, offset + 2 * n]}
        offset += 2 * n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, n in entries:
            left = n
            while left > 0:
                m = min(CHUNK, left)
                low = rng.randbytes(m)
                high = rng.randbytes(m).translate(HIGH)
                buf = bytearray(2 * m)
                buf[0::2] = low
                buf[1::2] = high
                f.write(buf)
                left -= m
    os.replace(tmp, path)
    return 8 + len(text) + offset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("weights", type=int)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.weights < 1 or args.shards < 1:
        parser.error("WEIGHTS and --shards must be at least 1")
    rng = random.Random(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    all_tensors = tensors(args.weights)
    shards = min(args.shards, len(all_tensors))
    weight_map, total = {}, 0
    for s in range(shards):
        file = f"model-{s + 1:05}-of-{shards:05}.safetensors"
        entries = all_tensors[s::shards]
        total += write_shard(os.path.join(args.out_dir, file), entries, rng)
        for name, _ in entries:
            weight_map[name] = file
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    tmp = os.path.join(args.out_dir, "model.safetensors.index.json.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, os.path.join(args.out_dir, "model.safetensors.index.json"))
    print(f"{args.out_dir}: {args.weights} BF16 weights in {len(all_tensors)} tensors, {shards} shards, {total} bytes")


if __name__ == "__main__":
    main()
