"""Live ranges of a graph's buffers, with views folded into the buffer they alias.

A value either owns memory (a node output written by a kernel), or aliases another value's
memory (a view), or is not ours to manage (a graph input, a `const` the graph holds). A
buffer is live from the node that writes it to the last node that reads it or any view of
it; a buffer that is (or backs) a graph output escapes to the caller and lives to the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from compiler.ir.graph import Graph, Node, Value
from compiler.primitives import Lowering, ops_lowered

# Ops whose result is always a NumPy view of their operand (no copy, no buffer): the records
# lowered as views, but reshape, which is a view only of a C-contiguous buffer (`is_view`).
VIEW_OPS = ops_lowered(Lowering.VIEW) - {"reshape"}


def is_view(node: Node, contiguous: set[Value]) -> bool:
    """True when `node`'s output aliases its operand; `contiguous` holds C-contiguous buffers."""
    if node.op in VIEW_OPS:
        return True
    # reshape is a view only of a buffer known to be C-contiguous (ours); of a graph input,
    # a const or a strided view it may copy, so it gets its own buffer.
    return node.op == "reshape" and node.inputs[0] in contiguous


@dataclass(frozen=True)
class Liveness:
    """Per buffer: defining node index, last reading node index, and whether it escapes."""

    nodes: tuple[Node, ...]
    root: dict[Value, Value]  # every value -> the value that owns its memory
    owners: tuple[Value, ...]  # buffers, in definition order
    start: dict[Value, int]
    end: dict[Value, int]  # len(nodes) for escaping buffers
    escapes: frozenset[Value]

    def overlaps(self, a: Value, b: Value) -> bool:
        """Whether two buffers are live at the same node (closed intervals)."""
        return not (self.end[a] < self.start[b] or self.end[b] < self.start[a])


def analyze(graph: Graph) -> Liveness:
    """Live intervals of every buffer-owning value of `graph`, in node order."""
    nodes = tuple(graph.nodes)
    root: dict[Value, Value] = {v: v for v in graph.inputs}
    contiguous: set[Value] = set()
    owners: list[Value] = []
    start: dict[Value, int] = {}
    end: dict[Value, int] = {}
    for i, n in enumerate(nodes):
        if n.op == "const":
            root[n.out] = n.out  # held by the graph, like an input
            continue
        if len(n.outputs) == 1 and n.inputs and is_view(n, contiguous):
            base = root[n.inputs[0]]
            root[n.out] = base
            if n.op == "reshape":
                contiguous.add(n.out)
        else:
            for v in n.outputs:
                root[v] = v
                owners.append(v)
                contiguous.add(v)
                start[v] = end[v] = i
        for v in n.inputs:
            r = root[v]
            if r in start:
                end[r] = i
    last = len(nodes)
    escapes = {root[v] for v in graph.outputs if root[v] in start}
    for r in escapes:
        end[r] = last
    return Liveness(nodes, root, tuple(owners), start, end, frozenset(escapes))


def live_bytes(
    live: Liveness, values: Sequence[Value] | None = None, ends: Mapping[Value, int] | None = None
) -> list[int]:
    """Bytes of live buffers (among `values`, default all non-escaping) at each node."""
    if values is None:
        values = [v for v in live.owners if v not in live.escapes]
    ends = live.end if ends is None else ends
    diff = [0] * (len(live.nodes) + 2)
    for v in values:
        diff[live.start[v]] += v.type.nbytes
        diff[max(ends[v], live.start[v]) + 1] -= v.type.nbytes
    out, acc = [], 0
    for d in diff[: len(live.nodes)]:
        acc += d
        out.append(acc)
    return out
