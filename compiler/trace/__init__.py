"""The tracer: plain NumPy code in, IR graph out."""

from compiler.trace import (  # noqa: F401  (installs handlers)
    contract_api,
    linalg_api,
    methods,
    reduce_api,
    scipy_api,
    shape_api,
    sort_api,
)
from compiler.trace.entry import ARRAY, FLOAT, STATIC, Traced, flatten, trace, trace_tree
from compiler.trace.tracer import TraceContext, Tracer, TracerError

__all__ = [
    "ARRAY",
    "FLOAT",
    "STATIC",
    "TraceContext",
    "Traced",
    "Tracer",
    "TracerError",
    "flatten",
    "trace",
    "trace_tree",
]
