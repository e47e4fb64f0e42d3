"""`route`: tag the nodes the backend runs as library calls instead of inside loop kernels.

The decision is the backend's: `prefers`, per node (the Numba backend's per-host decisions,
`compiler/codegen/routing.py`: measured once per host, or the op records' `library` dtypes
until then, see docs/routing.md), and `library`, false for a backend or a graph that keeps
every value in registers. A routed node carries the tag
`route="library"`; `fuse` keeps it out of every group and codegen calls the library for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from compiler.ir.graph import Graph, Node
from compiler.primitives import OPS, Kind

ROUTE = "route"
LIBRARY = "library"


def _routable(n: Node) -> bool:
    d = OPS.get(n.op)
    return d is not None and d.kind is Kind.ELEMENTWISE and len(n.outputs) == 1


def wants_library(n: Node) -> bool:
    """Whether the op record prefers a library call for this node's dtype."""
    return _routable(n) and OPS[n.op].prefers_library(n.out.dtype)


def routed(n: Node) -> bool:
    """Whether the `route` pass tagged `n` as a library call."""
    return n.tags.get(ROUTE) == LIBRARY


def route(
    graph: Graph, *, library: bool = True, prefers: Callable[[Node], bool] = wants_library
) -> Graph:
    """`graph` with every elementwise node that `prefers` a library call tagged (default: as
    its op record says; the backend passes its per-host decisions); `library=False` (the
    backend makes no library calls for this graph) tags nothing. Same object if unchanged."""
    if not library:
        return graph
    nodes = list(graph.nodes)
    changed = False
    for i, n in enumerate(nodes):
        if not routed(n) and _routable(n) and prefers(n):
            nodes[i] = dataclasses.replace(n, tags={**n.tags, ROUTE: LIBRARY})
            changed = True
    if not changed:
        return graph
    return dataclasses.replace(graph, nodes=tuple(nodes))
