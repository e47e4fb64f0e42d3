"""gradc's version, from the installed package's metadata (pyproject.toml is its source).

Read here, in `runtime/`, so the compiler (`compiler.__version__`, generated module headers)
and the disk cache (its namespace) share it without the runtime importing the compiler.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


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
