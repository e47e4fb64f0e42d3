"""Sorting and selection on tracers: sort, argsort, argmax, argmin, searchsorted,
take_along_axis, put_along_axis, partition, argpartition.

`sort(x)` is `take_along_axis(x, argsort(x))`, and `take_along_axis` is one `take` from the
flattened array at flat indices computed from the (possibly traced) integer indices, so the
gradient of a sort is scattered back through the permutation. `partition` returns the fully
sorted array: a valid partition (NumPy leaves the order within each side unspecified, so its
exact arrangement can differ from NumPy's; every element is on the correct side of kth).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.trace import indexing, ops
from compiler.trace.numpy_api import FUNCTIONS, unsupported
from compiler.trace.tracer import TraceContext, Tracer


def _axis_last(ctx: TraceContext, a: Any, axis: Any) -> tuple[Tracer, int]:
    a = ctx.lift(a)
    if axis is None:
        return ops.reshape(a, (-1,)), 0
    return a, ops.normalize_axis(axis, a.ndim, "sort")


def _argsort(ctx, a, axis=-1, kind=None, order=None, *, stable=None):
    if order is not None:
        raise unsupported("np.argsort(order=...)")
    a, axis = _axis_last(ctx, a, axis)
    return ops.emit(ctx, "argsort", [a], axis=axis)


def _arg(name):
    def fn(ctx, a, axis=None, out=None, *, keepdims=False):
        if out is not None:
            raise unsupported(f"np.{name}(out=...)")
        a = ctx.lift(a)
        if axis is None:
            r = ops.emit(ctx, name, [ops.reshape(a, (-1,))], axis=0, keepdims=False)
            return ops.reshape(r, (1,) * a.ndim) if keepdims else r
        axis = ops.normalize_axis(axis, a.ndim, f"np.{name}")
        return ops.emit(ctx, name, [a], axis=axis, keepdims=bool(keepdims))

    return fn


def flat_indices(arr: Tracer, idx: Any, axis: int) -> tuple[Tracer, tuple[int, ...]]:
    """Flat positions in `arr.ravel()` of `take_along_axis(arr, idx, axis)`, and its shape."""
    ctx = arr._ctx
    idx = ctx.lift(idx)
    if idx.dtype.kind not in "iu":
        raise IndexError("take_along_axis: indices must be integers")
    if idx.ndim != arr.ndim:
        raise ValueError(
            f"take_along_axis: indices {idx.type} and array {arr.type} must have the same "
            "number of dimensions"
        )
    shape = list(
        np.broadcast_shapes(
            arr.shape[:axis] + (1,) + arr.shape[axis + 1 :],
            idx.shape[:axis] + (1,) + idx.shape[axis + 1 :],
        )
    )
    shape[axis] = idx.shape[axis]
    shape_t = tuple(shape)
    idx = ops.broadcast_to(ops.cast_to(idx, np.int64), shape_t)
    n = arr.shape[axis]
    idx = ops.where(idx < 0, idx + n, idx)  # NumPy's negative indices
    strides = np.cumprod((arr.shape[1:] + (1,))[::-1])[::-1]  # C-order strides in elements
    flat: Any = None
    for d in range(arr.ndim):
        if d == axis:
            part = idx * int(strides[d])
        else:
            r = np.arange(shape_t[d], dtype=np.int64) * int(strides[d])
            part = ctx.lift(r.reshape([-1 if k == d else 1 for k in range(arr.ndim)]))
        flat = part if flat is None else flat + part
    return ops.reshape(ops.broadcast_to(flat, shape_t), (-1,)), shape_t


def take_along_axis(ctx, arr, indices, axis=-1):
    """np.take_along_axis as one gather from the flattened array."""
    arr, axis = _axis_last(ctx, arr, axis)
    if axis is None:
        axis = 0
    flat, shape = flat_indices(arr, indices, axis)
    got = indexing.getitem(ops.reshape(arr, (-1,)), flat)
    return ops.reshape(Tracer(ctx, got.value), shape)


def _put_along_axis(ctx, arr, indices, values, axis):
    if not isinstance(arr, Tracer):
        raise unsupported("np.put_along_axis into a plain array (create it inside the function)")
    if axis is None:
        raise unsupported("np.put_along_axis(axis=None)")
    axis = ops.normalize_axis(axis, arr.ndim, "put_along_axis")
    flat, shape = flat_indices(arr, indices, axis)
    v = ops.broadcast_to(ops.cast_to(ctx.lift(values), arr.dtype), shape)
    # a reshape of arr is a view: the scatter writes back into arr (NumPy's in-place update)
    indexing.setitem(ops.reshape(arr, (-1,)), flat, ops.reshape(v, (-1,)))


def _sort(ctx, a, axis=-1, kind=None, order=None, *, stable=None):
    if order is not None:
        raise unsupported("np.sort(order=...)")
    a, axis = _axis_last(ctx, a, axis)
    return take_along_axis(ctx, a, ops.emit(ctx, "argsort", [a], axis=axis), axis)


def _partition(ctx, a, kth, axis=-1, kind="introselect", order=None):
    return _sort(ctx, a, axis, order=order)


def _argpartition(ctx, a, kth, axis=-1, kind="introselect", order=None):
    return _argsort(ctx, a, axis, order=order)


def _searchsorted(ctx, a, v, side="left", sorter=None):
    if sorter is not None:
        a = take_along_axis(ctx, a, sorter, 0)
    a = ctx.lift(a)
    dt = ops.common_dtype([a, v])
    a, v = ops.lift_all(ctx, [a, v], dt)
    return ops.emit(ctx, "searchsorted", [a, v], side=side)


FUNCTIONS.update(
    {
        np.sort: _sort,
        np.argsort: _argsort,
        np.argmax: _arg("argmax"),
        np.argmin: _arg("argmin"),
        np.searchsorted: _searchsorted,
        np.take_along_axis: take_along_axis,
        np.put_along_axis: _put_along_axis,
        np.partition: _partition,
        np.argpartition: _argpartition,
    }
)


def _sort_method(self, axis=-1, kind=None, order=None):
    """ndarray.sort sorts in place."""
    self._assign(_sort(self._ctx, self, axis, kind, order))


Tracer.sort = _sort_method
Tracer.argsort = lambda self, axis=-1, kind=None, order=None: _argsort(self._ctx, self, axis)
Tracer.argmax = lambda self, axis=None, out=None, *, keepdims=False: _arg("argmax")(
    self._ctx, self, axis, out, keepdims=keepdims
)
Tracer.argmin = lambda self, axis=None, out=None, *, keepdims=False: _arg("argmin")(
    self._ctx, self, axis, out, keepdims=keepdims
)
Tracer.searchsorted = lambda self, v, side="left", sorter=None: _searchsorted(
    self._ctx, self, v, side, sorter
)
