"""The primitive registry, filled at import: one record per op."""

from compiler.primitives import (  # noqa: F401  (each module registers its ops)
    binary,
    creation,
    decomp,
    elementwise,
    index,
    lapack,
    linalg,
    mathops,
    reduce,
    scan,
    shape,
    sort,
    special,
)
from compiler.primitives.registry import OPS, Cost, Kind, OpDef, Sample, ScalarExpr, bind, register

__all__ = ["OPS", "Cost", "Kind", "OpDef", "Sample", "ScalarExpr", "bind", "register"]
