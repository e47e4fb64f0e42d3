"""NumPy's protocols on tracers: ufuncs, `np.*` functions, operators and array methods."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from compiler.primitives import OPS
from compiler.trace import indexing, layout, ops
from compiler.trace.tracer import TraceContext, Tracer, TracerError, user_location

# The ufuncs the tracer maps onto ops, read from the records (`OpDef.ufunc`). A record that
# names its ufunc by path (SciPy's) joins once its module is imported: user code can only
# hold that ufunc after importing it, and gradc does not import SciPy for it (`ufunc_op`).
UFUNCS: dict[np.ufunc, str] = {
    d.ufunc: name for name, d in OPS.items() if d.ufunc is not None and not isinstance(d.ufunc, str)
}
_BY_PATH: dict[str, str] = {d.ufunc: name for name, d in OPS.items() if isinstance(d.ufunc, str)}


def ufunc_op(ufunc: np.ufunc) -> str | None:
    """The op the tracer maps `ufunc` onto, or None."""
    name = UFUNCS.get(ufunc)
    if name is None and _BY_PATH:
        for path, op in list(_BY_PATH.items()):
            module, _, attr = path.rpartition(".")
            if module in sys.modules:
                UFUNCS[getattr(sys.modules[module], attr)] = op
                _BY_PATH.pop(path, None)  # another thread may have joined it first
        name = UFUNCS.get(ufunc)
    return name


def traced_ufuncs() -> dict[np.ufunc, str]:
    """Every ufunc the tracer maps onto an op (importing the modules records name)."""
    return {d.resolve_ufunc(): name for name, d in OPS.items() if d.ufunc is not None}


def _scipy_special(ufunc: np.ufunc, name: str) -> bool:
    """Whether `ufunc` is scipy.special's `name` (False while SciPy's is not imported)."""
    sp = sys.modules.get("scipy.special")
    return sp is not None and getattr(sp, name, None) is ufunc


def ufunc_name(ufunc: np.ufunc) -> str:
    """How the user spells a ufunc: `np.exp`, `scipy.special.expit`."""
    if _scipy_special(ufunc, ufunc.__name__) and getattr(np, ufunc.__name__, None) is not ufunc:
        return f"scipy.special.{ufunc.__name__}"
    return f"np.{ufunc.__name__}"


def unsupported(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"{name} is not supported by gradc (at {user_location()}); "
        "see docs/ops.md for the supported operations"
    )


def _fn_name(func: Any) -> str:
    mod = getattr(func, "__module__", "numpy") or "numpy"
    mod = mod.replace("numpy._core.", "numpy.").replace("numpy.core.", "numpy.")
    if (
        mod.startswith("numpy.")
        and mod.count(".") == 1
        and mod not in ("numpy.linalg", "numpy.fft", "numpy.random")
    ):
        mod = "numpy"
    return f"{mod.replace('numpy', 'np', 1)}.{func.__name__}"


def apply_ufunc(ufunc: np.ufunc, *args: Any) -> Tracer:
    if any(isinstance(a, (list, tuple)) for a in args):
        # a Python list of traced values as an operand (`v @ [a, b]`): NumPy makes it an
        # array, so gradc stacks it
        from compiler.trace.creation import array_from, has_tracer

        args = tuple(array_from(a, copy=False) if has_tracer(a) else a for a in args)
    if ufunc is np.matmul:
        return ops.matmul(*args)
    if ufunc is np.positive:  # a new array, not x itself: `y = +x; y += 1` leaves x alone
        x = ops.context_of(*args).lift(args[0])
        return Tracer(
            x._ctx, x.value, weak=x.weak, layout=layout.keep_order(x.shape, x), scalar=x.scalar
        )
    if ufunc is np.reciprocal:
        return ops.elementwise("divide", np.divide, 1.0, args[0])
    if ufunc in (np.deg2rad, np.radians, np.rad2deg, np.degrees):
        x = ops.context_of(*args).lift(args[0])
        x = ops.cast_to(x, ops.result_dtype(ufunc, args))
        factor = np.pi / 180.0 if ufunc in (np.deg2rad, np.radians) else 180.0 / np.pi
        return ops.elementwise("multiply", np.multiply, x, factor)
    if _scipy_special(
        ufunc, "digamma"
    ):  # digamma is polygamma of order 0 (one record for the family)
        x = ops.context_of(*args).lift(args[0])
        x = ops.cast_to(x, ops.result_dtype(ufunc, args))
        return ops.emit(x._ctx, "polygamma", [x], n=0)
    name = ufunc_op(ufunc)
    if name is None:
        raise unsupported(ufunc_name(ufunc))
    if name == "power" and not isinstance(args[1], Tracer) and np.ndim(args[1]) == 0:
        if float(args[1]) == 2.0:  # x**2 is exactly x*x
            # but promote first: int ** 2.0 and f32 ** np.float64(2) are float64 in NumPy
            base, dt = args[0], ops.result_dtype(ufunc, args)
            if isinstance(base, Tracer) and base.dtype != dt:
                base = ops.cast_to(base, dt)
            return ops.elementwise("square", np.square, base)
    return ops.elementwise(name, ufunc, *args)


def handle_ufunc(
    ctx: TraceContext, ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict
) -> Any:
    if method == "at" and ufunc is np.add:
        x, idx, v = inputs
        if not isinstance(x, Tracer):
            raise TracerError("np.add.at into a plain array cannot take traced values")
        indexing.add_at(x, idx, v)
        return None
    if method in ("reduce", "accumulate"):
        from compiler.trace.reduce_api import ufunc_method

        out = ufunc_method(ctx, ufunc, method, inputs, dict(kwargs))
        if out is not None:
            return out
    if method != "__call__":
        raise unsupported(f"{ufunc_name(ufunc)}.{method}")
    out = kwargs.pop("out", None)
    dtype = kwargs.pop("dtype", None)
    for k in ("casting", "order", "subok"):
        kwargs.pop(k, None)
    if kwargs.get("where", True) is not True:
        raise unsupported(f"{ufunc_name(ufunc)}(where=...)")
    kwargs.pop("where", None)
    if kwargs:
        raise unsupported(f"{ufunc_name(ufunc)} with {sorted(kwargs)}")
    if dtype is not None:
        inputs = tuple(ops.cast_to(ctx.lift(a), dtype) for a in inputs)
    result = strong(apply_ufunc(ufunc, *inputs))
    if out is not None:
        target = out[0] if isinstance(out, tuple) else out
        if not isinstance(target, Tracer):
            raise TracerError(
                f"np.{ufunc.__name__}(..., out=...) writes a traced result into "
                "a plain ndarray; create it inside the function (np.zeros) or "
                "drop out="
            )
        if target.scalar:
            raise TypeError(
                f"np.{ufunc.__name__}(..., out=...): return arrays must be of ArrayType; "
                f"out is a NumPy scalar (at {user_location()})"
            )
        target._assign(result)
        return target
    return result


def strong(x: Any) -> Any:
    """A result of a NumPy function: never a weak Python scalar (`np.exp(0.5)` is a strong
    np.float64 in NumPy 2, unlike `0.5 * 2.0`), as a new box so the argument keeps its kind."""
    if isinstance(x, Tracer) and x.weak:
        return Tracer(x._ctx, x.value, layout=x._layout, scalar=x.scalar)
    return x


# -- np.* functions -------------------------------------------------------------------------


def _zeros_like(ctx, a, dtype=None, fill=0.0, order="K", subok=True, shape=None, **kw):
    a = ctx.lift(a)
    out = ops.full(ctx, a.shape if shape is None else shape, fill, dtype or a.dtype)
    if shape is None and order == "K":
        out._layout = layout.keep_order(a.shape, a)  # NumPy keeps the prototype's layout
    return out


def _reduce_fn(op):
    def fn(ctx, a, axis=None, dtype=None, out=None, keepdims=False, **kw):
        if out is not None:
            raise unsupported(f"np.{op}(out=...)")
        where, initial = kw.get("where", True), kw.get("initial")
        if where is not True or initial is not None:
            return masked_reduce(ctx, op, a, axis, keepdims, dtype, where, initial)
        if op == "mean":
            return ops.mean(a, axis, keepdims, dtype)
        return ops.reduce(op, a, axis, keepdims, dtype)

    return fn


def masked_reduce(ctx, op, a, axis, keepdims, dtype, where, initial):
    """sum/mean/max/min with where= (a mask) and initial=: a where() before the reduction."""
    a = ctx.lift(a)
    if dtype is not None:
        a = ops.cast_to(a, dtype)
    mask = ops.broadcast_to(ctx.lift(where), a.shape) if where is not True else None
    if op == "mean":
        if initial is not None:
            raise TypeError("mean() got an unexpected keyword argument 'initial'")
        total = masked_reduce(ctx, "sum", a, axis, keepdims, None, where, None)
        one = ops.cast_to(ctx.lift(mask), total.dtype) if mask is not None else None
        count = (
            ops.reduce("sum", one, axis, keepdims)
            if one is not None
            else ops.full(ctx, (), int(np.prod(a.shape)), total.dtype)
        )
        return total / count
    if mask is not None:
        if op != "sum" and initial is None:
            raise ValueError(
                f"reduction operation '{op}' does not have an identity, so to use a where mask "
                f"one has to specify 'initial' (at {user_location()})"
            )
        fill = 0 if op == "sum" else initial
        a = ops.where(mask, a, ctx.lift(np.asarray(fill, a.dtype)))
    out = ops.reduce(op, a, axis, keepdims)
    if initial is not None:
        ufunc = {"sum": np.add, "max": np.maximum, "min": np.minimum}[op]
        out = ops.elementwise(
            {"sum": "add", "max": "maximum", "min": "minimum"}[op], ufunc, out, initial
        )
    return out


def _round(ctx, a, decimals, out):
    if out is not None:
        raise unsupported("np.round(out=...)")
    a = ctx.lift(a)
    if a.dtype.kind != "f":
        if decimals < 0:
            raise unsupported("np.round of integers with decimals < 0")
        return Tracer(ctx, a.value)
    if decimals == 0:
        return ops.emit(ctx, "rint", [a])
    return ops.emit(ctx, "round", [a], decimals=int(decimals))


def _reshape(ctx, a, *shape, newshape=None, shape_kw=None, order="C", **kw):
    if order not in ("C", None):
        raise unsupported(f"reshape(order={order!r})")
    s = kw.get("shape", newshape)
    if s is None:
        s = shape[0] if len(shape) == 1 else shape
    return ops.reshape(ctx.lift(a), s)


def _copy(ctx, a, order="K", *args, **kw):
    """`np.copy(a)`: a new array (never a scalar) in K order, unlike `a.copy()` (C order)."""
    a = ctx.lift(a)
    proxy = layout.keep_order(a.shape, a) if order == "K" else None
    return ops.fresh_copy(a, proxy)


def _astype(ctx, a, dtype, order="K", **kw):
    a = ctx.lift(a)
    out = ops.cast_to(a, dtype)
    proxy = layout.keep_order(a.shape, a) if order == "K" else None
    return Tracer(ctx, out.value, layout=proxy, scalar=a.scalar)


def _stack_like(fn):
    def handler(ctx, arrays, axis=0, **kw):
        return fn(list(arrays), axis)

    return handler


def _vstack(ctx, tup, **kw):
    items = [ctx.lift(t) for t in tup]
    items = [ops.reshape(t, (1, -1)) if t.ndim < 2 else t for t in items]
    return ops.concatenate(items, 0)


def _hstack(ctx, tup, **kw):
    items = [ctx.lift(t) for t in tup]
    return ops.concatenate(items, 0 if items[0].ndim == 1 else 1)


def _where(ctx, cond, x=None, y=None):
    if x is None or y is None:
        raise unsupported("np.where(cond) with one argument (data-dependent shape)")
    return ops.where(cond, x, y)


def _ravel(a: Tracer, order: str) -> Tracer:
    if order not in ("C", None):
        raise unsupported(f"ravel(order={order!r})")
    return ops.ravel(a)


def _take(ctx, a, indices, axis=None, out=None, mode="raise"):
    a = ctx.lift(a)
    if axis is None:
        a, axis = ops.reshape(a, (-1,)), 0
    key = [slice(None)] * a.ndim
    key[ops.normalize_axis(axis, a.ndim, "take")] = indices
    out = indexing.getitem(a, tuple(key))
    if out.ndim >= 2:  # np.take allocates its result C-contiguous (unlike a[:, idx])
        out._layout = None
    return out


FUNCTIONS: dict[Any, Any] = {
    np.sum: _reduce_fn("sum"),
    np.mean: _reduce_fn("mean"),
    np.max: _reduce_fn("max"),
    np.min: _reduce_fn("min"),
    np.amax: _reduce_fn("max"),
    np.amin: _reduce_fn("min"),
    np.reshape: _reshape,
    np.transpose: lambda ctx, a, axes=None: ops.transpose(ctx.lift(a), axes),
    np.swapaxes: lambda ctx, a, axis1, axis2: ops.swapaxes(ctx.lift(a), axis1, axis2),
    np.expand_dims: lambda ctx, a, axis: ops.expand_dims(ctx.lift(a), axis),
    np.squeeze: lambda ctx, a, axis=None: ops.squeeze(ctx.lift(a), axis),
    np.broadcast_to: lambda ctx, array, shape, subok=False: ops.broadcast_to(
        ctx.lift(array), (shape,) if isinstance(shape, int) else shape
    ),
    np.ravel: lambda ctx, a, order="C": _ravel(ctx.lift(a), order),
    np.concatenate: lambda ctx, arrays, axis=0, out=None, **kw: ops.concatenate(list(arrays), axis),
    np.stack: _stack_like(ops.stack),
    np.vstack: _vstack,
    np.hstack: _hstack,
    np.where: _where,
    np.clip: lambda ctx, a, a_min=None, a_max=None, out=None, **kw: ops.clip(
        a, kw.get("min", a_min), kw.get("max", a_max)
    ),
    np.zeros_like: _zeros_like,
    np.ones_like: lambda ctx, a, dtype=None, **kw: _zeros_like(ctx, a, dtype, 1.0),
    np.empty_like: _zeros_like,
    np.full_like: lambda ctx, a, fill_value, dtype=None, **kw: _zeros_like(
        ctx, a, dtype, fill_value
    ),
    np.copy: _copy,
    np.astype: _astype,
    np.take: _take,
    np.shape: lambda ctx, a: ctx.lift(a).shape,
    np.ndim: lambda ctx, a: ctx.lift(a).ndim,
    np.size: lambda ctx, a, axis=None: (
        ctx.lift(a).size if axis is None else ctx.lift(a).shape[axis]
    ),
    np.result_type: lambda ctx, *a: ops.common_dtype(a),
    np.sinc: lambda ctx, x: ops.elementwise("sinc", np.sinc, x),
    np.round: lambda ctx, a, decimals=0, out=None: _round(ctx, a, decimals, out),
    np.around: lambda ctx, a, decimals=0, out=None: _round(ctx, a, decimals, out),
}


def handle_function(ctx: TraceContext, func: Any, args: tuple, kwargs: dict) -> Any:
    handler = FUNCTIONS.get(func)
    if handler is None:
        raise unsupported(_fn_name(func))
    inner = ops.find_context(_flat_tracers(args) + _flat_tracers(tuple(kwargs.values())))
    return strong(handler(inner or ctx, *args, **kwargs))


def _flat_tracers(xs: tuple) -> list:
    out = []
    for x in xs:
        if isinstance(x, Tracer):
            out.append(x)
        elif isinstance(x, (list, tuple)):
            out.extend(_flat_tracers(tuple(x)))
    return out
