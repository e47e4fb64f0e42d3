"""Constants: `const` (an array held in the graph) and `full` (a fill, no data stored)."""

from __future__ import annotations

import numpy as np

from compiler.ir.graph import Const
from compiler.ir.types import TensorType
from compiler.primitives.registry import Cost, Kind, Lowering, OpDef, Sample, register


def _const_rule(ts, *, value):
    return TensorType(value.array.shape, value.array.dtype)


register(
    OpDef(
        name="const",
        shape_rule=_const_rule,
        impl=lambda *, value: value.array,
        kind=Kind.CONST,
        cost=Cost.FREE,
        codegen="const",
        lowering=Lowering.CUSTOM,
        differentiable=False,
        samples=lambda rng: [Sample((), {"value": Const(rng.normal(size=(2, 3)))})],
        grad_doc="constant",
    )
)


def _full_rule(ts, *, shape, dtype, fill):
    return TensorType(shape, dtype)


register(
    OpDef(
        name="full",
        shape_rule=_full_rule,
        impl=lambda *, shape, dtype, fill: np.full(shape, fill, dtype=dtype),
        kind=Kind.CONST,
        cost=Cost.FREE,
        codegen="full",
        lowering=Lowering.CUSTOM,
        differentiable=False,
        samples=lambda rng: [
            Sample((), {"shape": (2, 3), "dtype": np.dtype("float64"), "fill": 1.5})
        ],
        grad_doc="constant",
    )
)
