"""Store or recompute: which forward values the backward part reads from memory.

The forward part of a joint graph is what the primal outputs need; every other live node is
backward. A forward value the backward reads is either stored (kept live across the
forward/backward boundary) or recomputed: its producing nodes are cloned into the backward,
right before their first use there, so the forward value dies early.

The choice is a minimum cut (as in Chen et al. 2016 and PyTorch's min-cut partitioner):
each forward value is an edge whose capacity is its bytes, the source feeds the values that
must not be recomputed, and the sink drains the values the backward reads. A cut is a set
of stored values from which everything the backward reads can be recomputed.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from compiler.ir.graph import Builder, Graph, Node, Value
from compiler.plan.mincut import min_cut_source_side
from compiler.primitives import OPS
from compiler.primitives.registry import Cost


def node_cost(node: Node) -> Cost:
    """The op's cost hint; a fused node costs as much as its dearest body op."""
    if node.op == "fused":
        return max((node_cost(n) for n in node.attrs["body"].nodes), key=lambda c: c.value)
    return OPS[node.op].cost


@dataclass(frozen=True)
class Phases:
    """A joint graph's live nodes split into forward (what primal outputs need) and backward."""

    graph: Graph
    fwd: tuple[Node, ...]
    bwd: tuple[Node, ...]
    free: frozenset[Value]  # available without storing: inputs, consts, graph outputs
    needed: tuple[Value, ...]  # non-free forward values the backward reads, in order


def split_phases(graph: Graph, n_primal: int | None) -> Phases:
    """Classify `graph`'s live nodes; with `n_primal=None` everything is forward."""
    live = graph.live_values()
    nodes = [n for n in graph.nodes if any(v in live for v in n.outputs)]
    if n_primal is None:
        fwd_set = set(nodes)
    else:
        want = set(graph.outputs[:n_primal])
        fwd_set = set()
        for n in reversed(nodes):
            if any(v in want for v in n.outputs):
                fwd_set.add(n)
                want.update(n.inputs)
    fwd = tuple(n for n in nodes if n in fwd_set)
    bwd = tuple(n for n in nodes if n not in fwd_set)
    free = set(graph.inputs) | set(graph.outputs)
    free.update(n.out for n in fwd if n.op == "const")
    fwd_vals = {v for n in fwd for v in n.outputs}
    needed: dict[Value, None] = {}
    for n in bwd:
        for v in n.inputs:
            if v in fwd_vals and v not in free:
                needed[v] = None
    return Phases(graph, fwd, bwd, frozenset(free), tuple(needed))


@dataclass(frozen=True)
class Decision:
    stored: tuple[Value, ...]  # forward values kept for the backward, in forward order
    recompute: frozenset[Value]  # forward values the backward recomputes


def decide(
    ph: Phases,
    banned: Iterable[Value],
    internal: Iterable[Value] = (),
) -> Decision:
    """Minimum-bytes stored set: `banned` values are never recomputed, `internal` never stored."""
    # ties prefer storing values nearer the backward (fewer recomputed nodes)
    banned, internal = set(banned), set(internal)
    producer = {v: n for n in ph.fwd for v in n.outputs}
    seen: set[Value] = set()  # non-free forward values some needed value depends on
    stack = list(ph.needed)
    while stack:
        v = stack.pop()
        if v in seen or v in ph.free or v not in producer:
            continue
        seen.add(v)
        stack.extend(producer[v].inputs)
    order = {v: i for i, v in enumerate(v for n in ph.fwd for v in n.outputs)}
    region = sorted(seen, key=order.__getitem__)
    idx = {v: i for i, v in enumerate(region)}
    users: dict[Value, list[Value]] = {}
    for v in region:
        for u in producer[v].inputs:
            if u in idx:
                users.setdefault(u, []).append(v)
    needed = set(ph.needed)
    dist: dict[Value, int] = {}
    for v in reversed(region):
        ds = [dist[w] + 1 for w in users.get(v, ())]
        dist[v] = 0 if v in needed else min(ds, default=len(region))
    scale = (len(region) + 1) * (len(region) + 1)
    # value i is the edge 2i -> 2i+1 (cut: stored); inf: no capacity, never cut
    src, sink = 2 * len(region), 2 * len(region) + 1
    edges: list[tuple[int, int, int | None]] = []
    for i, v in enumerate(region):
        if v in internal:
            edges.append((2 * i, 2 * i + 1, None))
        else:
            edges.append((2 * i, 2 * i + 1, v.type.nbytes * scale + dist[v] + 1))
        for u in producer[v].inputs:
            if u in idx:
                edges.append((2 * idx[u] + 1, 2 * i, None))
        if v in banned and v not in internal and producer[v].inputs:
            edges.append((src, 2 * i, None))
        if v in needed:
            edges.append((2 * i + 1, sink, None))
    src_side = min_cut_source_side(2 * len(region) + 2, edges, src, sink)
    stored = tuple(v for i, v in enumerate(region) if src_side[2 * i] and not src_side[2 * i + 1])
    return Decision(stored, frozenset(_closure(ph, set(stored), producer)))


