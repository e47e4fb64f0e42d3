"""Shape ops: reshape, transpose, broadcast_to, slice, concatenate.

reshape/transpose/broadcast_to/slice become views in generated code where the layout allows.
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.registry import Cost, Kind, Lowering, OpDef, Sample, bind, fail, register


def _reshape_rule(ts, *, shape):
    (t,) = ts
    if int(np.prod(shape, dtype=np.int64)) != t.size:
        raise fail("reshape", f"cannot reshape to {tuple(shape)}", t)
    return TensorType(shape, t.dtype)


register(
    OpDef(
        name="reshape",
        shape_rule=_reshape_rule,
        impl=lambda x, *, shape: np.reshape(x, shape),
        vjp=lambda ct, x, *, out, shape: (bind("reshape", ct, shape=x.shape),),
        jvp=lambda t, x, *, out, shape: bind("reshape", t[0], shape=shape),
        kind=Kind.SHAPE,
        cost=Cost.FREE,
        codegen="view",
        lowering=Lowering.VIEW,
        samples=lambda rng: [
            Sample((rng.normal(size=(3, 4)),), {"shape": (2, 6)}),
            Sample((rng.normal(size=(6,)),), {"shape": (1, 6, 1)}),
            Sample((rng.normal(size=()),), {"shape": (1, 1)}),
        ],
        grad_doc="ct reshaped back",
    )
)


def _transpose_rule(ts, *, axes):
    (t,) = ts
    if sorted(axes) != list(range(t.ndim)):
        raise fail("transpose", f"axes {axes} are not a permutation", t)
    return TensorType(tuple(t.shape[a] for a in axes), t.dtype)


def inverse_perm(axes):
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


register(
    OpDef(
        name="transpose",
        shape_rule=_transpose_rule,
        impl=lambda x, *, axes: np.transpose(x, axes),
        vjp=lambda ct, x, *, out, axes: (bind("transpose", ct, axes=inverse_perm(axes)),),
        jvp=lambda t, x, *, out, axes: bind("transpose", t[0], axes=axes),
        kind=Kind.SHAPE,
        cost=Cost.FREE,
        codegen="view",
        lowering=Lowering.VIEW,
        samples=lambda rng: [
            Sample((rng.normal(size=(3, 4)),), {"axes": (1, 0)}),
            Sample((rng.normal(size=(2, 3, 4)),), {"axes": (2, 0, 1)}),
        ],
        grad_doc="ct transposed by the inverse permutation",
    )
)


def _bcast_rule(ts, *, shape):
    (t,) = ts
    try:
        if np.broadcast_shapes(t.shape, tuple(shape)) != tuple(shape):
            raise ValueError
    except ValueError:
        raise fail("broadcast_to", f"cannot broadcast to {tuple(shape)}", t) from None
    return TensorType(shape, t.dtype)


register(
    OpDef(
        name="broadcast_to",
        shape_rule=_bcast_rule,
        impl=lambda x, *, shape: np.broadcast_to(x, shape),
        # the autodiff driver sums the cotangent back over the broadcast axes
        vjp=lambda ct, x, *, out, shape: (ct,),
        jvp=lambda t, x, *, out, shape: bind("broadcast_to", t[0], shape=shape),
        kind=Kind.SHAPE,
        cost=Cost.FREE,
        codegen="view",
        lowering=Lowering.VIEW,
        samples=lambda rng: [
            Sample((rng.normal(size=(3, 1)),), {"shape": (3, 4)}),
            Sample((rng.normal(size=(4,)),), {"shape": (2, 3, 4)}),
            Sample((rng.normal(size=()),), {"shape": (2,)}),
        ],
        grad_doc="ct summed over the broadcast axes",
    )
)


def slice_tuple(index):
    """Python slices for normalised (start, step, count) triples."""
    out = []
    for start, step, count in index:
        stop = start + count * step
        out.append(slice(start, None if stop < 0 else stop, step))
    return tuple(out)


def _slice_rule(ts, *, index):
    (t,) = ts
    if len(index) != t.ndim:
        raise fail("slice", f"index has {len(index)} entries for rank {t.ndim}", t)
    for (start, step, count), d in zip(index, t.shape):
        last = start + (count - 1) * step
        if count < 0 or step == 0 or (count > 0 and not (0 <= start < d and 0 <= last < d)):
            raise fail("slice", f"index {index} out of bounds", t)
    return TensorType(tuple(c for _, _, c in index), t.dtype)


def _slice_vjp(ct, x, *, out, index):
    return (
        bind("set_slice", bind("full", shape=x.shape, dtype=x.dtype, fill=0.0), ct, index=index),
    )


def _slice_samples(rng):
    return [
        Sample((rng.normal(size=(6, 5)),), {"index": ((1, 1, 3), (0, 2, 3))}),
        Sample((rng.normal(size=(7,)),), {"index": ((6, -2, 4),)}),
        Sample((rng.normal(size=(3, 4)),), {"index": ((0, 1, 3), (3, -1, 4))}),
    ]


register(
    OpDef(
        name="slice",
        shape_rule=_slice_rule,
        impl=lambda x, *, index: np.asarray(x)[slice_tuple(index)],
        vjp=_slice_vjp,
        jvp=lambda t, x, *, out, index: bind("slice", t[0], index=index),
        kind=Kind.SHAPE,
        cost=Cost.FREE,
        codegen="view",
        lowering=Lowering.VIEW,
        samples=_slice_samples,
        grad_doc="ct written into zeros of the input's shape",
    )
)


def _concat_rule(ts, *, axis):
    if not ts:
        raise fail("concatenate", "needs at least one array")
    t0 = ts[0]
    for t in ts:
        if (
            t.ndim != t0.ndim
            or t.dtype != t0.dtype
            or any(a != b for i, (a, b) in enumerate(zip(t.shape, t0.shape)) if i != axis)
        ):
            raise fail("concatenate", f"operands do not match along axes other than {axis}", *ts)
    if not 0 <= axis < t0.ndim:
        raise fail("concatenate", f"bad axis {axis}", t0)
    shape = list(t0.shape)
    shape[axis] = sum(t.shape[axis] for t in ts)
    return TensorType(tuple(shape), t0.dtype)


def _concat_vjp(ct, *xs, out, axis):
    cts, off = [], 0
    for x in xs:
        index = tuple(
            (off, 1, x.shape[i]) if i == axis else (0, 1, d) for i, d in enumerate(out.shape)
        )
        cts.append(bind("slice", ct, index=index))
        off += x.shape[axis]
    return tuple(cts)


def _concat_jvp(t, *xs, out, axis):
    parts = [ti if ti is not None else np.zeros_like(x) for ti, x in zip(t, xs)]
    return bind("concatenate", *parts, axis=axis)


register(
    OpDef(
        name="concatenate",
        shape_rule=_concat_rule,
        impl=lambda *xs, axis: np.concatenate(xs, axis=axis),
        vjp=_concat_vjp,
        jvp=_concat_jvp,
        kind=Kind.INDEX,
        cost=Cost.CHEAP,
        codegen="concatenate",
        lowering=Lowering.CUSTOM,
        samples=lambda rng: [
            Sample((rng.normal(size=(2, 3)), rng.normal(size=(4, 3))), {"axis": 0}),
            Sample(
                (rng.normal(size=(2, 1)), rng.normal(size=(2, 2)), rng.normal(size=(2, 3))),
                {"axis": 1},
            ),
        ],
        grad_doc="ct sliced into the operands' pieces",
    )
)
