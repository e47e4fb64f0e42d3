"""Transformations beyond reverse mode: forward mode, Jacobians, Hessians, custom rules."""

from compiler.transforms.custom import custom_jvp, custom_vjp, stop_gradient
from compiler.transforms.forward import jvp, linearize
from compiler.transforms.jacobian import hessian, hvp, jacfwd, jacobian, jacrev

__all__ = [
    "custom_jvp",
    "custom_vjp",
    "hessian",
    "hvp",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "linearize",
    "stop_gradient",
]
