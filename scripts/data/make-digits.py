#!/usr/bin/env python3
"""Converts the 8x8 handwritten digits (UCI optdigits test set as shipped in scikit-learn,
CC BY 4.0, 1,797 images) into node/data/digits.bin (the first 1,497 images: the task's
public data, what miners train on) and node/data/digits-heldout.bin (the last 300: the
task owner's held-out evaluation data, which `pogo task create --held-out` commits to):
one record per image, 64 pixel bytes (0..16) then the label byte (0..9). The data comes from the scikit-learn wheel on PyPI
(`pip download scikit-learn --no-deps`); nothing is downloaded at run time.
Usage: scripts/data/make-digits.py [WHEEL]"""
import glob, gzip, io, os, subprocess, sys, tempfile, zipfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out_dir = os.path.join(root, "node", "data")
HELD_OUT = 300
with tempfile.TemporaryDirectory() as tmp:
    wheel = sys.argv[1] if len(sys.argv) > 1 else None
    if wheel is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "scikit-learn==1.9.1", "--no-deps", "-q", "-d", tmp], check=True)
        wheel = glob.glob(os.path.join(tmp, "scikit_learn-*.whl"))[0]
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read("sklearn/datasets/data/digits.csv.gz")).decode()
rows = [list(map(float, line.split(","))) for line in text.strip().splitlines()]
assert len(rows) == 1797 and all(len(r) == 65 for r in rows)
for r in rows:
    assert all(0 <= v <= 16 for v in r[:64]) and 0 <= r[64] <= 9
for name, part in [("digits.bin", rows[:-HELD_OUT]), ("digits-heldout.bin", rows[-HELD_OUT:])]:
    out = os.path.join(out_dir, name)
    with open(out + ".tmp", "wb") as f:
        f.write(b"".join(bytes(int(v) for v in r) for r in part))
    os.replace(out + ".tmp", out)
    print(f"wrote {out}: {len(part)} images")
