#!/usr/bin/env python3
"""A trainer outside pogo, in plain Python (no numpy): the "bring your own trainer" path.

`train OUT_DIR` writes base.safetensors (the initial model) and trained.safetensors (after a
few steps of full-batch gradient descent) for a 16-32-4 MLP classifying synthetic Gaussian
clusters. `eval MODEL` prints the model's loss on a held-out batch. safetensors is written
and read by hand (8-byte header length, JSON header, little-endian data) to show how little
a trainer needs to talk to pogo.
"""
import json
import math
import random
import struct
import sys

IN, HIDDEN, OUT = 16, 32, 4
SHAPES = {"fc1.weight": (HIDDEN, IN), "fc1.bias": (HIDDEN,), "fc2.weight": (OUT, HIDDEN), "fc2.bias": (OUT,)}


def dataset(seed, n):
    rng = random.Random(seed)
    centers = [[random.Random(100 + c).gauss(0, 1) for _ in range(IN)] for c in range(OUT)]
    xs, ys = [], []
    for _ in range(n):
        c = rng.randrange(OUT)
        xs.append([centers[c][i] + rng.gauss(0, 1.2) for i in range(IN)])
        ys.append(c)
    return xs, ys


def forward(p, x):
    h = [max(0.0, p["fc1.bias"][j] + sum(p["fc1.weight"][j * IN + i] * x[i] for i in range(IN))) for j in range(HIDDEN)]
    z = [p["fc2.bias"][k] + sum(p["fc2.weight"][k * HIDDEN + j] * h[j] for j in range(HIDDEN)) for k in range(OUT)]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return h, [v / s for v in e]


def loss(p, xs, ys):
    return sum(-math.log(max(forward(p, x)[1][y], 1e-12)) for x, y in zip(xs, ys)) / len(xs)


def step(p, xs, ys, lr):
    g = {k: [0.0] * len(v) for k, v in p.items()}
    for x, y in zip(xs, ys):
        h, prob = forward(p, x)
        dz = [prob[k] - (1.0 if k == y else 0.0) for k in range(OUT)]
        for k in range(OUT):
            g["fc2.bias"][k] += dz[k]
            for j in range(HIDDEN):
                g["fc2.weight"][k * HIDDEN + j] += dz[k] * h[j]
        for j in range(HIDDEN):
            if h[j] <= 0:
                continue
            dh = sum(dz[k] * p["fc2.weight"][k * HIDDEN + j] for k in range(OUT))
            g["fc1.bias"][j] += dh
            for i in range(IN):
                g["fc1.weight"][j * IN + i] += dh * x[i]
    for k in p:
        p[k] = [w - lr * gw / len(xs) for w, gw in zip(p[k], g[k])]


def save(path, p):
    header, blobs, offset = {}, [], 0
    for name in sorted(p):
        data = struct.pack("<%df" % len(p[name]), *p[name])
        header[name] = {"dtype": "F32", "shape": list(SHAPES[name]), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    p = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        assert info["dtype"] == "F32", "export the model with pogo export --dtype f32"
        p[name] = list(struct.unpack("<%df" % ((b - a) // 4), body[a:b]))
    return p


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "train":
        out = sys.argv[2]
        rng = random.Random(7)
        p = {k: [rng.gauss(0, 1 / math.sqrt(s[-1])) * (1 if len(s) == 2 else 0) for _ in range(math.prod(s))] for k, s in SHAPES.items()}
        save(out + "/base.safetensors", p)
        xs, ys = dataset(1, 256)
        print("train: initial loss %.4f" % loss(p, xs, ys))
        for i in range(40):
            step(p, xs, ys, 0.2)
        print("train: loss after 40 steps %.4f" % loss(p, xs, ys))
        save(out + "/trained.safetensors", p)
    elif len(sys.argv) == 3 and sys.argv[1] == "eval":
        xs, ys = dataset(2, 256)
        print("%.6f" % loss(load(sys.argv[2]), xs, ys))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
