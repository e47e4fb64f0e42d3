"""Reductions: sum, max, min over an axis tuple, with keepdims."""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.registry import Cost, Kind, OpDef, Sample, bind, fail, register

# These records lower as `Lowering.REDUCE` (a running accumulator in a loop nest): the fuse
# pass, the loop kernels and the scheduler read `compiler.primitives.REDUCE_OPS`, derived
# from the records; a new reduction joins when codegen/loops.py knows its identity and update.


def _reduce_rule(name):
    def rule(ts: list[TensorType], *, axis: tuple[int, ...], keepdims: bool) -> TensorType:
        (t,) = ts
        if any(not 0 <= a < t.ndim for a in axis) or len(set(axis)) != len(axis):
            raise fail(name, f"bad axis {axis}", t)
        if name != "sum" and any(t.shape[a] == 0 for a in axis):
            raise fail(name, "zero-size reduction has no identity", t)
        if keepdims:
            shape = tuple(1 if i in axis else d for i, d in enumerate(t.shape))
        else:
            shape = tuple(d for i, d in enumerate(t.shape) if i not in axis)
        return TensorType(shape, t.dtype)

    return rule


def keep_shape(shape: tuple[int, ...], axis: tuple[int, ...]) -> tuple[int, ...]:
    """The keepdims shape of reducing `shape` over `axis`."""
    return tuple(1 if i in axis else d for i, d in enumerate(shape))


def _expand(ct, x, axis, keepdims):
    """Reshape a reduction's cotangent to the keepdims shape, then broadcast to x."""
    if not keepdims:
        ct = bind("reshape", ct, shape=keep_shape(x.shape, axis))
    return ct


def _sum_vjp(ct, x, *, out, axis, keepdims):
    return (bind("broadcast_to", _expand(ct, x, axis, keepdims), shape=x.shape),)


def _sum_jvp(t, x, *, out, axis, keepdims):
    return bind("sum", t[0], axis=axis, keepdims=keepdims)


def _extremum_rules(name):
    # ties share the gradient equally (as JAX does): ct * mask / count(mask)
    def mask_of(x, out, axis, keepdims):
        o = _expand(out, x, axis, keepdims)
        m = (x == o).astype(x.dtype)
        cnt = bind("sum", m, axis=axis, keepdims=True)
        return m / cnt

    def vjp(ct, x, *, out, axis, keepdims):
        w = mask_of(x, out, axis, keepdims)
        return (_expand(ct, x, axis, keepdims) * w,)

    def jvp(t, x, *, out, axis, keepdims):
        w = mask_of(x, out, axis, keepdims)
        return bind("sum", t[0] * w, axis=axis, keepdims=keepdims)

    return vjp, jvp


def _samples(rng):
    out = []
    for shape, axis, keep in [
        ((5,), (0,), False),
        ((3, 4), (1,), False),
        ((3, 4), (0,), True),
        ((2, 3, 4), (0, 2), False),
        ((2, 3, 4), (0, 1, 2), True),
        ((3, 4), (), False),
    ]:
        out.append(Sample((rng.normal(size=shape),), {"axis": axis, "keepdims": keep}))
    out.append(
        Sample((rng.normal(size=(4, 3)).astype(np.float32),), {"axis": (0,), "keepdims": False})
    )
    return out


def _np_reduce(fn):
    def impl(x, *, axis, keepdims):
        return np.asarray(fn(x, axis=axis, keepdims=keepdims))

    return impl


register(
    OpDef(
        name="sum",
        shape_rule=_reduce_rule("sum"),
        impl=_np_reduce(np.sum),
        kind=Kind.REDUCE,
        vjp=_sum_vjp,
        jvp=_sum_jvp,
        codegen="sum",
        cost=Cost.EXPENSIVE,
        samples=_samples,
        grad_doc="ct broadcast back over axis",
    )
)

for _name, _fn in [("max", np.max), ("min", np.min)]:
    _vjp, _jvp = _extremum_rules(_name)
    register(
        OpDef(
            name=_name,
            shape_rule=_reduce_rule(_name),
            impl=_np_reduce(_fn),
            kind=Kind.REDUCE,
            vjp=_vjp,
            jvp=_jvp,
            codegen=_name,
            cost=Cost.EXPENSIVE,
            samples=_samples,
            grad_doc="to the arg-extremum; ties share the gradient equally",
        )
    )
