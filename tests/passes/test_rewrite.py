"""The rule engine: one sweep, rewritten operands, recursive emits, opaque fused nodes."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import trace
from compiler.interpret import run_graph
from compiler.ir import Builder, Graph, Node, TensorType, Value, verify
from compiler.passes.dce import dce
from compiler.passes.rewrite import Rewriter, add_rule, copy_node, merge_tables, rewrite
from compiler.passes.simplify import RULES, simplify

F64 = np.dtype("float64")
T3 = TensorType((3,), F64)


def _fused_graph() -> Graph:
    """x -> fused{ y * 1 } -> negative(negative(.))"""
    bb = Builder()
    y = bb.add_input(T3)
    body = bb.build([bb.add("multiply", [y, bb.const(1.0)])])
    b = Builder()
    x = b.add_input(T3)
    (f,) = b.add_node("fused", [x], {"body": body}, [T3])
    out = b.add("negative", [b.add("negative", [f])])
    return b.build([out])


def test_rewrite_returns_same_object_when_no_rule_fires():
    g = trace(lambda x: np.tanh(x) + x, np.ones(3))
    assert rewrite(g, RULES) is g
    assert rewrite(g, {}) is g


def test_rewrite_rules_see_rewritten_operands():
    def neg5(x):
        for _ in range(5):
            x = -x
        return x

    g = trace(neg5, np.ones(3))
    out = simplify(g)
    assert dce(out).nodes[-1].inputs == out.inputs  # -(-(-(-(-x)))) -> -x
    assert [n.op for n in dce(out).nodes] == ["negative"]


def test_rewrite_emit_applies_rules_to_new_nodes():
    table: dict = {}

    @add_rule(table, "negative")
    def neg_as_mul(node: Node, rw: Rewriter) -> Value | None:
        """-x -> x * 1 (a test rule whose output another rule simplifies)"""
        return rw.emit("multiply", [node.inputs[0], rw.full(T3, 1.0)])

    rules = merge_tables(
        table, {"multiply": [r for r in RULES["multiply"] if r.__name__ == "mul_one"]}
    )
    out = rewrite(trace(lambda x: -x, np.ones(3)), rules)
    assert out.outputs[0] is out.inputs[0]


def test_rewrite_rejects_a_rule_that_changes_the_type():
    @add_rule(table := {}, "tanh")
    def bad(node: Node, rw: Rewriter) -> Value | None:
        """tanh(x) -> sum(x) (wrong on purpose)"""
        return rw.emit("sum", [node.inputs[0]], axis=(0,), keepdims=False)

    with pytest.raises(AssertionError, match="bad replaced tanh"):
        rewrite(trace(np.tanh, np.ones(3)), table)


def test_rewrite_stops_rules_that_undo_each_other():
    @add_rule(table := {}, "negative")
    def again(node: Node, rw: Rewriter) -> Value | None:
        """-x -> -x (re-emitted forever without the depth limit)"""
        return rw.emit("negative", [node.inputs[0]])

    g = trace(lambda x: -x, np.ones(3))
    out = verify(rewrite(g, table))
    x = np.arange(3.0)
    np.testing.assert_array_equal(run_graph(out, [x])[0], -x)


def test_rewrite_leaves_fused_nodes_alone():
    g = _fused_graph()
    out = dce(verify(simplify(g)))
    assert [n.op for n in out.nodes] == ["fused"]
    assert out.nodes[0].attrs["body"] is g.nodes[0].attrs["body"]
    assert out.outputs[0] is out.nodes[0].outputs[0]


def test_rewrite_keeps_locations_and_meta():
    g = trace(lambda x: x * -1.0, np.ones(3))
    out = simplify(g)
    (neg,) = [n for n in out.nodes if n.op == "negative"]
    assert neg.loc == g.nodes[-1].loc and neg.loc is not None
    assert out.meta == g.meta


def test_copy_node_retypes_ops_and_keeps_fused_types():
    g = _fused_graph()
    b = Builder()
    x = b.add_input(T3)
    (f,) = copy_node(b, g.nodes[0], [x])
    (n,) = copy_node(b, g.nodes[1], [f])
    assert f.type == T3 and n.type == T3


def test_rewriter_uniform_ignores_nan_and_reads_consts():
    b = Builder()
    nan = b.add("full", [], {"shape": (3,), "dtype": F64, "fill": float("nan")})
    c = b.const(np.array([2.0, 2.0]))
    d = b.const(np.array([1.0, 2.0]))
    g = b.build([nan, c, d])
    rw = Rewriter({})
    rw.run(g)
    vals = [rw.b.nodes[i].out for i in range(3)]
    assert rw.uniform(vals[0]) is None
    assert rw.uniform(vals[1]) == 2.0
    assert rw.uniform(vals[2]) is None
