"""Automatic differentiation as graph transforms."""

from compiler.autodiff import (
    batch_library,  # noqa: F401  (batching rules for library ops)
    loops,  # noqa: F401  (registers the loop ops)
)
from compiler.autodiff.jvp import jvp_graph
from compiler.autodiff.partition import Split, split_joint
from compiler.autodiff.vjp import unbroadcast, vjp_graph

__all__ = ["Split", "jvp_graph", "split_joint", "unbroadcast", "vjp_graph"]
