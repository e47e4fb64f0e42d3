"""Node order for the compiled stage: move nodes later, toward their first reader, when that
never makes more memory live.

The joint graph arrives in the order autodiff, the planner and fusion left it, which can
compute a backward-only value early in the forward: the fuse pass puts a group where its
first member was, so `1 - t*t` for tanh's VJP ends up right after the forward tanh and is
stored (alongside `t`, which the weight gradient still reads) through the whole forward. The
buffer planner only sees lifetimes, so the order decides the planned peak.

`sink(graph)` walks the nodes backwards and moves each one to just before its first reader
(keeping the relative order of nodes that land at the same place) when the bytes it frees
(its non-escaping outputs, now live for a shorter span) cover the bytes it keeps alive longer
(operands whose last reader it was). The comparison is by shape and dtype, as fusion's, so
batch sizes that keep the same shape equalities keep the same order (and the same module).
Any topological order computes the same values, so this is purely a memory decision.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from compiler.ir.graph import Graph, Node, Value
from compiler.plan.liveness import analyze
from compiler.primitives import OPS, REDUCE_OPS, Kind


def sink(graph: Graph) -> Graph:
    """`graph` with nodes moved later where that frees at least as much as it keeps live."""
    nodes = graph.nodes
    if len(nodes) < 2:
        return graph
    live = analyze(graph)
    root = live.root
    escapes = live.escapes
    readers: dict[Value, list[int]] = {}  # value -> indices of nodes reading it
    root_readers: dict[Value, list[int]] = {}  # buffer -> nodes reading it or a view of it
    for i, n in enumerate(nodes):
        for u in n.inputs:
            readers.setdefault(u, []).append(i)
            r = root.get(u)
            if r is not None and r in live.start:
                root_readers.setdefault(r, []).append(i)
    # keys: a fixed node i has (i, 0); a node placed before the node with key K = (..., 0)
    # gets (..., -(N - i), 0) or (..., -(2N - i), 0), which sorts after everything below K
    # and just before K. Siblings (nodes placed before the same node) never read each other
    # (a node read by a sibling is placed before that sibling instead), so their order is
    # free: loop-fusable ones go last, next to their reader, so that fusion can merge them
    # with it (a group must come after everything it reads, say a matmul sibling), each
    # kind in original order
    total = len(nodes)
    keys: list[tuple[int, ...]] = [(i, 0) for i in range(total)]
    moved = False
    for i in range(total - 1, -1, -1):
        n = nodes[i]
        targets = [keys[j] for v in n.outputs for j in readers.get(v, ())]
        if not targets:
            continue
        first = min(targets)
        if first <= keys[i]:
            continue
        if not _worth_it(n, i, first, keys, root, root_readers, escapes, live.start):
            continue
        keys[i] = first[:-1] + (-((1 if _fusable(n) else 2) * total - i), 0)
        moved = True
    if not moved:
        return graph
    order = sorted(range(total), key=keys.__getitem__)
    return dataclasses.replace(graph, nodes=tuple(nodes[i] for i in order))


def _fusable(n: Node) -> bool:
    if n.op in ("fused", "broadcast_to", "const", "full") or n.op in REDUCE_OPS:
        return True
    d = OPS.get(n.op)
    return d is not None and d.kind is Kind.ELEMENTWISE


def _worth_it(n: Node, i: int, first, keys, root, root_readers, escapes, owners) -> bool:
    """Moving `n` to just before key `first` frees at least what it keeps alive longer."""
    freed = Counter((v.shape, v.dtype) for v in n.outputs if v in owners and v not in escapes)
    kept: Counter = Counter()
    for r in {root.get(u) for u in n.inputs}:
        if r is None or r not in owners or r in escapes:
            continue  # graph inputs, constants and outputs live anyway
        if any(j != i and keys[j] >= first for j in root_readers.get(r, ())):
            continue  # another reader keeps it live at least that long
        kept[(r.shape, r.dtype)] += 1
    # every buffer kept alive longer is paid for by a freed one of the same shape and dtype
    return all(freed[k] >= c for k, c in kept.items())
