"""Shape functions on tracers, as compositions of views, slices, broadcasts and updates:
tril, triu, flip, roll, tile, repeat, pad (constant), split, array_split, moveaxis, meshgrid,
column_stack, dstack, atleast_1d/2d/3d. Gradients follow from the primitives (a slice's
gradient scatters back, a broadcast's sums), so none of these needs a record.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.trace import indexing, ops
from compiler.trace.numpy_api import FUNCTIONS, unsupported
from compiler.trace.tracer import Tracer, user_location


def _detached(x: Tracer) -> Tracer:
    """A new array (not a view): writes to it do not reach its source."""
    return Tracer(x._ctx, x.value, weak=x.weak)


def _tri(ctx, m, k=0, lower=True):
    m = ctx.lift(m)
    if m.ndim < 2:
        m = ops.broadcast_to(m, (m.shape[-1] if m.ndim else 1,) * 2)
    n, c = m.shape[-2:]
    mask = np.tri(n, c, int(k), dtype=bool) if lower else ~np.tri(n, c, int(k) - 1, dtype=bool)
    return ops.where(ctx.lift(mask), m, ctx.lift(np.zeros((), m.dtype)))


def _flip(ctx, m, axis=None):
    m = ctx.lift(m)
    axes = ops.normalize_axes(axis, m.ndim, "flip")
    key = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(m.ndim))
    return indexing.getitem(m, key)


def _roll(ctx, a, shift, axis=None):
    a = ctx.lift(a)
    if axis is None:
        return ops.reshape(_roll(ctx, ops.reshape(a, (-1,)), shift, 0), a.shape)
    shifts = (shift,) if isinstance(shift, (int, np.integer)) else tuple(shift)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    out = a
    for s, ax in zip(shifts, axes):
        ax = ops.normalize_axis(ax, a.ndim, "roll")
        n = a.shape[ax]
        s = int(s) % n if n else 0
        if s == 0:
            continue
        head = [slice(None)] * a.ndim
        tail = [slice(None)] * a.ndim
        head[ax], tail[ax] = slice(n - s, n), slice(0, n - s)
        out = ops.concatenate([out[tuple(head)], out[tuple(tail)]], ax)
    return _detached(out)


def _tile(ctx, A, reps):
    a = ctx.lift(A)
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    nd = max(a.ndim, len(reps))
    reps = (1,) * (nd - len(reps)) + reps
    a = ops.reshape(a, (1,) * (nd - a.ndim) + a.shape)
    inter = tuple(d for r, s in zip(reps, a.shape) for d in (1, s))
    big = tuple(d for r, s in zip(reps, a.shape) for d in (r, s))
    out = ops.broadcast_to(ops.reshape(a, inter), big)
    return _detached(ops.reshape(out, tuple(r * s for r, s in zip(reps, a.shape))))


def _repeat(ctx, a, repeats, axis=None):
    a = ctx.lift(a)
    if axis is None:
        a, axis = ops.reshape(a, (-1,)), 0
    axis = ops.normalize_axis(axis, a.ndim, "repeat")
    if isinstance(repeats, Tracer):
        raise unsupported("np.repeat with traced repeats (a data-dependent shape)")
    reps = np.asarray(repeats)
    if reps.ndim == 0:
        r = int(reps)
        x = ops.expand_dims(a, axis + 1)
        shape = list(x.shape)
        shape[axis + 1] = r
        x = ops.broadcast_to(x, tuple(shape))
        new = list(a.shape)
        new[axis] *= r
        return _detached(ops.reshape(x, tuple(new)))
    idx = np.repeat(np.arange(a.shape[axis]), reps)  # the gather index, known at trace time
    key = [slice(None)] * a.ndim
    key[axis] = idx
    return indexing.getitem(a, tuple(key))


def _pad(ctx, array, pad_width, mode="constant", **kw):
    if mode != "constant":
        raise NotImplementedError(
            f"np.pad(mode={mode!r}) is not supported by gradc (at {user_location()}); build "
            "the border with np.concatenate of slices (e.g. x[..., :1] for 'edge')"
        )
    a = ctx.lift(array)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (a.ndim, 2))
    cv = kw.get("constant_values", 0)
    if isinstance(cv, Tracer) or np.ndim(cv) > 0:
        raise unsupported("np.pad with per-axis or traced constant_values")
    shape = tuple(int(d + lo + hi) for d, (lo, hi) in zip(a.shape, pw))
    out = ops.full(ctx, shape, cv, a.dtype)
    key = tuple(slice(int(lo), int(lo) + d) for d, (lo, _) in zip(a.shape, pw))
    indexing.setitem(out, key, a)
    return _detached(out)


def _split_points(n: int, sections: Any, strict: bool) -> list[int]:
    if isinstance(sections, (int, np.integer)):
        k = int(sections)
        if strict and n % k:
            raise ValueError("array split does not result in an equal division")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
        return list(np.cumsum([0] + sizes))
    return [0] + [min(int(i), n) for i in sections] + [n]


def _split(strict: bool):
    def fn(ctx, ary, indices_or_sections, axis=0):
        a = ctx.lift(ary)
        axis = ops.normalize_axis(axis, a.ndim, "split")
        pts = _split_points(a.shape[axis], indices_or_sections, strict)
        out = []
        for lo, hi in zip(pts[:-1], pts[1:]):
            key = [slice(None)] * a.ndim
            key[axis] = slice(lo, max(lo, hi))
            out.append(indexing.getitem(a, tuple(key)))
        return out

    return fn


def _moveaxis(ctx, a, source, destination):
    a = ctx.lift(a)
    src = [ops.normalize_axis(s, a.ndim, "moveaxis") for s in np.atleast_1d(source)]
    dst = [ops.normalize_axis(d, a.ndim, "moveaxis") for d in np.atleast_1d(destination)]
    order = [n for n in range(a.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return ops.transpose(a, tuple(order))


def _meshgrid(ctx, *xi, copy=True, sparse=False, indexing="xy"):
    xs = [ops.reshape(ctx.lift(x), (-1,)) for x in xi]
    nd = len(xs)
    out = []
    for i, x in enumerate(xs):
        shape = [1] * nd
        shape[i] = x.shape[0]
        if indexing == "xy" and nd > 1 and i < 2:
            shape[0], shape[1] = shape[1], shape[0]
        out.append(ops.reshape(x, tuple(shape)))
    if not sparse:
        full = np.broadcast_shapes(*[o.shape for o in out])
        out = [_detached(ops.broadcast_to(o, full)) for o in out]
    return tuple(out)


def _atleast(n: int):
    def fn(ctx, *arys):
        res = []
        for a in arys:
            a = ctx.lift(a)
            if a.ndim < n:
                if n == 3 and a.ndim == 1:
                    a = ops.reshape(a, (1, a.shape[0], 1))
                elif n == 3 and a.ndim == 2:
                    a = ops.reshape(a, a.shape + (1,))
                else:
                    a = ops.reshape(a, (1,) * (n - a.ndim) + a.shape)
            res.append(a)
        return res[0] if len(res) == 1 else res

    return fn


def _column_stack(ctx, tup):
    items = [ctx.lift(t) for t in tup]
    items = [ops.reshape(t, (-1, 1)) if t.ndim < 2 else t for t in items]
    return ops.concatenate(items, 1)


def _dstack(ctx, tup):
    items = [_atleast(3)(ctx, t) for t in tup]
    return ops.concatenate(items, 2)


FUNCTIONS.update(
    {
        np.tril: lambda ctx, m, k=0: _tri(ctx, m, k, True),
        np.triu: lambda ctx, m, k=0: _tri(ctx, m, k, False),
        np.flip: _flip,
        np.fliplr: lambda ctx, m: _flip(ctx, m, 1),
        np.flipud: lambda ctx, m: _flip(ctx, m, 0),
        np.roll: _roll,
        np.tile: _tile,
        np.repeat: _repeat,
        np.pad: _pad,
        np.split: _split(True),
        np.array_split: _split(False),
        np.moveaxis: _moveaxis,
        np.meshgrid: _meshgrid,
        np.atleast_1d: _atleast(1),
        np.atleast_2d: _atleast(2),
        np.atleast_3d: _atleast(3),
        np.column_stack: _column_stack,
        np.dstack: _dstack,
    }
)

Tracer.repeat = lambda self, repeats, axis=None: _repeat(self._ctx, self, repeats, axis)
