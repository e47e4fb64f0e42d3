"""`x[key]` and `x[key] = v` on tracers: basic slicing becomes `slice` (+ `reshape` for
integers and None), one integer-array index becomes `take`; writes become `set_slice` or
`scatter` updates of the whole array (functionalization)."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.trace import ops
from compiler.trace.tracer import Tracer


def _expand_key(key: Any, ndim: int) -> list:
    if not isinstance(key, tuple):
        key = (key,)
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    if consumed > ndim:
        raise IndexError(
            f"too many indices for array: array is {ndim}-dimensional, but {consumed} were indexed"
        )
    out = []
    for k in key:
        if k is Ellipsis:
            out.extend([slice(None)] * (ndim - consumed))
        else:
            out.append(k)
    if n_ell == 0:
        out.extend([slice(None)] * (ndim - consumed))
    return out


def _is_int(k: Any) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _is_array_index(k: Any) -> bool:
    if isinstance(k, Tracer):
        return True
    if isinstance(k, (list, np.ndarray)):
        return True
    return False


class _Parsed:
    """A key split into a basic part over all dims and at most one array index."""

    def __init__(self, x: Tracer, key: Any) -> None:
        items = _expand_key(key, x.ndim)
        self.index: list[tuple[int, int, int]] = []  # (start, step, count) per input dim
        self.result_shape: list[int] = []  # shape after ints dropped and None inserted
        self.array: Any = None
        self.array_axis = -1  # axis of the array index in result_shape
        self.basic_key = [slice(None) if _is_array_index(k) else k for k in items]
        dim = 0
        for k in items:
            if k is None:
                self.result_shape.append(1)
                continue
            size = x.shape[dim]
            if _is_int(k):
                i = int(k)
                if not -size <= i < size:
                    raise IndexError(f"index {i} is out of bounds for axis {dim} with size {size}")
                self.index.append((i % size, 1, 1))
            elif isinstance(k, slice):
                start, stop, step = k.indices(size)
                count = len(range(start, stop, step))
                self.index.append((start if count else 0, step, count))
                self.result_shape.append(count)
            elif _is_array_index(k):
                if self.array is not None:
                    raise NotImplementedError(
                        "gradc supports one integer-array index per indexing expression; "
                        "index in two steps (x[i][:, j])"
                    )
                arr = k if isinstance(k, Tracer) else np.asarray(k)
                if arr.dtype == np.bool_:
                    raise NotImplementedError(
                        "boolean-mask indexing x[mask] has a data-dependent shape; use "
                        "np.where(mask, x, 0) instead"
                    )
                if arr.dtype.kind not in "iu":
                    raise IndexError("arrays used as indices must be of integer type")
                if not isinstance(arr, Tracer):
                    if arr.size and (arr.max() >= size or arr.min() < -size):
                        raise IndexError(
                            f"index {int(arr.max())} is out of bounds for axis "
                            f"{dim} with size {size}"
                        )
                    arr = np.where(arr < 0, arr + size, arr).astype(np.int64)
                self.array = arr
                self.array_axis = len(self.result_shape)
                self.index.append((0, 1, size))
                self.result_shape.append(size)
            else:
                raise IndexError(f"gradc cannot index with {type(k).__name__} {k!r}")
            dim += 1
        ints = [i for i, k in enumerate(items) if _is_int(k)]
        if self.array is not None and ints:
            positions = [i for i, k in enumerate(items) if _is_int(k) or _is_array_index(k)]
            if positions != list(range(positions[0], positions[-1] + 1)):
                raise NotImplementedError(
                    "mixing integer and integer-array indices separated by slices moves "
                    "axes in NumPy; index in two steps instead"
                )
        self.has_none = any(k is None for k in items)

    def is_full(self, shape: tuple[int, ...]) -> bool:
        return all(ix == (0, 1, d) for ix, d in zip(self.index, shape))


def getitem(x: Tracer, key: Any) -> Tracer:
    p = _Parsed(x, key)
    ctx = x._ctx
    out = x
    index = tuple(p.index)
    if not p.is_full(x.shape):
        out = ops._view(
            x,
            "slice",
            {"index": index},
            lambda b: ops.emit(b._ctx, "slice", [b], index=index),
            lambda b, v: ops.emit(b._ctx, "set_slice", [b, v], index=index),
        )
    if tuple(p.result_shape) != out.shape:
        out = ops.reshape(out, p.result_shape)
    elif out is x:
        out = ops.identity_view(x)
    if p.array is not None:
        idx = ctx.lift(p.array)
        out = ops.emit(ctx, "take", [out, idx], weak=x.weak, axis=p.array_axis)
    return out


def setitem(x: Tracer, key: Any, v: Any) -> None:
    """`x[key] = v`, as a functional update of x."""
    _write(x, key, v, accumulate=False)


def add_at(x: Tracer, key: Any, v: Any) -> None:
    """`np.add.at(x, key, v)`: like `x[key] += v`, but repeated indices accumulate."""
    _write(x, key, v, accumulate=True)


def _write(x: Tracer, key: Any, v: Any, accumulate: bool) -> None:
    p = _Parsed(x, key)
    if p.has_none:
        raise NotImplementedError("assignment through an index containing None")
    ctx = x._ctx
    v = ops.cast_to(ctx.lift(v), x.dtype, op="setitem")
    index = tuple(p.index)
    if p.array is None:
        target = tuple(c for _, _, c in index)
        kept = tuple(p.result_shape)
        v = ops.broadcast_to(v, kept)
        v = ops.reshape(v, target)
        if accumulate:
            old = ops.emit(ctx, "slice", [x], index=index)
            v = ops.elementwise("add", np.add, old, v)
        new = ops.emit(ctx, "set_slice", [x, v], index=index)
        x._assign(new)
        return
    # one integer-array index: view the basic part, scatter into it (writes back into x)
    sub = getitem(x, tuple(p.basic_key))
    idx = ctx.lift(p.array)
    flat_idx = ops.reshape(idx, (-1,)) if idx.ndim != 1 else idx
    want = list(p.result_shape)
    want[p.array_axis : p.array_axis + 1] = list(idx.shape)
    v = ops.broadcast_to(v, tuple(want))
    flat_shape = list(p.result_shape)
    flat_shape[p.array_axis] = flat_idx.shape[0]
    v = ops.reshape(v, flat_shape)
    op = "scatter_add" if accumulate else "scatter"
    sub._assign(ops.emit(ctx, op, [sub, flat_idx, v], axis=p.array_axis))
