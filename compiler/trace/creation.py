"""Array creation inside traced functions (`np.zeros`, `np.ones`, `np.empty`, `np.full`,
`np.eye`, `np.identity`).

These take no array argument, so NumPy's protocols never see them. While a trace is
active on this thread, the `numpy` module attributes are swapped for versions that return
tracers (fills or constants), so that writes into them become update nodes. Other threads,
and code that imported the functions by name before, keep NumPy's originals.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

import numpy as np

from compiler.primitives.registry import active_trace
from compiler.trace import ops
from compiler.trace.tracer import TraceContext

_local = threading.local()
_NUMPY_DIR = os.path.dirname(np.__file__)
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_lock = threading.Lock()
_patch_count = 0
_ORIG = {name: getattr(np, name) for name in ("zeros", "ones", "empty", "full", "eye", "identity")}


def active_contexts() -> list[TraceContext]:
    return _local.__dict__.setdefault("stack", [])


def _current() -> TraceContext | None:
    """The active trace, if the caller of the creation function is user code (NumPy's and
    gradc's own internals call these too, and must get real arrays)."""
    stack = getattr(_local, "stack", None)
    if not stack:
        return None
    caller = sys._getframe(2).f_code.co_filename
    if caller.startswith(_NUMPY_DIR) or caller.startswith(_PKG_DIR):
        return None
    return stack[-1]


def _fill_fn(name, value):
    orig = _ORIG[name]

    def fn(shape, dtype=float, order="C", *, like=None, device=None):
        ctx = _current()
        if ctx is None or like is not None:
            return orig(shape, dtype=dtype, order=order)
        return ops.full(ctx, shape, value, dtype if dtype is not None else float)

    fn.__name__ = name
    fn.__doc__ = orig.__doc__
    return fn


def _full(shape, fill_value, dtype=None, order="C", *, like=None, device=None):
    ctx = _current()
    if ctx is None or like is not None:
        return _ORIG["full"](shape, fill_value, dtype=dtype, order=order)
    return ops.full(ctx, shape, fill_value, dtype)


def _const_fn(name):
    orig = _ORIG[name]

    def fn(*args, **kwargs):
        ctx = _current()
        out = orig(*args, **kwargs)
        return out if ctx is None else ctx.lift(out)

    fn.__name__ = name
    fn.__doc__ = orig.__doc__
    return fn


_PATCHES = {
    "zeros": _fill_fn("zeros", 0),
    "ones": _fill_fn("ones", 1),
    "empty": _fill_fn("empty", 0),
    "full": _full,
    "eye": _const_fn("eye"),
    "identity": _const_fn("identity"),
}


@contextlib.contextmanager
def tracing(ctx: TraceContext) -> Iterator[TraceContext]:
    """Make ctx the innermost active trace on this thread (creation calls and `bind`)."""
    global _patch_count
    stack = active_contexts()
    stack.append(ctx)
    with _lock:
        if _patch_count == 0:
            for name, fn in _PATCHES.items():
                setattr(np, name, fn)
        _patch_count += 1
    try:
        with active_trace(ctx.bind_hook):
            yield ctx
    finally:
        with _lock:
            _patch_count -= 1
            if _patch_count == 0:
                for name, fn in _ORIG.items():
                    setattr(np, name, fn)
        stack.pop()
