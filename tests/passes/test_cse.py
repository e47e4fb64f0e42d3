"""Common-subexpression elimination."""

from __future__ import annotations

import numpy as np

from compiler import jit, trace
from compiler.ir import Builder, TensorType, verify
from compiler.passes.cse import cse
from compiler.passes.dce import dce
from tests.passes.cases import assert_same_outputs

F64 = np.dtype("float64")
T = TensorType((2, 3), F64)


def _ops(g):
    return [n.op for n in g.nodes]


def test_cse_merges_identical_broadcasts():
    g = trace(
        lambda x, b: np.broadcast_to(b, (2, 3)) * x + np.broadcast_to(b, (2, 3)),
        np.ones((2, 3)),
        np.ones(3),
    )
    out = verify(cse(g))
    assert _ops(out).count("broadcast_to") == 1
    assert_same_outputs(g, out, [np.ones((2, 3)), np.arange(3.0)])


def test_cse_merges_chains_in_one_sweep():
    g = trace(lambda x: np.tanh(np.exp(x)) + np.tanh(np.exp(x)), np.ones(3))
    out = cse(g)
    assert _ops(out) == ["exp", "tanh", "add"]
    assert cse(out) is out


def test_cse_merges_commutative_operands_only():
    g = trace(lambda x, y: (x + y) * (y + x) - (x - y) + (y - x), np.ones(3), np.ones(3))
    out = cse(g)
    assert _ops(out).count("add") == 2  # x + y merged with y + x; the outer add remains
    assert _ops(out).count("subtract") == 3


def test_cse_compares_consts_by_content_and_floats_by_bits():
    b = Builder()
    x = b.add_input(T)
    c1, c2, c3 = (b.const(np.array([1.0, 2.0, 3.0])) for _ in range(3))
    z = b.add("full", [], {"shape": (2, 3), "dtype": F64, "fill": 0.0})
    nz = b.add("full", [], {"shape": (2, 3), "dtype": F64, "fill": -0.0})
    d = b.const(np.array([1.0, 2.0, 4.0]))
    outs = [b.add("add", [x, v]) for v in (c1, c2, c3, z, nz, d)]
    out = verify(cse(b.build(outs)))
    assert _ops(out).count("const") == 2
    assert _ops(out).count("full") == 2  # 0.0 and -0.0 differ
    assert _ops(out).count("add") == 4


def test_cse_keeps_different_attributes_apart():
    g = trace(
        lambda x: np.sum(x, axis=0) + np.sum(x, axis=1)[:1] + np.sum(x, axis=0), np.ones((3, 3))
    )
    out = cse(g)
    assert _ops(out).count("sum") == 2


def test_cse_merges_fused_nodes_with_equal_bodies():
    def body():
        bb = Builder()
        y = bb.add_input(T)
        return bb.build([bb.add("tanh", [y])])

    b = Builder()
    x = b.add_input(T)
    (f1,) = b.add_node("fused", [x], {"body": body()}, [T])
    (f2,) = b.add_node("fused", [x], {"body": body()}, [T])
    out = verify(dce(cse(b.build([b.add("add", [f1, f2])]))))
    assert _ops(out) == ["fused", "add"]


def test_cse_returns_same_object_without_duplicates():
    g = trace(lambda x: np.tanh(x) * x, np.ones(3))
    assert cse(g) is g


def test_cse_keeps_maximum_and_minimum_operand_order():
    # NumPy's maximum(0.0, -0.0) is -0.0 but maximum(-0.0, 0.0) is 0.0: swapping operands
    # changes the sign of a zero result, so cse must not merge the two orders.
    def f(x, y):
        return np.maximum(x, y), np.maximum(y, x), np.minimum(x, y), np.minimum(y, x)

    x, y = np.array([0.0, -0.0, 1.0]), np.array([-0.0, 0.0, 1.0])
    g = trace(f, x, y)
    out = cse(g)
    assert _ops(out).count("maximum") == 2 and _ops(out).count("minimum") == 2
    got = jit(f, backend="interpret")(x, y)
    for a, b in zip(got, f(x, y)):
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
