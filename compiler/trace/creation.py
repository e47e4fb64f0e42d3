"""The active-trace stack, and the NumPy calls that take no array argument (`np.zeros`,
`np.ones`, `np.empty`, `np.full`, `np.eye`, `np.identity`, `np.array` of traced values).

NumPy's protocols never see these calls, so the user's code is run with a traced NumPy
namespace (`compiler.trace.namespace`) in which these names resolve to the functions here.
Nothing global is patched: NumPy's own code, other threads and other modules keep NumPy's
originals, and these functions fall back to NumPy's when no trace is active.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from compiler.primitives.registry import active_trace
from compiler.trace import ops
from compiler.trace.tracer import TraceContext, Tracer, TracerError, user_location

_local = threading.local()
# Traces active on all threads together, read without a lock by the API's scalar call path:
# zero means no thread is tracing, so the thread-local stack need not be looked at.
TRACES_ACTIVE = [0]
_count_lock = threading.Lock()


def active_contexts() -> list[TraceContext]:
    """The trace contexts active on this thread, innermost last."""
    return _local.__dict__.setdefault("stack", [])


def current() -> TraceContext | None:
    """The innermost active trace on this thread, if any."""
    stack = active_contexts()
    return stack[-1] if stack else None


@contextlib.contextmanager
def tracing(ctx: TraceContext) -> Iterator[TraceContext]:
    """Make ctx the innermost active trace on this thread (creation calls and `bind`)."""
    stack = active_contexts()
    stack.append(ctx)
    with _count_lock:
        TRACES_ACTIVE[0] += 1
    try:
        with active_trace(ctx.bind_hook):
            yield ctx
    finally:
        stack.pop()
        with _count_lock:
            TRACES_ACTIVE[0] -= 1


def _fill(name: str, value: Any):
    orig = getattr(np, name)

    def fn(shape, dtype=float, order="C", *, like=None, device=None):
        ctx = current()
        if ctx is None or like is not None:
            return orig(shape, dtype=dtype, order=order)
        return ops.full(ctx, shape, value, dtype if dtype is not None else float)

    fn.__name__ = name
    fn.__doc__ = orig.__doc__
    return fn


def _full(shape, fill_value, dtype=None, order="C", *, like=None, device=None):
    ctx = current()
    if ctx is None or like is not None:
        return np.full(shape, fill_value, dtype=dtype, order=order)
    return ops.full(ctx, shape, fill_value, dtype)


def _const(name: str):
    orig = getattr(np, name)

    def fn(*args, **kwargs):
        ctx = current()
        out = orig(*args, **kwargs)
        return out if ctx is None else ctx.lift(out)

    fn.__name__ = name
    fn.__doc__ = orig.__doc__
    return fn


def has_tracer(x: Any) -> bool:
    """Whether x is a tracer or a (nested) list/tuple holding one."""
    if isinstance(x, Tracer):
        return True
    if isinstance(x, (list, tuple)):
        return any(has_tracer(i) for i in x)
    return False


def _dummy(x: Any) -> Any:
    """x with every tracer replaced by zeros of its shape and dtype (for NumPy's own rules
    on shape, raggedness and dtype)."""
    if isinstance(x, Tracer):
        return np.zeros(x.shape, x.dtype)
    if isinstance(x, (list, tuple)):
        return [_dummy(i) for i in x]
    return x


def _build(ctx: TraceContext, x: Any, dtype: np.dtype) -> Tracer:
    if isinstance(x, Tracer):
        return ops.cast_to(ctx.lift(x), dtype)
    if isinstance(x, (list, tuple)) and has_tracer(x):
        if not x:
            return ctx.lift(np.zeros((0,), dtype))
        return ops.stack([_build(ctx, i, dtype) for i in x], 0)
    return ctx.lift(np.asarray(x, dtype=dtype))


def array_from(x: Any, dtype: Any = None, *, copy: bool = True, op: str = "np.array") -> Any:
    """`np.array(x)` where x is a tracer or nested lists/tuples of tracers and numbers."""
    ctx = current()
    if ctx is None or not has_tracer(x):
        return np.array(x, dtype=dtype) if copy else np.asarray(x, dtype=dtype)
    if isinstance(x, Tracer):
        ctx = ops.context_of(x)
        out = ops.cast_to(ctx.lift(x), dtype) if dtype is not None else ctx.lift(x)
        if out is x and copy:
            out = Tracer(ctx, x.value, weak=x.weak)
        return out
    try:
        want = np.asarray(_dummy(x), dtype=dtype)
    except ValueError as exc:
        raise ValueError(f"{op}: {exc} (at {user_location()})") from None
    if want.dtype == object:
        raise TracerError(f"{op}: cannot build an array from {type(x).__name__} of mixed items")
    ctx = ops.find_context(_flat(x)) or ctx
    out = _build(ctx, x, want.dtype)
    if out.shape != want.shape:  # NumPy's shape is the reference (nested sequences)
        raise TracerError(f"{op}: internal shape mismatch {out.shape} != {want.shape}")
    return out


def _flat(x: Any) -> list:
    if isinstance(x, Tracer):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for i in x for t in _flat(i)]
    return []


def _array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    out = array_from(object, dtype, copy=copy is not False)
    if ndmin and isinstance(out, Tracer) and out.ndim < ndmin:
        out = ops.reshape(out, (1,) * (ndmin - out.ndim) + out.shape)
    elif not isinstance(out, Tracer) and ndmin:
        out = np.array(out, ndmin=ndmin)
    return out


def _asarray(a, dtype=None, order=None, *, like=None, **kw):
    return array_from(a, dtype, copy=False, op="np.asarray")


# NumPy function -> the version the user's code sees while tracing
CREATION: dict[Any, Any] = {
    np.zeros: _fill("zeros", 0),
    np.ones: _fill("ones", 1),
    np.empty: _fill("empty", 0),
    np.full: _full,
    np.eye: _const("eye"),
    np.identity: _const("identity"),
    np.array: _array,
    np.asarray: _asarray,
    np.asanyarray: _asarray,
    np.ascontiguousarray: _asarray,
}
