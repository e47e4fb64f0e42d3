"""Dead-code elimination."""

from __future__ import annotations

import numpy as np

from compiler import trace
from compiler.ir import Builder, TensorType, verify
from compiler.passes.dce import dce

T = TensorType((3,), np.dtype("float64"))


def test_dce_drops_nodes_that_reach_no_output():
    def f(x, y):
        np.exp(y)  # dead
        t = np.tanh(x)
        return t * 2.0

    g = trace(f, np.ones(3), np.ones(3))
    out = verify(dce(g))
    assert [n.op for n in out.nodes] == ["tanh", "const", "multiply"]
    assert len(out.inputs) == 2  # unused inputs stay: they are the calling convention


def test_dce_returns_same_object_when_everything_is_live():
    g = trace(lambda x, y: np.tanh(x), np.ones(3), np.ones(3))
    assert dce(g) is g


def test_dce_keeps_a_multi_output_node_with_one_live_output():
    bb = Builder()
    y = bb.add_input(T)
    body = bb.build([bb.add("tanh", [y]), bb.add("exp", [y])])
    b = Builder()
    x = b.add_input(T)
    f1, f2 = b.add_node("fused", [x], {"body": body}, [T, T])
    b.add("negative", [f2])  # dead
    out = verify(dce(b.build([f1])))
    assert [n.op for n in out.nodes] == ["fused"]


def test_dce_handles_outputs_that_are_inputs():
    b = Builder()
    x = b.add_input(T)
    b.add("exp", [x])
    out = dce(b.build([x, x]))
    assert out.nodes == () and out.outputs == (x, x)
