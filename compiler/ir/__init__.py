"""The gradc IR: typed SSA graphs of primitive ops."""

from compiler.ir.graph import Builder, Const, Graph, Node, Value
from compiler.ir.printer import format_graph
from compiler.ir.types import TensorType, dtype_short, parse_type
from compiler.ir.verify import VerifyError, verify

__all__ = [
    "Builder",
    "Const",
    "Graph",
    "Node",
    "TensorType",
    "Value",
    "VerifyError",
    "dtype_short",
    "format_graph",
    "parse_type",
    "verify",
]
