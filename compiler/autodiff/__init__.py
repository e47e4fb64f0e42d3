"""Automatic differentiation as graph transforms."""

from compiler.autodiff.partition import Split, split_joint
from compiler.autodiff.vjp import unbroadcast, vjp_graph

__all__ = ["Split", "split_joint", "unbroadcast", "vjp_graph"]
