"""Tracer-level op constructors: NumPy's promotion, casting and shape conventions, turned
into primitive nodes. `numpy_api` maps NumPy calls onto these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.trace import layout
from compiler.trace.promotion import common_dtype, result_dtype
from compiler.trace.tracer import TraceContext, Tracer, TracerError, find_context, user_location


def context_of(*args: Any) -> TraceContext:
    ctx = find_context(args)
    if ctx is None:
        raise TracerError("internal: no traced operand")
    return ctx


def emit(
    ctx: TraceContext,
    op: str,
    args: Sequence[Tracer],
    weak: bool = False,
    *,
    layout: np.ndarray | None = None,
    scalar: bool = False,
    **attrs: Any,
) -> Tracer:
    value = ctx.emit(op, [a.value for a in args], attrs)
    return Tracer(ctx, value, weak=weak, layout=layout, scalar=scalar)


def fresh_copy(x: Tracer, proxy: np.ndarray | None = None, scalar: bool = False) -> Tracer:
    """A new array holding x's value (NumPy made a copy): no view of x, layout `proxy`."""
    return Tracer(x._ctx, x.value, layout=proxy, scalar=scalar)


def cast_to(x: Tracer, dtype: Any, op: str = "astype") -> Tracer:
    dtype = np.dtype(dtype)
    if dtype.kind not in "fiub" or dtype == np.float16:
        raise NotImplementedError(
            f"{op}: dtype {dtype} is not supported by gradc (use "
            "float32, float64, integers or bool)"
        )
    if x.dtype == dtype:
        return x
    return emit(x._ctx, "astype", [x], weak=x.weak, dtype=dtype)


def lift_all(ctx: TraceContext, args: Sequence[Any], dtype: np.dtype) -> list[Tracer]:
    out = []
    for a in args:
        if isinstance(a, Tracer):
            out.append(cast_to(ctx.lift(a), dtype))
        else:
            out.append(ctx.lift(a, dtype=dtype))
    return out


def elementwise(op: str, ufunc: np.ufunc, *args: Any) -> Tracer:
    """Apply an elementwise primitive with NumPy's promotion: cast operands to the result
    dtype (or to the common dtype for comparisons) first."""
    ctx = context_of(*args)
    out_dt = result_dtype(ufunc, args)
    in_dt = common_dtype(args) if out_dt == np.bool_ and op not in ("logical_not",) else out_dt
    if op in ("logical_and", "logical_or", "logical_not"):
        in_dt = np.dtype(bool)
    vals = lift_all(ctx, args, in_dt)
    weak = all(
        isinstance(a, Tracer) and a.weak or not isinstance(a, (Tracer, np.ndarray, np.generic))
        for a in args
    )
    out = emit(ctx, op, vals, weak=weak)
    # NumPy returns a scalar (immutable) for a 0-d ufunc result, and allocates an array
    # result in K order: the operands' memory layout, not always C (`x.T * 1.0` is F)
    out.scalar = out.ndim == 0
    if out.ndim >= 2:
        out._layout = layout.keep_order(out.shape, *args)
    return out


def broadcast_to(x: Tracer, shape: Sequence[int]) -> Tracer:
    shape = tuple(int(d) for d in shape)
    if x.shape == shape:
        return x
    return Tracer(
        x._ctx,
        x._ctx.emit("broadcast_to", [x.value], {"shape": shape}),
        weak=x.weak,
        base=x,
        view_fwd=lambda b: broadcast_to(b, shape),
        layout=np.broadcast_to(x.layout, shape),
    )


def _view(x: Tracer, op: str, attrs: dict, fwd, bwd, proxy: np.ndarray | None = None) -> Tracer:
    if x.scalar:  # a NumPy scalar shares no memory: NumPy makes a new array (or scalar)
        out = emit(x._ctx, op, [x], **attrs)
        out.scalar = out.ndim == 0
        return out
    return Tracer(
        x._ctx,
        x._ctx.emit(op, [x.value], attrs),
        weak=x.weak,
        base=x,
        view_fwd=fwd,
        view_bwd=bwd,
        layout=proxy,
    )


def identity_view(x: Tracer) -> Tracer:
    """A view with x's shape (`x.reshape(x.shape)`, `x[...]`): shares writes with x."""
    if x.scalar:  # `s.T`, `s.reshape(())` of a NumPy scalar: the same immutable scalar
        return Tracer(x._ctx, x.value, weak=x.weak, scalar=True)
    return Tracer(
        x._ctx,
        x.value,
        weak=x.weak,
        base=x,
        view_fwd=lambda b: b,
        view_bwd=lambda b, v: v,
        layout=x._layout,
    )


def reshape(x: Tracer, shape: Any) -> Tracer:
    """`x.reshape(shape)`: a view where NumPy's strides allow one, else a copy (as NumPy)."""
    shape_t = _reshape_shape(x, shape)
    if shape_t == x.shape:
        return identity_view(x)
    proxy = layout.reshape_view(x.layout, shape_t)
    if proxy is None:  # NumPy copies (a transposed or strided x): writes stay in the copy
        return emit(x._ctx, "reshape", [x], shape=shape_t)
    return view_reshape(x, shape_t, proxy)


