"""Dead-code elimination."""

from __future__ import annotations

from compiler.ir.graph import Graph
from compiler.passes.manager import register_pass


@register_pass("dce")
def dce(graph: Graph) -> Graph:
    """Drop nodes whose outputs reach no graph output."""
    # A multi-output (fused) node stays while any of its outputs is live. Inputs stay
    # even when unused: they are the graph's calling convention.
    live = graph.live_values()
    kept = tuple(n for n in graph.nodes if any(v in live for v in n.outputs))
    if len(kept) == len(graph.nodes):
        return graph  # unchanged: the same object, so fixpoint loops stop cheaply
    return Graph(graph.inputs, kept, graph.outputs, graph.meta)
