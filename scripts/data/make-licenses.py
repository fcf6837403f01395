#!/usr/bin/env python3
"""Builds node/data/licenses.txt, the text corpus of the language-model task: the licence
texts Debian's `base-files` package installs under /usr/share/common-licenses (GPL, LGPL,
GFDL, MPL, Apache, Artistic, BSD, CC0; about 260 KB of English prose), concatenated in name
order, symlinks skipped, and restricted to printable ASCII plus newlines (tabs become
spaces, anything else is dropped). The last 32 KiB go to node/data/licenses-heldout.txt
instead: the task owner's held-out evaluation text, which `pogo task create` commits to and
miners never see. Nothing is downloaded at run time.
Usage: scripts/data/make-licenses.py [DIR]   (default /usr/share/common-licenses; the
directory can also be unpacked from `apt-get download base-files`)."""
import os, sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = os.path.join(root, "node", "data", "licenses.txt")
src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/common-licenses"
names = sorted(n for n in os.listdir(src) if not os.path.islink(os.path.join(src, n)))
if not names:
    sys.exit(f"{src}: no licence texts (is base-files installed?)")
parts = []
for name in names:
    with open(os.path.join(src, name), "rb") as f:
        text = f.read().decode("utf-8", errors="replace").replace("\t", "    ").replace("\r", "")
    parts.append("".join(c for c in text if c == "\n" or " " <= c <= "~"))
corpus = "\n\n".join(p.strip("\n") for p in parts) + "\n"
HELD_OUT = 32768
for path, part in [(out, corpus[:-HELD_OUT]), (out.replace(".txt", "-heldout.txt"), corpus[-HELD_OUT:])]:
    with open(path + ".tmp", "w", encoding="ascii") as f:
        f.write(part)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}: {len(part)} bytes")
print(f"from {len(names)} texts ({', '.join(names)})")
