"""The primitive registry, filled at import: one record per op."""

from compiler.primitives import creation, elementwise, index, linalg, reduce, shape  # noqa: F401
from compiler.primitives.registry import OPS, Cost, Kind, OpDef, Sample, ScalarExpr, bind, register

__all__ = ["OPS", "Cost", "Kind", "OpDef", "Sample", "ScalarExpr", "bind", "register"]
