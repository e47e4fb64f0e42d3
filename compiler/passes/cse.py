"""Common-subexpression elimination: one node per (op, inputs, attrs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir.graph import Builder, Const, Graph, Node, Value
from compiler.passes.manager import register_pass
from compiler.passes.rewrite import copy_node
from compiler.primitives import OPS

# Ops whose operands may be swapped without changing a single bit of the result (IEEE
# addition and multiplication are commutative): the records' `commutative` flag. maximum and
# minimum are not: NumPy's maximum(0.0, -0.0) is -0.0 but maximum(-0.0, 0.0) is 0.0.
COMMUTATIVE = frozenset(name for name, d in OPS.items() if d.commutative)


def attr_key(v: Any) -> Any:
    """A hashable key equal exactly when two attribute values mean the same thing.

    Floats are keyed by their bits (`0.0` and `-0.0` differ; NaN equals itself), consts
    by content, sub-graphs by fingerprint, tuples elementwise.
    """
    if isinstance(v, Const):
        return ("const", v)
    if isinstance(v, Graph):
        return ("graph", v.fingerprint())
    if isinstance(v, (float, np.floating)):
        return ("float", float(v).hex())
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, tuple(attr_key(x) for x in v))
    if isinstance(v, np.dtype):
        return ("dtype", v.str)
    if isinstance(v, slice):
        return ("slice", v.start, v.stop, v.step)
    return (type(v).__name__, v)


def node_key(node: Node, inputs: tuple[Value, ...], order: dict[Value, int]) -> tuple:
    """The CSE key of `node` applied to `inputs` (positions in `order` sort commutative ops)."""
    if node.op in COMMUTATIVE:
        inputs = tuple(sorted(inputs, key=order.__getitem__))
    attrs = tuple((k, attr_key(a)) for k, a in node.attr_items())
    return (node.op, inputs, attrs)


@register_pass("cse")
def cse(graph: Graph) -> Graph:
    """Merge nodes with the same op, the same inputs and equal attributes."""
    # One sweep in SSA order: a node's inputs are already canonical when it is keyed, so
    # chains of duplicates merge in one run (and a second run finds nothing).
    b = Builder()
    env: dict[Value, Value] = {v: b.add_input(v.type) for v in graph.inputs}
    order: dict[Value, int] = {v: i for i, v in enumerate(env.values())}
    seen: dict[tuple, tuple[Value, ...]] = {}
    merged = 0
    for n in graph.nodes:
        inputs = tuple(env[v] for v in n.inputs)
        key = node_key(n, inputs, order)
        outs = seen.get(key)
        if outs is None:
            outs = copy_node(b, n, inputs)
            seen[key] = outs
            for v in outs:
                order[v] = len(order)
        else:
            merged += 1
        env.update(zip(n.outputs, outs))
    if not merged:
        return graph
    return b.build([env[v] for v in graph.outputs], meta=graph.meta)
