"""Fusion: elementwise chains (with broadcasts, scalar constants and fills, and a trailing
reduction) become one `fused` node whose `attrs["body"]` is a Graph, compiled to one loop nest.

Grouping is greedy in graph order. An elementwise node joins (or merges) the groups of its
producers that share its shape (the group's loop domain); a sum/max/min joins the group that
computes its operand, as the group's terminal reduction (all reductions of a group reduce the
same axes; their results are never read inside it). A `broadcast_to`, a 0-d `const` or a
`full` read by a group is copied into its body, so broadcasting and constants cost nothing.

Invariant that keeps the result acyclic and in SSA order: every value a group reads from
outside was produced *before the group's first member* (graph inputs, constants and fills
count as produced at the start). The fused node then takes the place of its first member,
everything it reads is already defined there, and everything that reads it comes later.
Matrix products, indexing and views stay outside groups (BLAS and NumPy views do them best).

Kernel identity: a group's size is capped (`MAX_GROUP`), and where the cap cuts must not
depend on how far a node is from the start of the graph. Greedy grouping without the cap
depends on structure alone; so a round first groups without chunks, and only if the cap
refuses a merge does it start over with *chunks* that no group crosses, cut where the graph's
local structure says so (`compiler/passes/chunks.py`). So the repeated steps of an unrolled
loop fuse into the same groups step after step, their loop bodies render to the same text,
and the kernel, named by that text's hash (`codegen/source.name_kernel`), compiles once
however many steps there are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from compiler.ir.graph import Builder, Graph, Node, Value, copy_into
from compiler.passes.chunks import chunks
from compiler.passes.manager import register_pass
from compiler.passes.route import routed
from compiler.primitives import CONST_OPS, OPS, REDUCE_OPS, Lowering

# Numba's compile time grows superlinearly with the size of one function: cap a group so a
# kernel stays around a hundred statements.
MAX_GROUP = 48


def _elementwise(n: Node) -> bool:
    d = OPS.get(n.op)
    return d is not None and d.lowering is Lowering.SCALAR and len(n.outputs) == 1


def _absorbable(n: Node) -> bool:
    """Nodes copied into every group that reads them: free broadcasts and scalar constants."""
    return n.op == "broadcast_to" or n.op == "full" or (n.op == "const" and n.out.ndim == 0)


class _Capped(Exception):
    """The size cap refused a merge in an unchunked round (see `_fuse_round`)."""


@dataclass
class _Group:
    first: int
    domain: tuple[int, ...]
    members: list[int] = field(default_factory=list)
    axes: tuple[int, ...] | None = None  # the reduction axes, once a reduction joined


class _Fuser:
    def __init__(
        self, graph: Graph, barrier: Callable[[Node], bool] | None = None, chunked: bool = False
    ) -> None:
        self.g = graph
        self.barrier = barrier
        self.nodes = graph.nodes
        self.prod: dict[Value, int] = {}
        for i, n in enumerate(self.nodes):
            for v in n.outputs:
                self.prod[v] = i
        self.group_of: dict[int, _Group] = {}
        self.readers: dict[Value, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for u in n.inputs:
                self.readers.setdefault(u, []).append(i)
        self.outputs = set(graph.outputs)
        # without chunks every node is in chunk 0, and the first time the size cap refuses a
        # merge the round starts over with chunks (`_Capped`)
        self.chunked = chunked
        self.chunk = chunks(graph, MAX_GROUP) if chunked else [0] * len(graph.nodes)
        self._srcs: dict[int, list[tuple[Value, int]]] = {}

    def _full(self, over: bool) -> bool:
        """`over`, the size cap refusing a merge: unchunked, that starts the round over."""
        if over and not self.chunked:
            raise _Capped
        return over

    def pos(self, v: Value) -> int:
        """Where `v` is produced; -1 for inputs and for constants (which are hoisted)."""
        i = self.prod.get(v)
        if i is None or self.nodes[i].op in CONST_OPS:
            return -1
        return i

    def _source(self, v: Value) -> Value | None:
        """The value a group really reads for input `v`: a broadcast's operand, or None for a
        constant that is copied into the body."""
        i = self.prod.get(v)
        if i is None:
            return v
        n = self.nodes[i]
        if n.op == "broadcast_to":
            return self._source(n.inputs[0])
        if _absorbable(n):
            return None
        return v

    def _internal(self, v: Value, members: set[int]) -> bool:
        i = self.prod.get(v)
        return i is not None and i in members and self.nodes[i].op not in REDUCE_OPS

    def _sources(self, i: int) -> list[tuple[Value, int]]:
        """(source, where it is produced) for each input of node i that a group reads: what
        `_source` says, constants left out (computed once per node)."""
        got = self._srcs.get(i)
        if got is None:
            got = []
            for u in self.nodes[i].inputs:
                src = self._source(u)
                if src is not None:
                    got.append((src, self.pos(src)))
            self._srcs[i] = got
        return got

    def _late_inputs(self, members: set[int], first: int):
        """Values the would-be group reads from outside that are produced at or after `first`."""
        for i in sorted(members):
            for src, at in self._sources(i):
                if at >= first and not self._internal(src, members):
                    yield src

    def legal(self, members: set[int], first: int) -> bool:
        """Everything the would-be group reads from outside is produced before `first`."""
        return next(self._late_inputs(members, first), None) is None

    def _plan(self, members: set[int], first: int, domain) -> set[int] | None:
        """Members plus the private producers pulled in so that the group is legal, or None.

        A late input made by an elementwise node whose every reader is in the group (say
        `1 - t*t` computed early, in the forward group, but read only by a backward
        multiply) moves into this group, with its own private late producers.
        """
        members = set(members)
        while True:
            late = next(self._late_inputs(members, first), None)
            if late is None:
                return members
            q = self.prod[late]
            n = self.nodes[q]
            if (
                q not in self.group_of
                or self.chunk[q] != self.chunk[first]
                or n.op in REDUCE_OPS
                or n.out.shape != domain
                or late in self.outputs
                or any(r not in members for r in self.readers.get(late, ()))
                or self._full(len(members) >= MAX_GROUP)
            ):
                return None
            members.add(q)

    def run(self) -> list[_Group]:
        for i, n in enumerate(self.nodes):
            if self.barrier is not None and self.barrier(n):
                continue
            if _elementwise(n):
                self._add_elementwise(i, n)
            elif n.op in REDUCE_OPS and len(n.inputs) == 1:
                self._add_reduction(i, n)
        seen, groups = set(), []
        for i in sorted(self.group_of):
            gr = self.group_of[i]
            if id(gr) not in seen:
                seen.add(id(gr))
                groups.append(gr)
        return groups

    def _add_elementwise(self, i: int, n: Node) -> None:
        cands = []
        for u in n.inputs:
            src = self._source(u)
            j = self.prod.get(src) if src is not None else None
            gr = self.group_of.get(j) if j is not None else None
            if (
                gr is not None
                and gr.domain == n.out.shape
                and self.chunk[gr.first] == self.chunk[i]
                and self.nodes[j].op not in REDUCE_OPS
                and all(gr is not c for c in cands)
            ):
                cands.append(gr)
        cands.sort(key=lambda gr: -gr.first)
        options = ([cands] if len(cands) > 1 else []) + [[c] for c in cands]
        for opt in options:
            members = {m for gr in opt for m in gr.members} | {i}
            axes = {gr.axes for gr in opt if gr.axes is not None}
            if len(axes) > 1 or self._full(len(members) > MAX_GROUP):
                continue
            first = min(gr.first for gr in opt)
            plan = self._plan(members, first, n.out.shape)
            if plan is not None:
                for q in sorted(plan - members):
                    self._detach(q)
                self._merge(opt, i, first, next(iter(axes), None), sorted(plan - members))
                return
        self.group_of[i] = _Group(i, n.out.shape, [i])

    def _detach(self, q: int) -> None:
        gr = self.group_of.pop(q)
        gr.members.remove(q)
        if gr.members:  # a later first keeps the group legal: it read nothing later before
            gr.first = min(gr.members)

    def _merge(self, groups: list[_Group], i: int, first: int, axes, pulled: list[int]) -> None:
        keep = groups[0]
        for gr in groups[1:]:
            keep.members.extend(gr.members)
            for m in gr.members:
                self.group_of[m] = keep
        for q in pulled:
            keep.members.append(q)
            self.group_of[q] = keep
        keep.members.append(i)
        keep.members.sort()
        keep.first, keep.axes = first, axes
        self.group_of[i] = keep

    def _add_reduction(self, i: int, n: Node) -> None:
        axes = tuple(sorted(n.attrs["axis"]))
        j = self.prod.get(n.inputs[0])
        gr = self.group_of.get(j) if j is not None else None
        if (
            gr is not None
            and self.chunk[gr.first] == self.chunk[i]
            and self.nodes[j].op not in REDUCE_OPS
            and gr.axes in (None, axes)
            and n.inputs[0].shape == gr.domain
            and (n.op == "sum" or n.out.type.is_float)
            and not self._full(len(gr.members) >= MAX_GROUP)
        ):
            gr.members.append(i)
            gr.axes = axes
            self.group_of[i] = gr
        else:
            self.group_of[i] = _Group(i, n.inputs[0].shape, [i], axes)


def _body(fz: _Fuser, gr: _Group, outside: set[Value]) -> tuple[Graph, list[Value], list[Value]]:
    """Build the group's body; return it with the outer values it reads and defines."""
    nodes = fz.nodes
    members = set(gr.members)
    b = Builder()
    env: dict[Value, Value] = {}
    ext: list[Value] = []

    def read(u: Value) -> Value:
        if u in env:
            return env[u]
        i = fz.prod.get(u)
        n = nodes[i] if i is not None else None
        if i is not None and i in members:
            raise AssertionError("fuse: member read before it is defined")
        if n is not None and _absorbable(n):
            ins = [read(x) for x in n.inputs]
            env[u] = b.add_node(n.op, ins, n.attrs, [u.type])[0]
        else:
            ext.append(u)
            env[u] = b.add_input(u.type)
        return env[u]

    for i in gr.members:
        n = nodes[i]
        ins = [read(u) for u in n.inputs]
        env.update(zip(n.outputs, b.copy(n, ins)))
    defined = [v for i in gr.members for v in nodes[i].outputs if v in outside]
    body = b.build([env[v] for v in defined])
    return body, ext, defined


