"""The `loops` pass: merge a loop with its residual-storing twin, optimize bodies, drop dead ys.

- **merge.** A loop's VJP rule emits a forward loop with the same operands whose body is the
  primal body plus extra outputs (per-step residuals, the saved carries of a checkpointed
  scan, or the carry history of a while_loop). The primal loop's outputs are the twin's
  leading outputs, so the twin takes the primal's place and the forward runs once.
  Invariant: the twin reads exactly the primal's operands (all defined before the primal),
  so moving it up keeps SSA order.
- **bodies.** simplify, fold, cse and dce (and this pass, for nested loops) run inside every
  body; a body keeps its inputs and output types, so the node stays valid.
- **dead ys.** A scan output nobody reads is removed from the node and from its body, which
  DCE then shrinks (a forward-only use of a residual-storing scan stores nothing).
"""

from __future__ import annotations

from compiler.ir.graph import Graph, Node, Value
from compiler.passes.manager import register_pass, run_passes
from compiler.primitives.control import LOOP_OPS, scan_layout

BODY_PASSES = ("simplify", "fold", "cse", "dce", "loops")
_BODY_ATTRS = ("body", "cond")


def _trim(g: Graph, n_out: int) -> str:
    """Fingerprint of `g` restricted to its first n_out outputs, dead nodes dropped."""
    sub = Graph(g.inputs, g.nodes, g.outputs[:n_out])
    live = sub.live_values()
    return sub.keep_nodes(lambda n: any(v in live for v in n.outputs)).fingerprint()


def _same_except(a: Node, b: Node, keys: tuple[str, ...]) -> bool:
    if a.op != b.op or a.inputs != b.inputs:
        return False
    other = set(a.attrs) | set(b.attrs)
    return all(a.attrs.get(k) == b.attrs.get(k) for k in other - set(keys) - set(_BODY_ATTRS))


def _extends(a: Node, b: Node) -> int | None:
    """How many leading outputs of twin `b` are `a`'s outputs, or None if b is no twin."""
    if a.op == "scan":
        if a.attrs["save_every"] or not _same_except(a, b, ("save_every",)):
            return None
        body_a, body_b = a.attrs["body"], b.attrs["body"]
        n = len(body_a.outputs)
        if len(body_b.outputs) < n or _trim(body_b, n) != _trim(body_a, n):
            return None
        la = scan_layout(len(a.inputs), body_a, a.attrs["n_consts"], a.attrs["n_carry"], 0)
        return la.n_carry + la.n_ys
    if a.op == "while_loop":
        if a.attrs["record"] or not b.attrs["record"] or not _same_except(a, b, ("record",)):
            return None
        for k in _BODY_ATTRS:
            if a.attrs[k].fingerprint() != b.attrs[k].fingerprint():
                return None
        return len(a.outputs)
    return None


def _merge(graph: Graph) -> Graph:
    loops = [n for n in graph.nodes if n.op in LOOP_OPS]
    twin: dict[Node, Node] = {}
    taken: set[Node] = set()
    for i, a in enumerate(loops):
        for b in loops[i + 1 :]:
            if b in taken or a in taken or a in twin:
                continue
            k = _extends(a, b)
            if k is not None and k == len(a.outputs):
                twin[a] = b
                taken.add(b)
    if not twin:
        return graph
    subst: dict[Value, Value] = {}
    for a, b in twin.items():
        subst.update(zip(a.outputs, b.outputs))
    nodes: list[Node] = []
    for n in graph.nodes:
        if n in taken:
            continue
        n = twin.get(n, n)
        nodes.append(_rebind(n, subst))
    return Graph(
        graph.inputs, tuple(nodes), tuple(subst.get(v, v) for v in graph.outputs), graph.meta
    )


def _rebind(n: Node, subst: dict[Value, Value], attrs: dict | None = None) -> Node:
    if attrs is None and not any(v in subst for v in n.inputs):
        return n
    ins = tuple(subst.get(v, v) for v in n.inputs)
    return Node(n.op, ins, attrs if attrs is not None else n.attrs, n.outputs, n.loc)


def _bodies(graph: Graph) -> Graph:
    changed = False
    nodes = []
    for n in graph.nodes:
        if n.op in LOOP_OPS:
            attrs = dict(n.attrs)
            for k in _BODY_ATTRS:
                if k in attrs:
                    new = run_passes(attrs[k], BODY_PASSES)
                    changed |= new is not attrs[k]
                    attrs[k] = new
            n = Node(n.op, n.inputs, attrs, n.outputs, n.loc)
        nodes.append(n)
    return Graph(graph.inputs, tuple(nodes), graph.outputs, graph.meta) if changed else graph


def _dead_ys(graph: Graph) -> Graph:
    live = graph.live_values()  # read by a node that is itself dead (DCE comes later): unused
    used = {v for n in graph.nodes if any(o in live for o in n.outputs) for v in n.inputs}
    used |= set(graph.outputs)
    changed = False
    nodes = []
    for n in graph.nodes:
        if n.op == "scan":
            body = n.attrs["body"]
            lay = scan_layout(
                len(n.inputs), body, n.attrs["n_consts"], n.attrs["n_carry"], n.attrs["save_every"]
            )
            ys = n.outputs[lay.n_carry : lay.n_carry + lay.n_ys]
            dead = [j for j, v in enumerate(ys) if v not in used]
            if dead and len(dead) < len(n.outputs):
                keep = [j for j in range(lay.n_ys) if j not in dead]
                new_body = Graph(
                    body.inputs,
                    body.nodes,
                    tuple(body.outputs[: lay.n_carry])
                    + tuple(body.outputs[lay.n_carry + j] for j in keep),
                )
                outs = (
                    tuple(n.outputs[: lay.n_carry])
                    + tuple(ys[j] for j in keep)
                    + tuple(n.outputs[lay.n_carry + lay.n_ys :])
                )
                n = Node(n.op, n.inputs, {**n.attrs, "body": new_body}, outs, n.loc)
                changed = True
        nodes.append(n)
    if not changed:
        return graph
    # nodes that read a removed output were dead already (that is why it was removed)
    return Graph(graph.inputs, tuple(nodes), graph.outputs, graph.meta).keep_nodes(
        lambda n: any(v in live for v in n.outputs)
    )


@register_pass("loops")
def loops(graph: Graph) -> Graph:
    """Merge residual-storing twins, drop dead scan outputs, run passes inside bodies."""
    if not any(n.op in LOOP_OPS for n in graph.nodes):
        return graph
    return _bodies(_dead_ys(_merge(graph)))
