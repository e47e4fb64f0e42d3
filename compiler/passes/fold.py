"""Constant folding with the reference implementations (`OPS[op].impl`)."""

from __future__ import annotations

import numpy as np

from compiler.ir.graph import Graph, Node, Value
from compiler.passes.manager import register_pass
from compiler.passes.rewrite import Rewriter, rewrite
from compiler.primitives import CONST_OPS, OPS, Kind

# Largest non-uniform result (in elements) kept as a `const`: a constant is stored in the
# graph, hashed into the cache key and loaded by generated code, so a 1e5-element (800 kB
# in float64) ceiling keeps folding from bloating graphs, dumps and cache files. Uniform
# results of any size become a `full`, which stores no data. Operands are never
# materialised beyond this size either.
MAX_FOLD_ELEMENTS = 100_000


def fold_node(node: Node, rw: Rewriter) -> Value | None:
    """op(c1, c2, ...) -> const(impl(c1, c2, ...)) for constant operands"""
    if not node.inputs:
        return None
    producers = [rw.producer(v) for v in node.inputs]
    if any(p is None or p.op not in CONST_OPS for p in producers):
        return None
    fills = [rw.uniform(v) for v in node.inputs]
    uniform = OPS[node.op].kind is Kind.ELEMENTWISE and all(f is not None for f in fills)
    if uniform:
        args = fills  # elementwise on fills: one 0-d evaluation is exact, at any size
    elif max(v.type.size for v in (*node.inputs, node.out)) <= MAX_FOLD_ELEMENTS:
        args = [OPS[p.op].impl(**p.attrs) for p in producers]
    else:
        return None
    with np.errstate(all="ignore"):
        out = np.asarray(OPS[node.op].impl(*args, **node.attrs)).astype(node.out.dtype)
    return rw.full(node.out.type, out) if uniform else rw.constant(out)


# loops are never folded: running a loop at compile time could cost as much as the program
_UNFOLDED = (Kind.CONST, Kind.LOOP, Kind.FUSED)
RULES = {name: [fold_node] for name, op in OPS.items() if op.kind not in _UNFOLDED}


@register_pass("fold")
def fold(graph: Graph) -> Graph:
    """Replace nodes whose operands are all constants by their value (see MAX_FOLD_ELEMENTS)."""
    consts = {n.out for n in graph.nodes if n.op in CONST_OPS}
    if not any(
        n.inputs and n.op in RULES and all(v in consts for v in n.inputs) for n in graph.nodes
    ):
        return graph  # nothing to fold: skip the rebuild (the common case after simplify)
    return rewrite(graph, RULES)
