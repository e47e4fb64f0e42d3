"""The compiled bytecode of generated modules, kept beside Numba's files in `__pycache__`.

A generated module is compiled from the text `runtime.cache.load_module` has checked, never
imported from a `.pyc` (which Python would trust by a timestamp). Compiling that text is
the largest cost of loading a big stage's module in a warm process (the 100-step integrator's
module is 178 kB of Python: 60 ms), so its code object is kept too, checked as strictly:

    <entry folder>/__pycache__/<entry stem>.<cache tag>.gcode
    = Python's magic number (4 bytes) + sha256(file name + text) (32 bytes) + marshal(code)

A file whose magic number or digest differs (another Python, another text, an entry that
moved: Numba and tracebacks read the code's file name) or that does not unmarshal is
ignored and rewritten; writes are atomic. Same trust as the entry's source: the user's own
cache folder. A folder that cannot be written costs only the speed-up.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import sys
import types
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

_MAGIC = importlib.util.MAGIC_NUMBER


def _code_path(path: Path) -> Path:
    return path.parent / "__pycache__" / f"{path.stem}.{sys.implementation.cache_tag}.gcode"


def compile_cached(text: str, path: Path, write: Callable[[Path, bytes], None]) -> types.CodeType:
    """`compile(text, str(path), "exec")`, read from the bytecode file or compiled and
    stored there with `write(path, data)` (an atomic writer)."""
    check = hashlib.sha256(f"{path}\n{text}".encode()).digest()
    where = _code_path(path)
    with suppress(OSError):
        data = where.read_bytes()
        if data[:4] == _MAGIC and data[4:36] == check:
            with suppress(Exception):  # damaged: marshal raises ValueError, EOFError, ...
                code = marshal.loads(data[36:])
                if isinstance(code, types.CodeType) and code.co_filename == str(path):
                    return code
    code = compile(text, str(path), "exec", dont_inherit=True)
    with suppress(OSError):
        where.parent.mkdir(exist_ok=True)
        write(where, _MAGIC + check + marshal.dumps(code))
    return code


__all__ = ["compile_cached"]