def _closure(ph: Phases, stored: set[Value], producer: Mapping[Value, Node]) -> set[Value]:
    """Forward values to recompute so that the backward has every value it reads."""
    out: set[Value] = set()
    stack = [v for v in ph.needed if v not in stored]
    while stack:
        v = stack.pop()
        if v in out or v in stored or v in ph.free or v not in producer:
            continue
        out.add(v)
        stack.extend(producer[v].inputs)
    return out


@dataclass(frozen=True)
class Remat:
    """The planned graph: forward nodes, then backward nodes with clones placed lazily."""

    graph: Graph
    n_forward: int
    env: dict[Value, Value]  # joint value -> planned value (forward originals, backward)
    clones: dict[Value, Value]  # planned clone value -> planned forward original
    cloned_nodes: int


def rematerialize(ph: Phases, recompute: frozenset[Value], meta: Mapping) -> Remat:
    """Rebuild the graph with each recomputed value cloned right before its first use."""
    g = ph.graph
    producer = {v: n for n in ph.fwd for v in n.outputs}
    b = Builder()
    env: dict[Value, Value] = {v: b.add_input(v.type) for v in g.inputs}

    def emit(n: Node, lookup: Mapping[Value, Value]) -> tuple[Value, ...]:
        ins = [lookup.get(v) or env[v] for v in n.inputs]
        return b.copy(n, ins)

    for n in ph.fwd:
        env.update(zip(n.outputs, emit(n, {})))
    again: dict[Value, Value] = {}  # joint forward value -> its clone in the backward
    clones: dict[Value, Value] = {}
    count = 0
    for n in ph.bwd:
        for v in n.inputs:
            if v in recompute and v not in again:
                count += _ensure(v, recompute, producer, again, lambda m: emit(m, again))
        env.update(zip(n.outputs, emit(n, again)))
    for v, c in again.items():
        clones[c] = env[v]
    out = b.build([env[v] for v in g.outputs], meta=dict(meta))
    return Remat(out, len(ph.fwd), env, clones, count)


def _ensure(v, recompute, producer, again, emit) -> int:
    """Clone `v`'s producer, after the recomputed values it reads; return the clone count."""
    # iterative: a recomputed segment can be a chain thousands of nodes long
    count = 0
    stack = [(v, False)]
    while stack:
        u, ready = stack.pop()
        if u in again:
            continue
        n = producer[u]
        if ready:
            count += 1
            again.update(zip(n.outputs, emit(n)))
            continue
        stack.append((u, True))
        stack.extend((w, False) for w in n.inputs if w in recompute and w not in again)
    return count


def hoisted(rm: Remat, needed: Sequence[Value]) -> list[Value]:
    """Recomputed needed values cloned a backward matmul or reduction before their first use."""
    # such a clone stays live across that step, which can cost more than storing the value
    # (a residual stream recomputed from the start at once)
    nodes = rm.graph.nodes
    pos = {v: i for i, n in enumerate(nodes) for v in n.outputs}
    first_use: dict[Value, int] = {}
    expensive: list[int] = []
    for i in range(rm.n_forward, len(nodes)):
        n = nodes[i]
        if n.outputs[0] in rm.clones:
            continue
        if node_cost(n) is Cost.EXPENSIVE:
            expensive.append(i)
        for v in n.inputs:
            first_use.setdefault(v, i)
    clone = _invert(rm)
    out = []
    for v in needed:
        c = clone.get(v)
        if c is None or c not in first_use:
            continue
        # is there an expensive backward node strictly between the clone and its first use?
        k = bisect.bisect_right(expensive, pos[c])
        if k < len(expensive) and expensive[k] < first_use[c]:
            out.append(v)
    return out


def _invert(rm: Remat) -> dict[Value, Value]:
    """Joint forward value -> its planned clone."""
    back = {p: j for j, p in rm.env.items()}
    return {back[orig]: c for c, orig in rm.clones.items()}


def internal_values(ph: Phases, segments: Mapping[Node, Hashable]) -> tuple[set, set]:
    """(values never stored, values a segment reads from outside it and so stores)."""
    # A value made in a segment is a boundary, stored like any value, when a forward node of
    # another segment reads it (it is that segment's input). A user segment stores nothing
    # else: its outputs read by unsegmented nodes are recomputed too. An automatic segment's
    # outputs are boundaries, since the rest of the chain starts from them.
    seg_of = {v: segments[n] for n in ph.fwd if n in segments for v in n.outputs}
    boundary: set[Value] = set()
    inputs: set[Value] = set()
    for n in ph.fwd:
        s = segments.get(n)
        for v in n.inputs:
            t = seg_of.get(v)
            if t is None or t == s:
                continue
            if s is not None or _is_auto(t):
                boundary.add(v)
        if s is not None:
            inputs.update(v for v in n.inputs if seg_of.get(v) != s and v not in ph.free)
    inside = {v for v in seg_of if v not in boundary and v not in ph.free}
    return inside, inputs


def _is_auto(segment: Hashable) -> bool:
    return isinstance(segment, tuple) and segment[:1] == ("auto",)
