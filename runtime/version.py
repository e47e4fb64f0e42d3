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
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np


def _version() -> str:
    try:
        return version("gradc")
    except PackageNotFoundError:  # a source checkout on sys.path, not installed
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
    top = Path(__file__).parent.parent  # the folder holding `compiler/` and `runtime/`
    for rel in sorted(_sources(str(top), "compiler") + _sources(str(top), "runtime")):
        st = os.stat(os.path.join(top, rel))
        h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _sources(top: str, rel: str) -> list[str]:
    # os.scandir rather than Path.rglob: a warm process computes this first (a third of the
    # 5 ms rglob took was pathlib's own objects)
    out = []
    with os.scandir(os.path.join(top, rel)) as it:
        for entry in it:
            name = f"{rel}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                out += _sources(top, name)
            elif entry.name.endswith(".py"):
                out.append(name)
    return out
