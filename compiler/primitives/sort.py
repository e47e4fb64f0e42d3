"""Sorting and selection results that are integers: argsort, argmax, argmin, searchsorted.

They carry no gradient (integer outputs). `sort`, `take_along_axis`, `partition` and friends
are compositions: a gather (`take`) at these indices, so their gradient flows through the
permutation (scattered back to where each element came from).
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.registry import Cost, Kind, OpDef, Sample, fail, register

I64 = np.dtype(np.int64)


def _argsort_rule(ts, *, axis):
    (t,) = ts
    if not 0 <= axis < t.ndim:
        raise fail("argsort", f"bad axis {axis}", t)
    return TensorType(t.shape, I64)


def _arg_rule(name):
    def rule(ts, *, axis, keepdims):
        (t,) = ts
        if not 0 <= axis < t.ndim or t.shape[axis] == 0:
            raise fail(name, f"bad axis {axis} (or an empty axis)", t)
        if keepdims:
            return TensorType(tuple(1 if i == axis else d for i, d in enumerate(t.shape)), I64)
        return TensorType(tuple(d for i, d in enumerate(t.shape) if i != axis), I64)

    return rule


def _searchsorted_rule(ts, *, side):
    a, v = ts
    if a.ndim != 1 or a.dtype != v.dtype:
        raise fail("searchsorted", "needs a 1-d sorted array and values of its dtype", a, v)
    return TensorType(v.shape, I64)


def _samples(rng):
    return [
        Sample((rng.normal(size=(3, 4)),), {"axis": 1}),
        Sample((np.array([[1.0, 3.0, 1.0], [2.0, 2.0, 0.0]], np.float32),), {"axis": 0}),
    ]


def _arg_samples(rng):
    return [
        Sample((rng.normal(size=(3, 4)),), {"axis": 1, "keepdims": False}),
        Sample((np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]),), {"axis": 0, "keepdims": True}),
    ]


def _register(name, rule, impl, samples, doc):
    register(
        OpDef(
            name=name,
            shape_rule=rule,
            impl=impl,
            kind=Kind.SCAN,
            cost=Cost.EXPENSIVE,
            codegen=name,
            samples=samples,
            differentiable=False,
            grad_doc=doc,
        )
    )


_register(
    "argsort",
    _argsort_rule,
    lambda x, *, axis: np.argsort(x, axis=axis, kind="stable").astype(I64),
    _samples,
    "no gradient (integer result; stable order, so ties keep their positions)",
)
_register(
    "argmax",
    _arg_rule("argmax"),
    lambda x, *, axis, keepdims: np.asarray(np.argmax(x, axis=axis, keepdims=keepdims), I64),
    _arg_samples,
    "no gradient (integer result; the first of tied maxima)",
)
_register(
    "argmin",
    _arg_rule("argmin"),
    lambda x, *, axis, keepdims: np.asarray(np.argmin(x, axis=axis, keepdims=keepdims), I64),
    _arg_samples,
    "no gradient (integer result; the first of tied minima)",
)
_register(
    "searchsorted",
    _searchsorted_rule,
    lambda a, v, *, side: np.asarray(np.searchsorted(a, v, side=side), I64),
    lambda rng: [
        Sample((np.array([0.0, 1.0, 1.0, 3.0]), rng.uniform(-1, 4, (2, 3))), {"side": "left"}),
        Sample(
            (np.array([0.0, 1.0, 2.0], np.float32), np.array([1.0, 2.5], np.float32)),
            {"side": "right"},
        ),
    ],
    "no gradient (integer result)",
)
