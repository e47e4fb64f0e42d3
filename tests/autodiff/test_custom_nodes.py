"""`expand_custom`: custom-rule calls become their bodies, also inside nodes' sub-graphs."""

from __future__ import annotations

import numpy as np

from compiler import stop_gradient, trace, verify
from compiler.autodiff.custom import expand_custom, has_custom
from compiler.interpret import run_graph
from compiler.ir.graph import Builder, Graph


def test_expand_custom_inlines_bodies_and_keeps_meaning():
    x = np.array([0.5, -1.0, 2.0])
    g = trace(lambda a: np.sin(stop_gradient(a * 2.0)) + a, x)
    assert has_custom(g)
    e = verify(expand_custom(g))
    assert not has_custom(e) and all(n.op != "custom" for n in e.nodes)
    np.testing.assert_allclose(run_graph(e, [x])[0], run_graph(g, [x])[0], rtol=0)
    plain = trace(lambda a: np.sin(a) * 2.0, x)
    assert expand_custom(plain) is plain  # nothing to do: the same object


def test_expand_custom_reaches_into_sub_graph_attributes():
    # a node that holds a graph (as a loop node holds its body) gets its body expanded too
    x = np.array([0.5, -1.0])
    body = trace(lambda a: stop_gradient(a) * 3.0, x)
    b = Builder()
    v = b.add_input(body.inputs[0].type)
    (out,) = b.add_node("fused", [v], {"body": body}, [body.outputs[0].type])
    outer = b.build([out])
    assert has_custom(outer)
    e = expand_custom(outer)
    (node,) = e.nodes
    assert isinstance(node.attrs["body"], Graph) and not has_custom(node.attrs["body"])
    np.testing.assert_allclose(run_graph(e, [x])[0], 3.0 * x)
