"""Algebraic simplification: the local rules of `arith_rules` and `shape_rules`."""

from __future__ import annotations

from compiler.ir.graph import Graph
from compiler.passes import arith_rules, shape_rules
from compiler.passes.manager import register_pass
from compiler.passes.rewrite import merge_tables, rewrite

# Per op: arithmetic identities first, then view/reduction rules, then broadcast absorption
# (the last rule of every elementwise op), so the cheapest complete rewrite wins.
RULES = merge_tables(arith_rules.RULES, shape_rules.RULES)


@register_pass("simplify")
def simplify(graph: Graph) -> Graph:
    """Apply the algebraic rules in one forward sweep (dead nodes are left for dce)."""
    return rewrite(graph, RULES)
