"""gradc: a JIT compiler from plain-NumPy functions to compiled gradient functions."""

from compiler import primitives  # noqa: F401  (fills the op registry)
from compiler.api import checkpoint, grad, jit, value_and_grad, vjp
from compiler.interpret import interpret
from compiler.ir import Graph, verify
from compiler.logging_setup import configure_from_env
from compiler.trace import TracerError, trace
from compiler.trace.loops import fori_loop, scan, while_loop
from compiler.transforms import (
    custom_jvp,
    custom_vjp,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    linearize,
    stop_gradient,
)
from runtime.version import VERSION

__version__ = VERSION

configure_from_env()

__all__ = [
    "Graph",
    "TracerError",
    "__version__",
    "checkpoint",
    "custom_jvp",
    "custom_vjp",
    "fori_loop",
    "grad",
    "hessian",
    "hvp",
    "interpret",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jit",
    "jvp",
    "linearize",
    "scan",
    "stop_gradient",
    "trace",
    "value_and_grad",
    "verify",
    "vjp",
    "while_loop",
]
