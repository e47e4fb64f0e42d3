"""`route`: tag the nodes the backend runs as library calls instead of inside loop kernels.

The decision is asked of the op's record (`OpDef.prefers_library(dtype)`: where NumPy's SIMD
ufunc beats a compiled *scalar* loop, see docs/routing.md) and of the backend: `library`, false
for a backend or a graph that keeps every value in registers, and `vectorized`, the nodes
whose loop code the backend widens to SIMD calls on this host (then the loop is as fast as the
ufunc and saves its pass over memory, so they stay in loops). A routed node carries the tag
`route="library"`; `fuse` keeps it out of every group and codegen calls the library for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from compiler.ir.graph import Graph, Node
from compiler.primitives import OPS, Kind

ROUTE = "route"
LIBRARY = "library"


def wants_library(n: Node) -> bool:
    """Whether the op record prefers a library call for this node's dtype."""
    d = OPS.get(n.op)
    return (
        d is not None
        and d.kind is Kind.ELEMENTWISE
        and len(n.outputs) == 1
        and d.prefers_library(n.out.dtype)
    )


def routed(n: Node) -> bool:
    """Whether the `route` pass tagged `n` as a library call."""
    return n.tags.get(ROUTE) == LIBRARY


def _never(n: Node) -> bool:
    return False


def route(
    graph: Graph, *, library: bool = True, vectorized: Callable[[Node], bool] = _never
) -> Graph:
    """`graph` with every node whose op prefers a library call tagged, except those the
    backend runs as SIMD calls in its loops (`vectorized`); `library=False` (the backend makes
    no library calls for this graph) tags nothing. Same object if unchanged."""
    if not library:
        return graph
    nodes = list(graph.nodes)
    changed = False
    for i, n in enumerate(nodes):
        if not routed(n) and wants_library(n) and not vectorized(n):
            nodes[i] = dataclasses.replace(n, tags={**n.tags, ROUTE: LIBRARY})
            changed = True
    if not changed:
        return graph
    return dataclasses.replace(graph, nodes=tuple(nodes))