@register_pass("fuse")
def fuse(graph: Graph, *, barrier: Callable[[Node], bool] = routed) -> Graph:
    """Group elementwise chains and their trailing reductions into `fused` nodes.

    `barrier(node)` true keeps that node out of every group: by default the nodes the
    `route` pass tagged as library calls (transcendentals as NumPy's SIMD ufuncs).
    """
    # Grouping is greedy in graph order, and a group is emitted at its first member, so a
    # round can leave two nodes apart that the next round joins: a group reading a value made
    # between its would-be members becomes legal once that value's own group is emitted
    # earlier (`neg a; neg b; neg(neg a) + neg b` with a and b of different shapes). Repeat
    # to a fixpoint, so that fuse(fuse(g)) == fuse(g); each round either fuses something
    # (fewer nodes) or returns its input unchanged.
    while True:
        out = _fuse_round(graph, barrier)
        if out is graph:
            return graph
        graph = out


def _fuse_round(graph: Graph, barrier: Callable[[Node], bool] | None) -> Graph:
    """One greedy grouping round over `graph` (the same graph object when nothing fuses)."""
    # Without the size cap, greedy grouping depends on structure alone, so repeated structure
    # fuses alike. Only a graph whose groups reach the cap needs chunks (see module doc);
    # any other graph fuses exactly as greedily as it can.
    try:
        fz = _Fuser(graph, barrier)
        found = fz.run()
    except _Capped:
        fz = _Fuser(graph, barrier, chunked=True)
        found = fz.run()
    groups = [gr for gr in found if len(gr.members) > 1]
    if not groups:
        return graph
    nodes = graph.nodes
    owner: dict[int, _Group] = {m: gr for gr in groups for m in gr.members}

    # which values are read outside their group (by other nodes, or as graph outputs), and
    # which absorbable nodes still have a reader that did not copy them
    outside: set[Value] = set(graph.outputs)
    needed: set[int] = set()

    def need(u: Value, reader_group: _Group | None) -> None:
        i = fz.prod.get(u)
        if i is None:
            return
        n = nodes[i]
        if reader_group is not None and _absorbable(n):
            for x in n.inputs:
                need(x, reader_group)
            return
        if owner.get(i) is not reader_group or reader_group is None:
            outside.add(u)
        needed.add(i)

    for i, n in enumerate(nodes):
        gr = owner.get(i)
        for u in n.inputs:
            need(u, gr)
    for v in graph.outputs:
        i = fz.prod.get(v)
        if i is not None:
            needed.add(i)

    b = Builder()
    env: dict[Value, Value] = {v: b.add_input(v.type) for v in graph.inputs}

    def copy(n: Node) -> None:
        env.update(zip(n.outputs, b.copy(n, [env[u] for u in n.inputs])))

    # constants and fills first (groups may read them before their original position)
    for i, n in enumerate(nodes):
        if n.op in CONST_OPS and i in needed and i not in owner:
            copy(n)
    for i, n in enumerate(nodes):
        gr = owner.get(i)
        if gr is None:
            if n.op in CONST_OPS or (i not in needed and _absorbable(n)):
                continue
            copy(n)
        elif i == gr.first:
            body, ext, defined = _body(fz, gr, outside)
            outs = b.add_node(
                "fused", [env[u] for u in ext], {"body": body}, [v.type for v in defined], loc=n.loc
            )
            env.update(zip(defined, outs))
    return b.build([env[v] for v in graph.outputs], graph.meta)


def inline_fused(graph: Graph, pred: Callable[[Graph], bool]) -> Graph:
    """Replace every fused node whose body satisfies `pred` by the body's nodes."""
    if not any(n.op == "fused" and pred(n.attrs["body"]) for n in graph.nodes):
        return graph
    b = Builder()
    env = {v: b.add_input(v.type) for v in graph.inputs}
    for n in graph.nodes:
        ins = [env[v] for v in n.inputs]
        if n.op == "fused" and pred(n.attrs["body"]):
            outs = copy_into(b, inline_fused(n.attrs["body"], pred), ins)
        else:
            outs = b.copy(n, ins)
        env.update(zip(n.outputs, outs))
    return b.build([env[v] for v in graph.outputs], graph.meta)


def fused_count(graph: Graph) -> int:
    """How many fused nodes `graph` has (for reports and tests)."""
    return sum(n.op == "fused" for n in graph.nodes)


__all__ = ["MAX_GROUP", "fuse", "fused_count", "inline_fused"]
