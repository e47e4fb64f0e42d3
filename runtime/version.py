"""gradc's version, from the installed package's metadata (pyproject.toml is its source).

Read here, in `runtime/`, so the compiler (`compiler.__version__`, generated module headers)
and the disk cache (its namespace) share it without the runtime importing the compiler.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np


@functools.cache
def dist_version(name: str) -> str | None:
    """The installed distribution `name`'s version, None when it is not installed. Read from
    the Version line of its metadata file: `importlib.metadata.version` parses the file with
    the email package, whose import (~5 ms) was a share of a cold first call."""
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        return None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    m = re.search(r"^Version:[ \t]*(\S+)", text, re.M)
    return m.group(1) if m else dist.version


def _version() -> str:
    found = dist_version("gradc")
    if found is not None:
        return found
    # a source checkout on sys.path, not installed
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        m = re.search(r'^version = "([^"]+)"', pyproject.read_text(), re.M)
    except OSError:
        m = None
    return m.group(1) if m else "0+unknown"


VERSION = _version()


@functools.cache
def build_id() -> str:
    """A digest of the code that makes compiled artifacts: gradc's, NumPy's and Python's
    versions and every gradc source file's stat (the stage cache and the routing calibration
    key on it, so an edited checkout never reuses what its old code made)."""
    h = hashlib.sha256(f"{VERSION}|{np.__version__}|{sys.version}".encode())
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # os.scandir, not Path.rglob: once per process, but on the first call's path (1 ms
    # against 5-8 ms for the same ~150 stats)
    for rel, size, mtime in sorted(_sources(top, "compiler") + _sources(top, "runtime")):
        h.update(f"{rel}|{size}|{mtime}\n".encode())
    return h.hexdigest()


def _sources(top: str, package: str) -> list[tuple[str, int, int]]:
    """(path relative to `top`, size, mtime ns) of every .py file under `top/package`."""
    found = []
    stack = [package]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(top, rel)) as entries:
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if e.name != "__pycache__":
                        stack.append(f"{rel}/{e.name}")
                elif e.name.endswith(".py"):
                    st = e.stat()
                    found.append((f"{rel}/{e.name}", st.st_size, st.st_mtime_ns))
    return found
