"""Reductions and scans on tracers beyond sum/mean/max/min: var, std, prod, cumsum, cumprod,
diff, average, ptp, nansum, nanmean, and the ufunc methods `reduce`/`accumulate`
(`np.logaddexp.reduce`, `np.add.accumulate`, ...).

var, std, diff, average, ptp and the nan-reductions are compositions of existing primitives
(as NumPy itself computes them); prod, cumsum and cumprod are records (primitives/scan.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.trace import ops
from compiler.trace.numpy_api import FUNCTIONS, unsupported
from compiler.trace.tracer import TraceContext, Tracer


def _no_out(name: str, out: Any) -> None:
    if out is not None:
        raise unsupported(f"np.{name}(out=...)")


def _var(
    ctx,
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof=0,
    keepdims=False,
    *,
    where=True,
    mean=None,
    correction=None,
):
    _no_out("var", out)
    if where is not True or mean is not None:
        raise unsupported("np.var with where= or mean=")
    a = ctx.lift(a)
    if correction is not None:
        ddof = correction
    axes = ops.normalize_axes(axis, a.ndim, "var")
    n = int(np.prod([a.shape[i] for i in axes], dtype=np.int64))
    m = ops.mean(a, axes, True, dtype)
    d = a - m
    ss = ops.reduce("sum", d * d, axes, keepdims)
    # n - ddof <= 0 gives inf/nan, as in NumPy
    return ss / ctx.lift(np.asarray(max(n - ddof, 0), ss.dtype))


def _std(ctx, a, *args, **kw):
    return np.sqrt(_var(ctx, a, *args, **kw))


def _prod(ctx, a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    _no_out("prod", out)
    if where is not True:
        raise unsupported("np.prod(where=...)")
    a = ctx.lift(a)
    dt = np.dtype(dtype) if dtype is not None else np.prod(np.ones((1,), a.dtype)).dtype
    a = ops.cast_to(a, dt)
    axes = ops.normalize_axes(axis, a.ndim, "prod")
    out_t = ops.emit(ctx, "prod", [a], axis=axes, keepdims=bool(keepdims)) if axes else a
    return out_t * initial if initial is not None else out_t


def _scan(name: str):
    def fn(ctx, a, axis=None, dtype=None, out=None):
        _no_out(name, out)
        a = ctx.lift(a)
        if axis is None:
            a, axis = ops.reshape(a, (-1,)), 0
        if dtype is not None:
            a = ops.cast_to(a, dtype)
        elif a.dtype.kind in "bi" and a.dtype.itemsize < 8:
            a = ops.cast_to(a, np.int64)  # NumPy accumulates small ints in the platform int
        if a.ndim == 0:
            a = ops.reshape(a, (1,))
        return ops.emit(ctx, name, [a], axis=ops.normalize_axis(axis, a.ndim, f"np.{name}"))

    return fn


def _diff(ctx, a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    a = ctx.lift(a)
    axis = ops.normalize_axis(axis, a.ndim, "diff")
    parts = []
    for extra in (prepend, a, append):
        if extra is np._NoValue:
            continue
        e = ctx.lift(extra)
        if e is not a and e.ndim == 0:
            shape = list(a.shape)
            shape[axis] = 1
            e = ops.broadcast_to(e, tuple(shape))
        parts.append(e)
    if len(parts) > 1:
        a = ops.concatenate(parts, axis)
    for _ in range(int(n)):
        k = a.shape[axis]
        hi = [slice(None)] * a.ndim
        lo = [slice(None)] * a.ndim
        hi[axis], lo[axis] = slice(1, k), slice(0, k - 1)
        a = a[tuple(hi)] - a[tuple(lo)] if a.dtype != np.bool_ else a[tuple(hi)] != a[tuple(lo)]
    return a


def _average(ctx, a, axis=None, weights=None, returned=False, *, keepdims=False):
    a = ctx.lift(a)
    if weights is None:
        avg = ops.mean(a, axis, keepdims)
        wsum = ops.full(ctx, avg.shape, a.size // max(avg.size, 1), avg.dtype)
    else:
        w = ctx.lift(weights)
        if w.shape != a.shape:
            if axis is None or w.ndim != 1:
                raise TypeError("Axis must be specified when shapes of a and weights differ.")
            shape = [1] * a.ndim
            shape[ops.normalize_axis(axis, a.ndim, "average")] = w.shape[0]
            w = ops.reshape(w, shape)
        wsum = ops.reduce("sum", ops.broadcast_to(w, a.shape) * 1.0, axis, keepdims)
        avg = ops.reduce("sum", a * w, axis, keepdims) / wsum
    return (avg, wsum) if returned else avg


def _ptp(ctx, a, axis=None, out=None, keepdims=False):
    _no_out("ptp", out)
    return ops.reduce("max", a, axis, keepdims) - ops.reduce("min", a, axis, keepdims)


def _finite_or(ctx: TraceContext, a: Tracer, fill: float) -> Tracer:
    a = ctx.lift(a)
    return ops.where(a == a, a, ctx.lift(np.asarray(fill, a.dtype)))  # nan != nan


def _nansum(ctx, a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("nansum", out)
    return ops.reduce("sum", _finite_or(ctx, a, 0.0), axis, keepdims, dtype)


def _nanmean(ctx, a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("nanmean", out)
    a = ctx.lift(a)
    count = ops.reduce("sum", ops.cast_to(a == a, a.dtype), axis, keepdims)
    return _nansum(ctx, a, axis, dtype, None, keepdims) / count


FUNCTIONS.update(
    {
        np.var: _var,
        np.std: _std,
        np.prod: _prod,
        np.cumsum: _scan("cumsum"),
        np.cumprod: _scan("cumprod"),
        np.diff: _diff,
        np.average: _average,
        np.ptp: _ptp,
        np.nansum: _nansum,
        np.nanmean: _nanmean,
    }
)


def ufunc_method(ctx: TraceContext, ufunc: np.ufunc, method: str, inputs: tuple, kw: dict):
    """`np.add.reduce`, `np.logaddexp.reduce`, `np.multiply.accumulate`, ...; None if the
    combination is not one gradc knows."""
    from compiler.trace.scipy_api import logsumexp

    (a,) = inputs
    axis = kw.pop("axis", 0)
    dtype, out, keepdims = kw.pop("dtype", None), kw.pop("out", None), kw.pop("keepdims", False)
    if kw or out is not None:
        return None
    if method == "reduce":
        reducers = {
            np.add: lambda: ops.reduce("sum", a, axis, keepdims, dtype),
            np.multiply: lambda: _prod(ctx, a, axis, dtype, None, keepdims),
            np.maximum: lambda: ops.reduce("max", a, axis, keepdims, dtype),
            np.minimum: lambda: ops.reduce("min", a, axis, keepdims, dtype),
            np.logaddexp: lambda: logsumexp(ctx.lift(a), axis=axis, keepdims=keepdims),
        }
        fn = reducers.get(ufunc)
        return fn() if fn is not None else None
    if method == "accumulate" and ufunc in (np.add, np.multiply) and not keepdims:
        return _scan("cumsum" if ufunc is np.add else "cumprod")(ctx, a, axis, dtype)
    return None


def _method(name):
    def method(self, *args: Any, **kwargs: Any) -> Any:
        return FUNCTIONS[getattr(np, name)](self._ctx, self, *args, **kwargs)

    return method


for _name in ("var", "std", "prod", "cumsum", "cumprod", "ptp"):
    setattr(Tracer, _name, _method(_name))
