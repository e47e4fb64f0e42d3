"""NumPy's memory layout of traced values, so that gradc copies exactly where NumPy copies.

Whether `a.reshape(...)` or `a.ravel()` is a view of `a` (writes go through) or a copy
depends on `a`'s strides, and the strides of an elementwise result follow its operands'
(NumPy allocates it in "K" order: `(x.T * 1.0)` is Fortran-ordered, so its `ravel()` is a
copy). gradc does not re-derive these rules: every tracer carries a *proxy*, a `uint8`
ndarray with the traced value's shape and NumPy's strides (in elements), and each op applies
NumPy itself to the proxies: view ops (`transpose`, basic indexing, `reshape(copy=False)`)
on the proxies, and new arrays allocated by `np.nditer` in K order as a ufunc allocates its
output. Nothing here reads a proxy's data: a proxy over `np.empty` costs address space, not
memory (its pages are never touched), except the gathers and concatenations that run on
proxies as they are (their layout rules are NumPy's business), which touch one byte per
element.

The function's array arguments are C-contiguous (the call path makes them so), as are the
results of matmul and dot, and of reshapes that copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PROXY = np.uint8  # one byte per element: strides in bytes are strides in elements


def fresh(shape: Sequence[int]) -> np.ndarray:
    """A C-contiguous proxy (a new array NumPy allocates in C order)."""
    return np.empty(tuple(shape), PROXY)


def like(arr: np.ndarray) -> np.ndarray:
    """A proxy with `arr`'s axis order (a constant's layout, for the K order of results)."""
    return np.empty_like(arr, dtype=PROXY, order="K")


def keep_order(shape: Sequence[int], *operands: Any) -> np.ndarray | None:
    """The layout of a new array NumPy allocates in K order over `operands` (a ufunc's
    result): tracers, plain arrays or scalars. None (C) for 0-d and 1-D results."""
    if len(shape) < 2:
        return None
    return _nditer_order([_of(x) for x in operands], shape)


def _of(x: Any) -> np.ndarray | None:
    if hasattr(x, "_gradc_bind"):  # a Tracer (which imports this module)
        return x.layout if x.ndim >= 2 else None
    if isinstance(x, np.ndarray) and x.ndim >= 2:
        return x  # a plain array is its own proxy: only its strides are read
    return None


def _nditer_order(operands: Sequence[np.ndarray | None], shape: Sequence[int]) -> np.ndarray:
    """The proxy of a ufunc-like result: allocated in K order over the broadcast operands."""
    shape = tuple(shape)
    if len(shape) < 2:
        return fresh(shape)
    ops = [np.broadcast_to(p, shape) for p in operands if p is not None and np.ndim(p) > 0]
    if not ops:
        return fresh(shape)
    it = np.nditer(
        [*ops, None],
        flags=["refs_ok", "zerosize_ok"],
        op_flags=[["readonly"]] * len(ops) + [["writeonly", "allocate"]],
        op_dtypes=[None] * len(ops) + [PROXY],
        order="K",
    )
    return it.operands[-1]


def reduced(proxy: np.ndarray, axes: Sequence[int], keepdims: bool) -> np.ndarray:
    """The proxy of a reduction's result: the kept axes, in K order as the input has them."""
    axes = set(axes)
    if proxy.ndim < 2:
        out = fresh(tuple(1 for _ in range(proxy.ndim)) if keepdims else ())
        return out
    kept = [i for i in range(proxy.ndim) if i not in axes]
    op_axes = [
        list(range(proxy.ndim)),
        [kept.index(i) if i in kept else -1 for i in range(proxy.ndim)],
    ]
    it = np.nditer(
        [proxy, None],
        flags=["refs_ok", "zerosize_ok", "reduce_ok"],
        op_flags=[["readonly"], ["readwrite", "allocate"]],
        op_dtypes=[PROXY, PROXY],
        op_axes=op_axes,
        order="K",
    )
    out = it.operands[1]
    if not keepdims:
        return out
    return out.reshape(tuple(1 if i in axes else d for i, d in enumerate(proxy.shape)))


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The proxy of `a @ b` (both at least 2-D): batch axes in K order, each matrix C-ordered."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    n, m = a.shape[-2], b.shape[-1]
    # the batch axes alone (as_strided only relabels metadata: nothing is read)
    outer = _nditer_order([_batch(a), _batch(b)], batch)
    strides = tuple(s * n * m for s in outer.strides) + (m, 1)
    buf = fresh((int(np.prod(batch, dtype=np.int64)) * n * m,))
    return np.lib.stride_tricks.as_strided(buf, batch + (n, m), strides)


def _batch(p: np.ndarray) -> np.ndarray:
    return np.lib.stride_tricks.as_strided(p, p.shape[:-2], p.strides[:-2])


def reshape_view(proxy: np.ndarray, shape: Sequence[int]) -> np.ndarray | None:
    """`proxy.reshape(shape)` when NumPy makes it a view; None when NumPy copies."""
    shape = tuple(shape)
    try:
        return proxy.reshape(shape, copy=False)
    except ValueError:
        return None
    except TypeError:  # NumPy < 2.1 has no copy=: setting .shape refuses exactly the copies
        view = proxy.view()
        try:
            view.shape = shape
        except AttributeError:
            return None
        return view


def ravel_view(proxy: np.ndarray) -> np.ndarray | None:
    """`np.ravel(proxy)` (order C) when NumPy makes it a view: only a C-contiguous input."""
    return proxy.reshape(-1) if proxy.flags.c_contiguous else None


def gather(proxy: np.ndarray, key: Any) -> np.ndarray:
    """The proxy of `x[key]`: NumPy's own indexing on the proxy (index values do not change
    the layout, so a traced index array stands in as zeros of its shape)."""
    return proxy[_concrete_key(key)]


def _concrete_key(key: Any) -> Any:
    if isinstance(key, tuple):
        return tuple(_concrete_key(k) for k in key)
    if hasattr(key, "_gradc_bind"):  # a traced index array
        return np.zeros(key.shape, np.intp)
    if isinstance(key, list):
        return np.asarray(key)
    return key


def shape_of(proxy: np.ndarray | None) -> tuple[int, ...] | None:
    return None if proxy is None else proxy.shape


def describe(proxy: np.ndarray) -> str:
    """'C', 'F' or 'strided' (what the docs and error messages call a layout)."""
    if proxy.flags.c_contiguous:
        return "C"
    if proxy.flags.f_contiguous:
        return "F"
    return "strided"
