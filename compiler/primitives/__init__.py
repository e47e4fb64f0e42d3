"""The primitive registry, filled at import: one record per op."""

from compiler.primitives import (  # noqa: F401  (each module registers its ops)
    binary,
    creation,
    decomp,
    elementwise,
    fused,
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
from compiler.primitives.registry import (
    OPS,
    Cost,
    Kind,
    Lowering,
    OpDef,
    Sample,
    ScalarExpr,
    bind,
    ops_lowered,
    register,
)

# Op-name sets derived from the records (the loop ops register in compiler/autodiff/loops.py)
REDUCE_OPS: frozenset[str] = ops_lowered(Lowering.REDUCE)
CONST_OPS: frozenset[str] = frozenset(name for name, d in OPS.items() if d.kind is Kind.CONST)

__all__ = [
    "CONST_OPS",
    "OPS",
    "REDUCE_OPS",
    "Cost",
    "Kind",
    "Lowering",
    "OpDef",
    "Sample",
    "ScalarExpr",
    "bind",
    "ops_lowered",
    "register",
]
