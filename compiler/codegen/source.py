"""A tiny line emitter for generated Python, and the naming helpers every generator shares."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import numpy as np

# NaN and inf must propagate, so never fastmath=True (which implies nnan/ninf). 'nsz' is
# left out too, although it is in the usual "safe" set: together with 'reassoc' it lets LLVM
# fold (x + y) - y to x, so inf - inf came out finite (tests/robustness/test_nans.py).
# 'reassoc' alone keeps reductions vectorised.
FASTMATH = "{'arcp', 'contract', 'afn', 'reassoc'}"
NJIT = "@numba.njit(cache=True, error_model='numpy', fastmath=_FASTMATH)"
NJIT_PARALLEL = "@numba.njit(cache=True, error_model='numpy', fastmath=_FASTMATH, parallel=True)"
# a kernel that several threads run at once (the row kernel's parts, rowloop.py)
NJIT_NOGIL = "@numba.njit(cache=True, nogil=True, error_model='numpy', fastmath=_FASTMATH)"


class Source:
    """Collects indented lines; `block()` indents the lines emitted inside it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._depth = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("    " * self._depth + text) if text else "")

    @contextlib.contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.line(header)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    @property
    def indent(self) -> str:
        """The indentation the next line gets."""
        return "    " * self._depth

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def ctor(dtype: np.dtype) -> str:
    """The NumPy scalar constructor that spells `dtype` in generated code (`np.float32`)."""
    dtype = np.dtype(dtype)
    return "np.bool_" if dtype == np.bool_ else f"np.{dtype.name}"


def digest(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def name_kernel(template: str) -> tuple[str, str]:
    """Content-address a kernel: `template` holds `{name}` where the def's name goes."""
    name = "k_" + digest(template)
    return name, template.replace("{name}", name)
