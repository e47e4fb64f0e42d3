"""The `rowfuse` pass: one pass over a matrix's rows for `z = X @ w`, a loop over z, and `X.T @ r`.

A linear model's value and gradient reads its data matrix twice: the forward's `z = X @ w`
and the backward's `g = X.T @ r`, where `r` (the cotangent of z) is an elementwise function
of z and other per-row values, computed by one fused loop. Since `r[i]` depends only on row
`i`, both products can share one pass over X: per block of rows, the dot products, then the
fused loop's body on that block, then the block's contribution to g, while the block is
still in cache. `row_fuse(graph)` replaces such a triple with one `rowfused` node, which
codegen (`rowloop.py`) runs as that loop; `backend="interpret"` runs its reference
(`primitives/fused.run_rowfused`: the two products around the body).

The pattern (after `fuse` and `pushdown`, on the graph codegen renders):

    M = matmul(X, W)            X [n, d], W [d, 1] or [d]; M read only by z's reshape
    z = reshape(M, (n,))        (or M itself when W is [d]); read only by the fused node
    outs = fused(..., z, ...)   a rank-1 loop over n: elementwise ops, sums over its rows
    R = reshape(outs[j], (n, 1))
    G = matmul(transpose(X), R) the same X; [d, 1] (or [d] when outs[j] is used directly)

It does not fire when z has another reader (something would need all of z before the loop
ends), when the transposed product reads another matrix, when the loop is not one rank-1
loop over exactly X's rows (a body that broadcasts across rows, reduces along anything but
them, or is not one loop nest), or for dtypes other than float32/float64. The node keeps
the fused outputs other readers need (`emit`; `outs[j]` too when it has another reader) and
produces G last, reusing the Values of the nodes it replaces, so their readers are
unchanged. Pure: a new graph, or the same one when nothing matches.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from compiler.codegen.loops import REDUCE_OPS, body_domain, fits_loop
from compiler.ir.graph import Graph, Node, Value

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@dataclasses.dataclass(frozen=True)
class _Match:
    fused: int  # node indices in the graph
    matvec: int
    gradient: int
    drop: tuple[int, ...]  # the reshapes and the transpose that only fed the pattern
    node: Node  # the rowfused node that takes the fused node's place


def _row_domain(body: Graph) -> int | None:
    """n when `body` is one loop over a rank-1 domain [n] (sums/max/min over it allowed)."""
    if not fits_loop(body):
        return None
    dom = body_domain(body)
    if dom is None or len(dom) != 1:
        return None
    n = dom[0]
    reds = {m.out for m in body.nodes if m.op in REDUCE_OPS}
    for m in body.nodes:
        if m.op in REDUCE_OPS and tuple(m.attrs["axis"]) != (0,):
            return None
    for v in body.outputs:
        if v not in reds and v.shape != (n,):
            return None  # a per-row loop writes row-shaped outputs (or accumulates)
    return n


class _Users:
    """Who reads each value (node indices), and the graph's outputs."""

    def __init__(self, graph: Graph) -> None:
        self.readers: dict[Value, list[int]] = {}
        self.producer: dict[Value, int] = {}
        for j, n in enumerate(graph.nodes):
            for u in dict.fromkeys(n.inputs):
                self.readers.setdefault(u, []).append(j)
            for v in n.outputs:
                self.producer[v] = j
        self.escapes = set(graph.outputs)

    def only(self, v: Value, j: int) -> bool:
        """`v` is read by node j alone and is not a graph output."""
        return v not in self.escapes and self.readers.get(v, []) == [j]


def _matvec(graph: Graph, u: _Users, fi: int, k: int, n: int) -> tuple[int, int | None] | None:
    """(matmul index, reshape index or None) when the fused node's input k is `X @ W`."""
    nodes = graph.nodes
    z = nodes[fi].inputs[k]
    if z.shape != (n,) or z.dtype not in _FLOATS or not u.only(z, fi):
        return None
    if nodes[fi].inputs.count(z) != 1:
        return None
    p = u.producer.get(z)
    if p is None:
        return None
    reshape = None
    if nodes[p].op == "reshape":
        reshape, m = p, nodes[p].inputs[0]
        if m.shape != (n, 1) or not u.only(m, p):
            return None
        p = u.producer.get(m)
        if p is None:
            return None
    mm = nodes[p]
    if mm.op != "matmul":
        return None
    x, w = mm.inputs
    if x.ndim != 2 or x.shape[0] != n or x.dtype != z.dtype or w.dtype != z.dtype:
        return None
    want = (x.shape[1], 1) if reshape is not None else (x.shape[1],)
    return (p, reshape) if w.shape == want else None


