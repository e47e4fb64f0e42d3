"""Contractions on tracers: `np.einsum`, `tensordot`, `inner`, `outer`, `kron`, `vdot`, and
`np.dot` of arrays with more than two axes.

`einsum` lowers to the primitives the rest of the pipeline already optimizes: repeated
indices within an operand become diagonals (strided views), indices no one else needs are
summed first, and the pairwise contraction order comes from `np.einsum_path` (greedy); each
pair is a transpose, a reshape to (batch, m, k) @ (batch, k, n), one batched matmul (BLAS),
and a reshape back. Its gradient is therefore the same kind of contraction with the roles
of the operands permuted (the matmul and transpose rules), without an einsum record.
"""

from __future__ import annotations

import string

import numpy as np

from compiler.trace import ops
from compiler.trace.linalg_api import diagonal
from compiler.trace.numpy_api import FUNCTIONS, unsupported
from compiler.trace.tracer import Tracer, user_location

_LETTERS = string.ascii_letters


def _parse(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Input index strings and the output string, with `...` replaced by fresh letters."""
    s = subscripts.replace(" ", "")
    ins_s, arrow, out_s = s.partition("->")
    ins = ins_s.split(",")
    if len(ins) != len(shapes):
        raise ValueError(
            f"np.einsum: {len(ins)} operand subscripts for {len(shapes)} operands "
            f"(at {user_location()})"
        )
    used = set(s) - set(".,->")
    free = [c for c in _LETTERS if c not in used]
    n_ell = max((len(sh) - (len(t) - 3) for t, sh in zip(ins, shapes) if "..." in t), default=0)
    ell = "".join(free[:n_ell])
    out_ins = []
    for t, sh in zip(ins, shapes):
        if "..." in t:
            k = len(sh) - (len(t) - 3)
            t = t.replace("...", ell[n_ell - k :] if k else "")
        if len(t) != len(sh):
            raise ValueError(
                f"np.einsum: subscripts {t!r} do not match an operand of rank {len(sh)} "
                f"(at {user_location()})"
            )
        out_ins.append(t)
    if arrow:
        out = out_s.replace("...", ell)
    else:  # implicit output: broadcast axes, then the indices seen once, alphabetically
        counts = {c: "".join(out_ins).count(c) for c in set("".join(out_ins))}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_ins, out


def _dedupe(x: Tracer, idx: str) -> tuple[Tracer, str]:
    """Take diagonals for indices repeated within one operand (`ii->i`)."""
    while True:
        dup = next((c for c in idx if idx.count(c) > 1), None)
        if dup is None:
            return x, idx
        i = idx.index(dup)
        j = idx.index(dup, i + 1)
        x = diagonal(x._ctx, x, 0, i, j)  # the diagonal axis goes last
        idx = "".join(c for k, c in enumerate(idx) if k not in (i, j)) + dup


def _sum_private(x: Tracer, idx: str, keep: set[str]) -> tuple[Tracer, str]:
    axes = tuple(k for k, c in enumerate(idx) if c not in keep)
    if not axes:
        return x, idx
    x = ops.reduce("sum", x, axes)
    return x, "".join(c for c in idx if c in keep)


def _order(x: Tracer, idx: str, want: str) -> Tracer:
    return ops.transpose(x, tuple(idx.index(c) for c in want))


def _pair(
    a: Tracer, ia: str, b: Tracer, ib: str, keep: set[str], sizes: dict[str, int]
) -> tuple[Tracer, str]:
    """Contract two operands over their shared indices that nothing else needs."""
    batch = "".join(c for c in ia if c in ib and c in keep)
    con = "".join(c for c in ia if c in ib and c not in keep)
    a_only = "".join(c for c in ia if c not in ib)
    b_only = "".join(c for c in ib if c not in ia)
    if a.dtype.kind != "f":  # matmul is float-only: multiply and sum instead
        allx = batch + a_only + b_only + con
        prod = _expand(a, ia, allx, sizes) * _expand(b, ib, allx, sizes)
        return _sum_private(prod, allx, set(batch + a_only + b_only))
    a = _bcast(_order(a, ia, batch + a_only + con), batch + a_only + con, sizes)
    b = _bcast(_order(b, ib, batch + con + b_only), batch + con + b_only, sizes)

    def size(cs: str) -> int:
        return int(np.prod([sizes[c] for c in cs], dtype=np.int64))

    nb, m, k, n = size(batch), size(a_only), size(con), size(b_only)
    out = ops.matmul(ops.reshape(a, (nb, m, k)), ops.reshape(b, (nb, k, n)), op="einsum")
    out = ops.reshape(out, tuple(sizes[c] for c in batch + a_only + b_only))
    return out, batch + a_only + b_only


def _bcast(x: Tracer, idx: str, sizes: dict[str, int]) -> Tracer:
    return ops.broadcast_to(x, tuple(sizes[c] for c in idx))


def _expand(x: Tracer, idx: str, allx: str, sizes: dict[str, int]) -> Tracer:
    """x with its axes in `allx` order and size-1 axes for the indices it lacks."""
    sub = "".join(c for c in allx if c in idx)
    x = _order(x, idx, sub)
    return ops.reshape(x, tuple(x.shape[sub.index(c)] if c in idx else 1 for c in allx))


def einsum(ctx, subscripts, *operands, out=None, optimize=True, dtype=None, **kw):
    """np.einsum on tracers (see the module docstring)."""
    if out is not None or not isinstance(subscripts, str):
        raise unsupported("np.einsum with out= or the interleaved (operand, sublist) form")
    xs = [ctx.lift(o) for o in operands]
    dt = np.dtype(dtype) if dtype is not None else ops.common_dtype(operands)
    xs = [ops.cast_to(x, dt) for x in xs]
    ins, out_idx = _parse(subscripts, [x.shape for x in xs])
    sizes: dict[str, int] = {}
    for x, idx in zip(xs, ins):
        for c, d in zip(idx, x.shape):
            if sizes.get(c, 1) != d and d != 1:
                if c in sizes and sizes[c] != 1:
                    raise ValueError(
                        f"np.einsum: index {c!r} has sizes {sizes[c]} and {d} "
                        f"(at {user_location()})"
                    )
            sizes[c] = max(sizes.get(c, 1), d)
    items = []
    for x, idx in zip(xs, ins):
        x, idx = _dedupe(x, idx)
        items.append((x, idx))
    path = np.einsum_path(
        ",".join(i for _, i in items) + "->" + out_idx,
        *[np.broadcast_to(np.zeros((), dt), x.shape) for x, _ in items],
        optimize="greedy",
    )[0][1:]
    for pair in [tuple(range(len(items)))] if len(items) == 1 else path:
        if len(pair) == 1:
            continue
        chosen = [items[i] for i in pair]
        items = [it for i, it in enumerate(items) if i not in pair]
        keep = set(out_idx) | {c for _, i in items for c in i}
        x, ix = chosen[0]
        for k in range(1, len(chosen)):
            y, iy = chosen[k]
            rest = keep | {c for _, i in chosen[k + 1 :] for c in i}
            x, ix = _sum_private(x, ix, rest | set(iy))
            y, iy = _sum_private(y, iy, rest | set(ix))
            x, ix = _pair(x, ix, y, iy, rest, sizes)
        items.append((x, ix))
    x, ix = items[0] if len(items) == 1 else _merge_rest(items, out_idx, sizes)
    x, ix = _sum_private(x, ix, set(out_idx))
    x = _bcast(_order(x, ix, "".join(c for c in out_idx if c in ix)), out_idx, sizes)
    return Tracer(ctx, x.value)


def _merge_rest(items, out_idx, sizes):
    x, ix = items[0]
    for y, iy in items[1:]:
        x, ix = _pair(x, ix, y, iy, set(out_idx) | set(ix) | set(iy), sizes)
    return x, ix


def tensordot(ctx, a, b, axes=2):
    """np.tensordot as an einsum."""
    a, b = ctx.lift(a), ctx.lift(b)
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(a.ndim - int(axes), a.ndim))
        ax_b = list(range(int(axes)))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    ax_a = [ops.normalize_axis(i, a.ndim, "tensordot") for i in ax_a]
    ax_b = [ops.normalize_axis(i, b.ndim, "tensordot") for i in ax_b]
    la = list(_LETTERS[: a.ndim])
    lb = list(_LETTERS[a.ndim : a.ndim + b.ndim])
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    out = [c for k, c in enumerate(la) if k not in ax_a] + [
        c for k, c in enumerate(lb) if k not in ax_b
    ]
    return einsum(ctx, f"{''.join(la)},{''.join(lb)}->{''.join(out)}", a, b)


def _inner(ctx, a, b):
    a, b = ctx.lift(a), ctx.lift(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return tensordot(ctx, a, b, ([-1], [-1]))


def _outer(ctx, a, b, out=None):
    a, b = ops.reshape(ctx.lift(a), (-1, 1)), ops.reshape(ctx.lift(b), (1, -1))
    return a * b


def _vdot(ctx, a, b):
    return ops.reduce("sum", ops.reshape(ctx.lift(a), (-1,)) * ops.reshape(ctx.lift(b), (-1,)))


def _kron(ctx, a, b):
    a, b = ctx.lift(a), ctx.lift(b)
    nd = max(a.ndim, b.ndim)
    a = ops.reshape(a, (1,) * (nd - a.ndim) + a.shape)
    b = ops.reshape(b, (1,) * (nd - b.ndim) + b.shape)
    # interleave: a[i0, 1, i1, 1, ...] * b[1, j0, 1, j1, ...]
    sa = tuple(d for s in a.shape for d in (s, 1))
    sb = tuple(d for s in b.shape for d in (1, s))
    prod = ops.reshape(a, sa) * ops.reshape(b, sb)
    return ops.reshape(prod, tuple(x * y for x, y in zip(a.shape, b.shape)))


def _dot(ctx, a, b, out=None):
    """np.dot: products of scalars, matrix products, and for more than two axes a sum over
    a's last and b's second-to-last axis."""
    if out is not None:
        raise unsupported("np.dot(out=...)")
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return ops.elementwise("multiply", np.multiply, a, b)
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        return tensordot(ctx, a, b, ([-1], [-2 if np.ndim(b) > 1 else -1]))
    return ops.matmul(a, b, op="dot")


FUNCTIONS.update(
    {
        np.einsum: einsum,
        np.tensordot: tensordot,
        np.inner: _inner,
        np.outer: _outer,
        np.vdot: _vdot,
        np.kron: _kron,
        np.dot: _dot,
    }
)