def ravel(x: Tracer) -> Tracer:
    """`np.ravel(x)`: a view only of a C-contiguous x (NumPy copies every other layout)."""
    if x.ndim == 1 and x.layout.flags.c_contiguous:
        return identity_view(x)
    proxy = layout.ravel_view(x.layout)
    if proxy is None:
        if x.ndim == 1:  # a strided 1-D x: a copy of the same shape
            return fresh_copy(x)
        return emit(x._ctx, "reshape", [x], shape=(x.size,))
    return view_reshape(x, (x.size,), proxy)


def view_reshape(x: Tracer, shape: Any, proxy: np.ndarray | None = None) -> Tracer:
    """A reshape that is a view of x whatever x's layout (basic indexing, squeeze...)."""
    shape_t = _reshape_shape(x, shape)
    if shape_t == x.shape:
        return identity_view(x)
    old = x.shape
    return _view(
        x,
        "reshape",
        {"shape": shape_t},
        lambda b: view_reshape(b, shape_t),
        lambda b, v: view_reshape(v, old),
        proxy,
    )


def _reshape_shape(x: Tracer, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = list(int(d) for d in shape)
    if shape.count(-1) > 1:
        raise ValueError("reshape: can only specify one unknown dimension")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or x.size % known:
            raise ValueError(
                f"reshape: cannot reshape {x.type} into {tuple(shape)} (at {user_location()})"
            )
        shape[shape.index(-1)] = x.size // known
    shape_t = tuple(shape)
    if int(np.prod(shape_t, dtype=np.int64)) != x.size:
        raise ValueError(f"reshape: cannot reshape {x.type} into {shape_t} (at {user_location()})")
    return shape_t


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    a = int(axis)
    if not -ndim <= a < max(ndim, 1):
        raise np.exceptions.AxisError(
            f"{op}: axis {axis} is out of bounds for array of dimension {ndim}"
        )
    return a % max(ndim, 1)


def normalize_axes(axis: Any, ndim: int, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = tuple(sorted(normalize_axis(a, ndim, op) for a in axis))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: duplicate value in 'axis'")
    return out


def transpose(x: Tracer, axes: Any) -> Tracer:
    if axes is None or axes == ():
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(normalize_axis(a, x.ndim, "transpose") for a in axes)
    if axes == tuple(range(x.ndim)):
        return identity_view(x)
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return _view(
        x,
        "transpose",
        {"axes": axes},
        lambda b: transpose(b, axes),
        lambda b, v: transpose(v, tuple(inv)),
        x.layout.transpose(axes),
    )


def swapaxes(x: Tracer, a1: int, a2: int) -> Tracer:
    axes = list(range(x.ndim))
    i, j = normalize_axis(a1, x.ndim, "swapaxes"), normalize_axis(a2, x.ndim, "swapaxes")
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(x, tuple(axes))


def moveaxis_end(x: Tracer, axes: Sequence[int]) -> Tracer:
    """x with `axes` moved, in order, to the end."""
    rest = tuple(i for i in range(x.ndim) if i not in axes)
    return transpose(x, rest + tuple(axes))


def expand_dims(x: Tracer, axis: Any) -> Tracer:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    n = x.ndim + len(axes)
    axes = sorted(normalize_axis(a, n, "expand_dims") for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return view_reshape(x, shape, x.layout.reshape(shape))  # NumPy: always a view


def squeeze(x: Tracer, axis: Any = None) -> Tracer:
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(
                    "squeeze: cannot select an axis to squeeze out which has size not equal to one"
                )
    shape = [d for i, d in enumerate(x.shape) if i not in axes]
    return view_reshape(x, shape, x.layout.reshape(shape))  # NumPy: always a view


def reduce(op: str, x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Tracer:
    ctx = context_of(x)
    x = ctx.lift(x)
    axes = normalize_axes(axis, x.ndim, op)
    if op == "sum":
        dt = np.dtype(dtype) if dtype is not None else np.sum(np.ones((1,), x.dtype)).dtype
        x = cast_to(x, dt)
    elif dtype is not None:
        x = cast_to(x, dtype)
    proxy = layout.reduced(x.layout, axes, bool(keepdims)) if x.ndim >= 2 else None
    out = emit(ctx, op, [x], axis=axes, keepdims=bool(keepdims), layout=proxy)
    out.scalar = out.ndim == 0  # NumPy returns a full reduction as a scalar
    return out


def mean(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Tracer:
    ctx = context_of(x)
    x = ctx.lift(x)
    axes = normalize_axes(axis, x.ndim, "mean")
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    dt = np.dtype(dtype) if dtype is not None else np.mean(np.ones((1,), x.dtype)).dtype
    s = reduce("sum", cast_to(x, dt), axes, keepdims)
    return elementwise("divide", np.divide, s, ctx.lift(np.asarray(n, dtype=dt)))


def matmul(a: Any, b: Any, op: str = "matmul") -> Tracer:
    ctx = context_of(a, b)
    dt = common_dtype([a, b])
    if dt.kind != "f":
        raise NotImplementedError(
            f"{op}: integer or boolean matrix products are not "
            "supported by gradc (cast to float first)"
        )
    a, b = lift_all(ctx, [a, b], dt)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"{op}: operands must not be 0-d (use *)")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = reshape(a, (1, a.shape[0]))
    if squeeze_b:
        b = reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"{op}: inner dimensions differ: {a.type} @ {b.type} (at {user_location()})"
        )
    if b.ndim == 2 and a.ndim > 2:
        # (..., m, k) @ (k, n): one BLAS call on the flattened batch
        lead = a.shape[:-1]
        out = emit(ctx, "matmul", [reshape(a, (-1, a.shape[-1])), b])
        out = reshape(out, lead + (b.shape[-1],))
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = broadcast_to(a, batch + a.shape[-2:])
        b = broadcast_to(b, batch + b.shape[-2:])
        out = emit(ctx, "matmul", [a, b])
    proxy = layout.matmul(a.layout, b.layout)
    if squeeze_a or squeeze_b:
        shape = list(out.shape)
        if squeeze_b:
            shape.pop(-1)
            proxy = proxy[..., 0]
        if squeeze_a:
            shape.pop(-1 if squeeze_b else -2)
            proxy = proxy[..., 0] if squeeze_b else proxy[..., 0, :]
        out = reshape(out, shape)
    if op == "dot":
        proxy = None  # np.dot allocates its result C-contiguous
    return Tracer(ctx, out.value, layout=proxy if out.ndim >= 2 else None, scalar=out.ndim == 0)


def where(cond: Any, x: Any, y: Any) -> Tracer:
    ctx = context_of(cond, x, y)
    c = ctx.lift(cond)
    if c.dtype != np.bool_:
        c = elementwise("not_equal", np.not_equal, c, 0)
    dt = common_dtype([x, y])
    xv, yv = lift_all(ctx, [x, y], dt)
    out = emit(ctx, "where", [c, xv, yv])
    out._layout = layout.keep_order(out.shape, cond, x, y)
    return out


def clip(x: Any, lo: Any, hi: Any) -> Tracer:
    out = x
    if lo is not None:
        out = elementwise("maximum", np.maximum, out, lo)
    if hi is not None:
        out = elementwise("minimum", np.minimum, out, hi)
    if out is x:  # np.clip(x, None, None) is still a new array
        out = fresh_copy(context_of(x).lift(x), layout.keep_order(np.shape(x), x))
    elif out.ndim >= 2:
        out._layout = layout.keep_order(out.shape, x, lo, hi)
    return out


def concatenate(seq: Sequence[Any], axis: int | None = 0) -> Tracer:
    ctx = context_of(*seq)
    items = [ctx.lift(s) for s in seq]
    if axis is None:
        items = [reshape(s, (-1,)) for s in items]
        axis = 0
    dt = common_dtype(seq)
    items = [cast_to(s, dt) for s in items]
    if not items:
        raise ValueError("need at least one array to concatenate")
    axis = normalize_axis(axis, items[0].ndim, "concatenate")
    proxies = [s.layout for s in items] if items[0].ndim >= 2 else None
    items = [s for s in items if s.shape[axis] != 0] or items[:1]
    if len(items) == 1:
        out = Tracer(ctx, items[0].value)
    else:
        out = emit(ctx, "concatenate", items, axis=axis)  # checks the shapes first
    if proxies:  # NumPy orders the result's axes as its inputs' strides (F in, F out)
        out._layout = np.concatenate(proxies, axis)
    return out


def stack(seq: Sequence[Any], axis: int = 0) -> Tracer:
    ctx = context_of(*seq)
    items = [ctx.lift(s) for s in seq]
    shapes = {s.shape for s in items}
    if len(shapes) != 1:
        raise ValueError(
            "stack: all input arrays must have the same shape ("
            + " with ".join(str(s.type) for s in items)
            + f") (at {user_location()})"
        )
    axis = normalize_axis(axis, items[0].ndim + 1, "stack")
    return concatenate([expand_dims(s, axis) for s in items], axis)


def full(ctx: TraceContext, shape: Any, fill: Any, dtype: Any = None) -> Tracer:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(d) for d in shape)
    if isinstance(fill, Tracer):
        dt = np.dtype(dtype) if dtype is not None else fill.dtype
        return Tracer(ctx, broadcast_to(cast_to(ctx.lift(fill), dt), shape).value)
    dt = np.dtype(dtype) if dtype is not None else np.asarray(fill).dtype
    return emit(ctx, "full", [], shape=shape, dtype=dt, fill=np.asarray(fill, dt).item())