def _gradient(graph: Graph, u: _Users, o: Value, x: Value) -> tuple[int, list[int]] | None:
    """(matmul index, [reshape index]) of `transpose(x) @ reshape(o, (n, 1))` (or `@ o`)."""
    nodes = graph.nodes
    n, d = x.shape
    for j in u.readers.get(o, []):
        cand = [(j, o, None)]
        if nodes[j].op == "reshape" and nodes[j].out.shape == (n, 1):
            cand = [(g, nodes[j].out, j) for g in u.readers.get(nodes[j].out, [])]
        for g, rhs, reshape in cand:
            mm = nodes[g]
            if mm.op != "matmul" or mm.inputs[1] is not rhs or mm.inputs[0] is rhs:
                continue
            t = u.producer.get(mm.inputs[0])
            if t is None or nodes[t].op != "transpose" or nodes[t].inputs[0] is not x:
                continue
            if tuple(nodes[t].attrs["axes"]) != (1, 0) or mm.out.dtype != x.dtype:
                continue
            if mm.out.shape != ((d, 1) if reshape is not None else (d,)):
                continue
            return g, [] if reshape is None else [reshape]
    return None


def _match(graph: Graph, u: _Users, fi: int) -> _Match | None:
    f = graph.nodes[fi]
    body = f.attrs["body"]
    n = _row_domain(body)
    if n is None:
        return None
    reds = {m.out for m in body.nodes if m.op in REDUCE_OPS}
    for k in range(len(f.inputs)):
        mv = _matvec(graph, u, fi, k, n)
        if mv is None:
            continue
        p, zr = mv
        x, w = graph.nodes[p].inputs
        for j, bo in enumerate(body.outputs):
            if bo in reds or bo in body.inputs or body.outputs.count(bo) > 1:
                continue
            got = _gradient(graph, u, f.outputs[j], x)
            if got is None:
                continue
            g, reshapes = got
            return _build(graph, u, fi, k, j, p, zr, g, reshapes)
    return None


def _build(
    graph: Graph,
    u: _Users,
    fi: int,
    k: int,
    j: int,
    p: int,
    zr: int | None,
    g: int,
    reshapes: list[int],
) -> _Match:
    """The rowfused node for fused node `fi` (z its input k, r its output j), matvec `p`
    (through reshape `zr`), transposed matvec `g` (through `reshapes`)."""
    nodes = graph.nodes
    f, gm = nodes[fi], nodes[g]
    x, w = nodes[p].inputs
    drop = [p, g] + ([zr] if zr is not None else [])
    # the row cotangent's reshape and the transpose go when nothing else reads them
    for j2 in [*reshapes, u.producer[gm.inputs[0]]]:
        if all(r in drop for v in nodes[j2].outputs for r in u.readers.get(v, [])):
            if not any(v in u.escapes for v in nodes[j2].outputs):
                drop.append(j2)
    o = f.outputs[j]
    keep_o = o in u.escapes or any(r not in drop for r in u.readers.get(o, []))
    emit = tuple(i for i in range(len(f.outputs)) if i != j or keep_o)
    attrs = {
        "body": f.attrs["body"],
        "z": k,
        "r": j,
        "emit": emit,
        "gshape": tuple(gm.out.shape),
    }
    ins = (x, w, *(v for i, v in enumerate(f.inputs) if i != k))
    outs = (*(f.outputs[i] for i in emit), gm.out)
    node = Node("rowfused", ins, attrs, outs, f.loc, dict(f.tags))
    return _Match(fi, p, g, tuple(d for d in drop if d not in (p, g)), node)


def row_fuse(graph: Graph) -> Graph:
    """Replace each matvec / row loop / transposed matvec triple by `rowfused` (module doc)."""
    if not any(n.op == "fused" for n in graph.nodes):
        return graph
    u = _Users(graph)
    matches: list[_Match] = []
    used: set[int] = set()
    for fi, f in enumerate(graph.nodes):
        if f.op != "fused":
            continue
        m = _match(graph, u, fi)
        if m is None:
            continue
        idx = {m.fused, m.matvec, m.gradient, *m.drop}
        if idx & used:
            continue  # two loops claiming one product: keep the first
        used |= idx
        matches.append(m)
    if not matches:
        return graph
    replace = {m.fused: m.node for m in matches}
    gone = {i for m in matches for i in (m.matvec, m.gradient, *m.drop)}
    nodes = tuple(replace.get(i, n) for i, n in enumerate(graph.nodes) if i not in gone)
    return dataclasses.replace(graph, nodes=nodes)
