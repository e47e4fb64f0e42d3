"""Indexed reads and functional writes: take (gather), scatter_add, scatter, set_slice.

These are what in-place NumPy code (`x[1:3] = v`, `x[idx] += v`, `np.add.at`) becomes.
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.registry import Cost, Kind, Lowering, OpDef, Sample, bind, fail, register
from compiler.primitives.shape import slice_tuple


def _check_idx(op, x, idx, axis):
    if idx.dtype.kind not in "iu":
        raise fail(op, "indices must be integers", idx)
    if not 0 <= axis < x.ndim:
        raise fail(op, f"bad axis {axis}", x)


def _take_type(x, idx, axis):
    return TensorType(x.shape[:axis] + idx.shape + x.shape[axis + 1 :], x.dtype)


def _take_rule(ts, *, axis):
    x, idx = ts
    _check_idx("take", x, idx, axis)
    return _take_type(x, idx, axis)


def _take_impl(x, idx, *, axis):
    return np.take(x, idx, axis=axis)


def _take_vjp(ct, x, idx, *, out, axis):
    # gather -> scatter-add: repeated indices accumulate
    zeros = bind("full", shape=x.shape, dtype=x.dtype, fill=0.0)
    return (bind("scatter_add", zeros, idx, ct, axis=axis), None)


def _idx_samples(rng):
    return [
        Sample((rng.normal(size=(5, 3)), np.array([0, 2, 2, 4, -1])), {"axis": 0}),
        Sample((rng.normal(size=(3, 4)), np.array([[1, 3], [0, 1]])), {"axis": 1}),
    ]


register(
    OpDef(
        name="take",
        shape_rule=_take_rule,
        impl=_take_impl,
        vjp=_take_vjp,
        jvp=lambda t, x, idx, *, out, axis: bind("take", t[0], idx, axis=axis),
        kind=Kind.INDEX,
        cost=Cost.CHEAP,
        codegen="take",
        lowering=Lowering.CUSTOM,
        samples=_idx_samples,
        grad_doc="scatter-add of ct into zeros (repeated indices accumulate); none to indices",
    )
)


def _scatter_rule(op):
    def rule(ts, *, axis):
        x, idx, v = ts
        _check_idx(op, x, idx, axis)
        want = _take_type(x, idx, axis)
        if v.shape != want.shape or v.dtype != x.dtype:
            raise fail(op, f"update must be {want}", x, idx, v)
        return x

    return rule


def _scatter_add_impl(x, idx, v, *, axis):
    out = np.array(x, copy=True)
    np.add.at(out, (slice(None),) * axis + (idx,), v)
    return out


def _scatter_impl(x, idx, v, *, axis):
    out = np.array(x, copy=True)
    out[(slice(None),) * axis + (idx,)] = v
    return out


def _scatter_samples(rng):
    out = []
    for s in _idx_samples(rng):
        x, idx = s.args
        v = rng.normal(size=np.take(x, idx, axis=s.attrs["axis"]).shape)
        out.append(Sample((x, idx, v), s.attrs))
    return out


register(
    OpDef(
        name="scatter_add",
        shape_rule=_scatter_rule("scatter_add"),
        impl=_scatter_add_impl,
        vjp=lambda ct, x, idx, v, *, out, axis: (ct, None, bind("take", ct, idx, axis=axis)),
        jvp=lambda t, x, idx, v, *, out, axis: bind(
            "scatter_add",
            t[0] if t[0] is not None else np.zeros_like(x),
            idx,
            t[2] if t[2] is not None else np.zeros_like(v),
            axis=axis,
        ),
        kind=Kind.INDEX,
        cost=Cost.CHEAP,
        codegen="scatter_add",
        lowering=Lowering.CUSTOM,
        samples=_scatter_samples,
        grad_doc="ct to x; ct gathered at the indices to the update",
    )
)


def _winners(idx, n):
    """1.0 where update k is the last write to its index (NumPy's assignment order)."""
    flat = bind("reshape", idx, shape=(int(np.prod(idx.shape, dtype=np.int64)),))
    k = np.arange(flat.shape[0])
    last = bind(
        "scatter", bind("full", shape=(n,), dtype=np.dtype(np.int64), fill=-1), flat, k, axis=0
    )
    return bind("reshape", bind("take", last, flat, axis=0) == k, shape=idx.shape)


def _scatter_vjp(ct, x, idx, v, *, out, axis):
    # the written positions no longer depend on x; of duplicate writes only the last counts
    zeros_v = np.zeros_like(v)
    ct_x = bind("scatter", ct, idx, zeros_v, axis=axis)
    ct_v = bind("take", ct, idx, axis=axis)
    win = _winners(idx, x.shape[axis])
    shape = (1,) * axis + idx.shape + (1,) * (x.ndim - axis - 1)
    mask = bind("reshape", win, shape=shape)
    return (ct_x, None, np.where(mask, ct_v, zeros_v))


def _scatter_jvp(t, x, idx, v, *, out, axis):
    tx = t[0] if t[0] is not None else np.zeros_like(x)
    tv = t[2] if t[2] is not None else np.zeros_like(v)
    return bind("scatter", tx, idx, tv, axis=axis)


register(
    OpDef(
        name="scatter",
        shape_rule=_scatter_rule("scatter"),
        impl=_scatter_impl,
        vjp=_scatter_vjp,
        jvp=_scatter_jvp,
        kind=Kind.INDEX,
        cost=Cost.CHEAP,
        codegen="scatter",
        lowering=Lowering.CUSTOM,
        samples=_scatter_samples,
        grad_doc="ct with written positions zeroed to x; ct gathered to the update, "
        "only the last of duplicate writes receives it",
    )
)


def _set_slice_rule(ts, *, index):
    x, v = ts
    want = tuple(c for _, _, c in index)
    if len(index) != x.ndim or v.shape != want or v.dtype != x.dtype:
        raise fail("set_slice", f"update must be {x.dtype}{list(want)}", x, v)
    return x


def _set_slice_impl(x, v, *, index):
    out = np.array(x, copy=True)
    out[slice_tuple(index)] = v
    return out


def _set_slice_vjp(ct, x, v, *, out, index):
    zeros = bind("full", shape=v.shape, dtype=v.dtype, fill=0.0)
    return (bind("set_slice", ct, zeros, index=index), bind("slice", ct, index=index))


def _set_slice_jvp(t, x, v, *, out, index):
    tx = t[0] if t[0] is not None else np.zeros_like(x)
    tv = t[1] if t[1] is not None else np.zeros_like(v)
    return bind("set_slice", tx, tv, index=index)


register(
    OpDef(
        name="set_slice",
        shape_rule=_set_slice_rule,
        impl=_set_slice_impl,
        vjp=_set_slice_vjp,
        jvp=_set_slice_jvp,
        kind=Kind.INDEX,
        cost=Cost.CHEAP,
        codegen="set_slice",
        lowering=Lowering.CUSTOM,
        samples=lambda rng: [
            Sample(
                (rng.normal(size=(6, 4)), rng.normal(size=(2, 4))),
                {"index": ((1, 2, 2), (0, 1, 4))},
            ),
            Sample((rng.normal(size=(5,)), rng.normal(size=(3,))), {"index": ((4, -1, 3),)}),
        ],
        grad_doc="ct with the slice zeroed to x; ct's slice to the update",
    )
)
