"""`x[key]` and `x[key] = v` on tracers: basic slicing becomes `slice` (+ `reshape` for
integers and None), one integer-array index becomes `take`; writes become `set_slice` or
`scatter` updates of the whole array (functionalization)."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.trace import layout, masking, ops
from compiler.trace.tracer import Tracer, find_context, user_location


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


def _merge_advanced(x: Tracer, key: Any) -> tuple[Tracer, Any]:
    """`x[i, j]` with several adjacent integer-array (or int) indices -> one flat index into
    a reshaped view of x (`x.reshape(..., n*m, ...)[i*m + j]`), NumPy's result layout."""
    items = _expand_key(key, x.ndim)
    arrays = [i for i, k in enumerate(items) if _is_array_index(k)]
    if len(arrays) < 2:
        return x, key
    if any(k is None for k in items):
        raise NotImplementedError("None together with several integer-array indices")
    group = [i for i, k in enumerate(items) if _is_array_index(k) or _is_int(k)]
    if group != list(range(group[0], group[-1] + 1)):
        raise NotImplementedError(
            "integer-array indices separated by slices move axes in "
            "NumPy; index in two steps instead"
        )
    p, q = group[0], group[-1]
    sizes = x.shape[p : q + 1]
    parts = []
    for k, size in zip(items[p : q + 1], sizes):
        if isinstance(k, Tracer):
            if k.dtype.kind not in "iu":
                raise IndexError("arrays used as indices must be of integer type")
            k = ops.cast_to(k, np.int64)
            k = ops.where(k < 0, k + size, k)
        else:
            k = np.asarray(k)
            if k.dtype.kind not in "iu":
                raise IndexError("arrays used as indices must be of integer type")
            if k.size and (k.max() >= size or k.min() < -size):
                raise IndexError(f"index {int(k.max())} is out of bounds for size {size}")
            k = np.where(k < 0, k + size, k).astype(np.int64)
        parts.append(k)
    flat: Any = 0
    stride = 1
    for k, size in zip(reversed(parts), reversed(sizes)):
        flat = k * stride + flat
        stride *= size
    merged = ops.view_reshape(x, x.shape[:p] + (stride,) + x.shape[q + 1 :])
    if not isinstance(flat, Tracer):
        flat = np.asarray(flat, dtype=np.int64)
    return merged, tuple(items[:p]) + (flat,) + tuple(items[q + 1 :])


def _mask_key(key: Any) -> Any:
    """The traced boolean mask of `x[mask]` (alone, or alone in a tuple), else None."""
    if masking.is_traced_mask(key):
        return key
    if isinstance(key, tuple) and any(masking.is_traced_mask(k) for k in key):
        if len(key) == 1:
            return key[0]
        raise masking.data_dependent("a traced boolean mask together with other indices")
    return None


def getitem(x: Tracer, key: Any) -> Any:
    inner = find_context([x, *(key if isinstance(key, tuple) else (key,))])
    if inner is not x._ctx:  # a traced index from a nested trace (a loop step): index there
        x = inner.lift(x)
    mask = _mask_key(key)
    if mask is not None:
        return masking.getitem(x, mask)
    if masking.has_constant_mask(key):
        key = masking.constant_mask_key(x, key)
    if _is_scalar_key(key, x.ndim):
        # an integer for every axis gives NumPy a scalar, which is a copy: writing to it
        # (`s = a[0]; s *= 2`) must not write back into `a`, so the result is not a view
        view = getitem(x, (*key, ...) if isinstance(key, tuple) else (key, ...))
        return Tracer(x._ctx, view.value, weak=x.weak, scalar=True)
    x0, key0 = x, key
    x, key = _merge_advanced(x, key)
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
        out = ops.view_reshape(out, p.result_shape)  # basic indexing: always a view
    elif out is x:
        out = ops.identity_view(x)
    if p.array is not None:
        idx = ctx.lift(p.array)
        out = ops.emit(ctx, "take", [out, idx], weak=x.weak, axis=p.array_axis)
    else:
        out._view_sig = (id(x), index, tuple(p.result_shape))
    # NumPy's own indexing on x's layout proxy gives the result's layout (a view's strides,
    # or the layout NumPy picks for a gather: `x[:, idx]` is not C-ordered); after gradc's
    # own checks, so that a bad key gets gradc's message
    out._layout = layout.gather(x0.layout, key0)
    return out


def _is_scalar_key(key: Any, ndim: int) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return len(items) == ndim and all(_is_int(k) for k in items)


def _is_fresh_view(v: Any, x: Tracer, index: tuple, shape: tuple) -> bool:
    """v is `x[same key]` and nothing was written to x since (the `x[k] += v` case, where
    Python calls `x.__setitem__(k, view)` after the view already wrote itself back)."""
    if not isinstance(v, Tracer) or getattr(v, "_view_sig", None) != (id(x), index, shape):
        return False
    t = v
    while t is not x:
        if t._base is None or t._base._version != t._base_version:
            return False
        t = t._base
    return True


def setitem(x: Tracer, key: Any, v: Any) -> None:
    """`x[key] = v`, as a functional update of x."""
    if x.scalar:
        raise TypeError(
            f"'numpy.{x.dtype}' object does not support item assignment: this value is a "
            f"NumPy scalar (a full reduction, x[i, j], a scalar argument), not an array "
            f"(at {user_location()})"
        )
    mask = _mask_key(key)
    if mask is not None:
        masking.setitem(x, mask, v)
        return
    if masking.has_constant_mask(key):
        key = masking.constant_mask_key(x, key)
    _write(x, key, v, accumulate=False)


def add_at(x: Tracer, key: Any, v: Any) -> None:
    """`np.add.at(x, key, v)`: like `x[key] += v`, but repeated indices accumulate."""
    if masking.has_constant_mask(key):
        key = masking.constant_mask_key(x, key)
    _write(x, key, v, accumulate=True)


def _write(x: Tracer, key: Any, v: Any, accumulate: bool) -> None:
    x, key = _merge_advanced(x, key)
    p = _Parsed(x, key)
    if p.has_none:
        raise NotImplementedError("assignment through an index containing None")
    ctx = x._ctx
    v = ops.cast_to(ctx.lift(v), x.dtype, op="setitem")
    index = tuple(p.index)
    if p.array is None:
        if not accumulate and _is_fresh_view(v, x, index, tuple(p.result_shape)):
            return
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
