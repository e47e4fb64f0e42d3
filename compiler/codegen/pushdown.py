"""Recompute a fused group's cheap output inside the loops that read it, instead of storing it.

Fusion is greedy in graph order, so an elementwise value joins the group of its producer even
when its only readers are later groups: logreg's forward group computes `z = x @ w + b`,
`maximum(z, 0)` and `-abs(z)` together, and `maximum(z, 0)` is stored until the loss group
reads it, next to `z`, which that group reads anyway. `push_down(graph)` moves such an output
into its readers: when every reader of a fused node's output is a fused loop that already
reads everything the output is computed from (the group's inputs or other outputs), and the
computation is a few cheap arithmetic ops, each reader computes it itself and the producer
stops writing it. One buffer less and one write and read less per element, for a few
arithmetic ops per element (loads the reader does anyway).
"""

from __future__ import annotations

import dataclasses

from compiler.codegen.loops import body_domain, is_elementwise
from compiler.ir.graph import Graph, Node, Value
from compiler.primitives import CONST_OPS, OPS
from compiler.primitives.registry import Cost

MAX_OPS = 4  # arithmetic ops recomputed per pushed output
_FREE = CONST_OPS | {"broadcast_to"}


def _cheap(n: Node) -> bool:
    return (
        is_elementwise(n.op) and OPS[n.op].cost in (Cost.FREE, Cost.CHEAP) and len(n.outputs) == 1
    )


def _cone(body: Graph, k: int) -> tuple[list[Node], set[Value]] | None:
    """Body nodes computing output k from body inputs and the other outputs, and those leaves."""
    target = body.outputs[k]
    stops = set(body.inputs) | {v for j, v in enumerate(body.outputs) if j != k and v != target}
    prod = {v: n for n in body.nodes for v in n.outputs}
    need: list[Node] = []
    leaves: set[Value] = set()
    seen: set[Value] = set()
    stack = [target]
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in stops and v is not target:
            leaves.add(v)
            continue
        n = prod.get(v)
        if n is None:  # a body input that is this output itself
            return None
        if n.op not in _FREE and not _cheap(n):
            return None
        need.append(n)
        stack.extend(n.inputs)
    if sum(n.op not in _FREE for n in need) > MAX_OPS:
        return None
    order = {id(n): i for i, n in enumerate(body.nodes)}
    need.sort(key=lambda n: order[id(n)])
    return need, leaves


def _drop_output(node: Node, k: int) -> Node:
    """`node` (fused) without output k, its body pruned of what only that output needed."""
    body = node.attrs["body"]
    outs = [v for j, v in enumerate(body.outputs) if j != k]
    live = set(outs)
    keep = []
    for n in reversed(body.nodes):
        if any(v in live for v in n.outputs):
            keep.append(n)
            live.update(n.inputs)
    new_body = Graph(body.inputs, tuple(reversed(keep)), tuple(outs), body.meta)
    attrs = {**node.attrs, "body": new_body}
    outputs = tuple(v for j, v in enumerate(node.outputs) if j != k)
    return dataclasses.replace(node, attrs=attrs, outputs=outputs)


def _inline_into(reader: Node, o: Value, cone: list[Node], outer_of: dict[Value, Value]) -> Node:
    """`reader` (fused) computing `o` from its own inputs with a copy of `cone`."""
    body = reader.attrs["body"]
    inner_of = {}  # outer value -> reader body input
    for bv, ov in zip(body.inputs, reader.inputs):
        inner_of.setdefault(ov, bv)
    env: dict[Value, Value] = {}
    clones = []
    for n in cone:
        ins = []
        for u in n.inputs:
            if u in env:
                ins.append(env[u])
            else:
                ins.append(inner_of[outer_of[u]])
        outs = tuple(Value(v.type) for v in n.outputs)
        clones.append(Node(n.op, tuple(ins), n.attrs, outs, n.loc))
        env.update(zip(n.outputs, outs))
    result = env[cone[-1].out] if cone else None
    drop = {bv for bv, ov in zip(body.inputs, reader.inputs) if ov is o}
    sub = dict.fromkeys(drop, result)
    nodes = list(clones)
    for n in body.nodes:
        if any(u in sub for u in n.inputs):
            n = dataclasses.replace(n, inputs=tuple(sub.get(u, u) for u in n.inputs))
        nodes.append(n)
    keep_in = [(bv, ov) for bv, ov in zip(body.inputs, reader.inputs) if bv not in drop]
    outputs = tuple(sub.get(v, v) for v in body.outputs)
    new_body = Graph(tuple(bv for bv, _ in keep_in), tuple(nodes), outputs, body.meta)
    attrs = {**reader.attrs, "body": new_body}
    return dataclasses.replace(reader, inputs=tuple(ov for _, ov in keep_in), attrs=attrs)


def push_down(graph: Graph) -> Graph:
    """Move cheap fused-group outputs into the fused loops that read them (module doc)."""
    nodes = list(graph.nodes)
    escapes = set(graph.outputs)
    readers: dict[Value, list[int]] = {}  # stays valid: a rewrite only drops the pushed value
    for j, n in enumerate(nodes):
        for u in dict.fromkeys(n.inputs):
            readers.setdefault(u, []).append(j)
    changed = False
    for i in range(len(nodes)):
        k = 0
        while nodes[i].op == "fused" and k < len(nodes[i].outputs):
            node = nodes[i]
            if len(node.outputs) < 2 or not _try(nodes, i, k, escapes, readers):
                k += 1
            else:
                changed = True  # output k is gone: the next one now has index k
    if not changed:
        return graph
    return dataclasses.replace(graph, nodes=tuple(nodes))


def _try(
    nodes: list[Node], i: int, k: int, escapes: set[Value], reads: dict[Value, list[int]]
) -> bool:
    node = nodes[i]
    o = node.outputs[k]
    body = node.attrs["body"]
    if o in escapes or body.outputs.count(body.outputs[k]) > 1:
        return False
    readers = reads.get(o, [])
    if not readers or any(nodes[j].op != "fused" for j in readers):
        return False
    got = _cone(body, k)
    if got is None:
        return False
    cone, leaves = got
    outer_of = dict(zip(body.inputs, node.inputs))
    outer_of.update(zip(body.outputs, node.outputs))
    need = {outer_of[v] for v in leaves}
    for j in readers:
        r = nodes[j]
        if not need <= set(r.inputs):
            return False  # it would keep a value live longer (or read a new one)
        # recomputed at the reader's loop index: the value has the reader's domain shape
        if o.shape != _domain(r.attrs["body"]):
            return False
    for j in readers:
        nodes[j] = _inline_into(nodes[j], o, cone, outer_of)
    nodes[i] = _drop_output(node, k)
    return True


def _domain(body: Graph) -> tuple[int, ...] | None:
    return body_domain(body)
