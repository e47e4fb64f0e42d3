"""Automatic differentiation as graph transforms."""

from compiler.autodiff.jvp import jvp_graph
from compiler.autodiff.vjp import unbroadcast, vjp_graph

__all__ = ["jvp_graph", "unbroadcast", "vjp_graph"]
