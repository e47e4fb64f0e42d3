"""Cumulative ops and products along an axis: cumsum, cumprod, prod. NumPy calls from the
driver (a scan is sequential along its axis, so there is nothing to fuse).

`prod`'s gradient is the product of the other elements, formed from exclusive cumulative
products from both ends, so it stays exact when some elements are 0. `cumprod`'s gradient
divides by x (the usual formula) and is nan where x = 0; write such code with `prod` over
windows, or keep zeros out.
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.registry import Cost, Kind, OpDef, Sample, bind, fail, register
from compiler.primitives.shape import inverse_perm


def _axis_rule(name):
    def rule(ts, *, axis):
        (t,) = ts
        if not 0 <= axis < t.ndim:
            raise fail(name, f"bad axis {axis}", t)
        return t

    return rule


def flip(x, axis: int):
    """x reversed along axis (a negative-step slice: a view)."""
    index = tuple((d - 1, -1, d) if i == axis else (0, 1, d) for i, d in enumerate(x.shape))
    return bind("slice", x, index=index)


def _shift(x, axis: int, fill: float):
    """x moved one step along axis, `fill` entering at the front (exclusive scans)."""
    n = x.shape[axis]
    head = bind(
        "full",
        shape=tuple(1 if i == axis else d for i, d in enumerate(x.shape)),
        dtype=x.dtype,
        fill=fill,
    )
    if n == 1:
        return head
    index = tuple((0, 1, n - 1) if i == axis else (0, 1, d) for i, d in enumerate(x.shape))
    return bind("concatenate", head, bind("slice", x, index=index), axis=axis)


def _scan_samples(rng):
    return [
        Sample((rng.uniform(0.5, 1.5, (3, 4)),), {"axis": 1}),
        Sample((rng.uniform(-1.5, 1.5, (2, 3, 2)),), {"axis": 0}),
        Sample((rng.uniform(0.5, 1.5, (5,)).astype(np.float32),), {"axis": 0}),
    ]


register(
    OpDef(
        name="cumsum",
        shape_rule=_axis_rule("cumsum"),
        impl=lambda x, *, axis: np.cumsum(x, axis=axis),
        # the sum of ct over positions at or after each index: a reversed cumsum
        vjp=lambda ct, x, *, out, axis: (flip(bind("cumsum", flip(ct, axis), axis=axis), axis),),
        jvp=lambda t, x, *, out, axis: bind("cumsum", t[0], axis=axis),
        kind=Kind.SCAN,
        cost=Cost.EXPENSIVE,
        codegen="cumsum",
        samples=_scan_samples,
        grad_doc="ct summed from the end (a reversed cumsum)",
    )
)


def _cumprod_vjp(ct, x, *, out, axis):
    # d out_j / d x_i = out_j / x_i for i <= j
    return (flip(bind("cumsum", flip(ct * out, axis), axis=axis), axis) / x,)


register(
    OpDef(
        name="cumprod",
        shape_rule=_axis_rule("cumprod"),
        impl=lambda x, *, axis: np.cumprod(x, axis=axis),
        vjp=_cumprod_vjp,
        jvp=lambda t, x, *, out, axis: out * bind("cumsum", t[0] / x, axis=axis),
        kind=Kind.SCAN,
        cost=Cost.EXPENSIVE,
        codegen="cumprod",
        samples=_scan_samples,
        grad_doc="reversed cumsum of ct * out, divided by x (nan where x = 0)",
    )
)


def _prod_rule(ts, *, axis, keepdims):
    (t,) = ts
    if any(not 0 <= a < t.ndim for a in axis) or len(set(axis)) != len(axis):
        raise fail("prod", f"bad axis {axis}", t)
    if keepdims:
        return TensorType(tuple(1 if i in axis else d for i, d in enumerate(t.shape)), t.dtype)
    return TensorType(tuple(d for i, d in enumerate(t.shape) if i not in axis), t.dtype)


def _others(x, axis):
    """For each element, the product of the other elements of its reduction group: exclusive
    cumulative products from the front and from the back (exact with zeros)."""
    rest = tuple(i for i in range(len(x.shape)) if i not in axis)
    perm = rest + tuple(axis)
    xt = bind("transpose", x, axes=perm)
    lead = tuple(x.shape[i] for i in rest)
    n = int(np.prod([x.shape[a] for a in axis], dtype=np.int64))
    flat = bind("reshape", xt, shape=lead + (n,))
    last = len(lead)
    left = _shift(bind("cumprod", flat, axis=last), last, 1.0)
    right = flip(_shift(bind("cumprod", flip(flat, last), axis=last), last, 1.0), last)
    both = bind("reshape", left * right, shape=tuple(xt.shape))
    return bind("transpose", both, axes=inverse_perm(perm))


def _keep(v, x, axis, keepdims):
    if keepdims:
        return v
    return bind("reshape", v, shape=tuple(1 if i in axis else d for i, d in enumerate(x.shape)))


def _prod_vjp(ct, x, *, out, axis, keepdims):
    return (_keep(ct, x, axis, keepdims) * _others(x, axis),)


def _prod_jvp(t, x, *, out, axis, keepdims):
    return bind("sum", t[0] * _others(x, axis), axis=axis, keepdims=keepdims)


register(
    OpDef(
        name="prod",
        shape_rule=_prod_rule,
        impl=lambda x, *, axis, keepdims: np.asarray(np.prod(x, axis=axis, keepdims=keepdims)),
        vjp=_prod_vjp,
        jvp=_prod_jvp,
        kind=Kind.SCAN,
        cost=Cost.EXPENSIVE,
        codegen="prod",
        samples=lambda rng: [
            Sample((rng.uniform(-1.5, 1.5, (3, 4)),), {"axis": (1,), "keepdims": False}),
            Sample(
                (np.array([[0.0, 1.3, -0.7], [0.0, 0.0, 2.0]]),), {"axis": (1,), "keepdims": True}
            ),
            Sample((rng.uniform(0.5, 1.5, (2, 3, 2)),), {"axis": (0, 2), "keepdims": False}),
            Sample(
                (rng.uniform(0.5, 1.5, (4,)).astype(np.float32),), {"axis": (0,), "keepdims": False}
            ),
        ],
        grad_doc="ct times the product of the other elements (exact at zeros)",
    )
)
