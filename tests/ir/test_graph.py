"""The IR data model: types, Builder, verify, printer/fingerprint, JSON, networkx."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from compiler import interpret, trace
from compiler.interpret import run_graph
from compiler.ir import (
    Builder,
    Const,
    Graph,
    Node,
    TensorType,
    Value,
    VerifyError,
    format_graph,
    parse_type,
    verify,
)
from compiler.ir.graph import ShapeError, copy_into
from compiler.ir.nx import to_dot, to_networkx

F64 = np.dtype("float64")


def _mlp(x, w, b):
    h = np.tanh(x @ w + b)
    return np.sum(h[:, ::2] ** 2) + h.max()


X = np.random.default_rng(0).normal(size=(3, 4))
W = np.random.default_rng(1).normal(size=(4, 5))
Bv = np.random.default_rng(2).normal(size=(5,))


# -- types ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,shape,dtype",
    [("f64[3,4]", (3, 4), "float64"), ("f32[]", (), "float32"), ("i64[7]", (7,), "int64")],
)
def test_types_parse_and_print_round_trip(text, shape, dtype):
    t = parse_type(text)
    assert t == TensorType(shape, np.dtype(dtype))
    assert str(t) == text
    assert t.size == int(np.prod(shape)) and t.ndim == len(shape)
    assert t.nbytes == t.size * np.dtype(dtype).itemsize


@pytest.mark.parametrize("bad", ["f64", "f64[3,x]", "nonsense[3]", "f64(3)"])
def test_types_parse_rejects_bad_text(bad):
    with pytest.raises(ValueError, match="cannot parse type"):
        parse_type(bad)


def test_types_is_float():
    assert TensorType((2,), F64).is_float and TensorType((), np.float32).is_float
    assert not TensorType((2,), np.int64).is_float and not TensorType((2,), np.bool_).is_float


# -- Builder and Const ----------------------------------------------------------------------------


def test_builder_types_nodes_by_shape_rule():
    b = Builder()
    x = b.add_input(TensorType((3, 1), F64))
    y = b.add_input(TensorType((4,), F64))
    z = b.add("add", [x, y])
    assert z.type == TensorType((3, 4), F64)
    s = b.add("sum", [z], {"axis": (1,), "keepdims": False})
    g = b.build([s])
    assert s.type == TensorType((3,), F64)
    np.testing.assert_allclose(run_graph(g, [np.ones((3, 1)), np.arange(4.0)])[0], np.full(3, 10.0))


def test_builder_shape_error_names_op_types_and_location():
    b = Builder()
    x = b.add_input(TensorType((3,), F64))
    y = b.add_input(TensorType((4,), F64))
    with pytest.raises(
        ShapeError, match=r"multiply: cannot broadcast \(f64\[3\] with f64\[4\]\) \(at f.py:7\)"
    ):
        b.add("multiply", [x, y], loc="f.py:7")


def test_builder_unknown_op_is_a_key_error():
    with pytest.raises(KeyError, match="frobnicate"):
        Builder().add("frobnicate", [])


def test_const_is_private_read_only_and_compared_by_content():
    a = np.arange(6.0).reshape(2, 3)
    c = Const(a)
    a[0, 0] = 100.0
    assert c.array[0, 0] == 0.0  # a copy
    with pytest.raises(ValueError):
        c.array[0, 0] = 1.0
    assert Const(np.arange(6.0).reshape(2, 3)) == c
    assert hash(Const(np.arange(6.0).reshape(2, 3))) == hash(c)
    assert Const(np.arange(6.0)) != c  # same data, different shape
    assert Const(np.arange(6, dtype=np.int64).reshape(2, 3)) != c


# -- verify ---------------------------------------------------------------------------------------


def test_verify_accepts_traced_graphs():
    g = trace(_mlp, X, W, Bv)
    assert verify(g) is g


def test_verify_rejects_use_before_definition():
    x, y = Value(TensorType((2,), F64)), Value(TensorType((2,), F64))
    n = Node("negative", (y,), {}, (Value(TensorType((2,), F64)),))
    with pytest.raises(VerifyError, match="before it is defined"):
        verify(Graph((x,), (n,), (n.out,)))


def test_verify_rejects_wrong_output_type():
    x = Value(TensorType((2,), F64))
    n = Node("negative", (x,), {}, (Value(TensorType((3,), F64)),))
    with pytest.raises(VerifyError, match=r"typed f64\[3\], shape rule says f64\[2\]"):
        verify(Graph((x,), (n,), (n.out,)))


def test_verify_rejects_redefinition_unknown_op_and_undefined_output():
    x = Value(TensorType((2,), F64))
    n = Node("negative", (x,), {}, (x,))
    with pytest.raises(VerifyError, match="not SSA"):
        verify(Graph((x,), (n,), (x,)))
    m = Node("mystery", (x,), {}, (Value(TensorType((2,), F64)),))
    with pytest.raises(VerifyError, match="unknown op"):
        verify(Graph((x,), (m,), (m.out,)))
    with pytest.raises(VerifyError, match="never defined"):
        verify(Graph((x,), (), (Value(TensorType((2,), F64)),)))
    with pytest.raises(VerifyError, match="listed twice"):
        verify(Graph((x, x), (), (x,)))


def test_verify_rejects_shape_rule_failure():
    x = Value(TensorType((2,), F64))
    y = Value(TensorType((3,), F64))
    n = Node("add", (x, y), {}, (Value(TensorType((3,), F64)),))
    with pytest.raises(VerifyError, match="cannot broadcast"):
        verify(Graph((x, y), (n,), (n.out,)))


# -- printer and fingerprint ----------------------------------------------------------------------


def test_printer_numbers_values_by_position():
    g = trace(lambda a: np.exp(a) + 1.0, X)
    text = format_graph(g)
    assert text.splitlines()[0] == "graph(%0:f64[3,4]) {"
    assert "%1:f64[3,4] = exp %0" in text
    assert text.rstrip().endswith("}")
    assert str(g) == text


def test_fingerprint_is_stable_across_traces_and_sensitive_to_changes():
    a = trace(_mlp, X, W, Bv).fingerprint()
    assert a == trace(_mlp, X, W, Bv).fingerprint()
    assert a != trace(_mlp, X[:2], W, Bv).fingerprint()  # a different shape
    assert a != trace(lambda x, w, b: _mlp(x, w, b) * 2.0, X, W, Bv).fingerprint()


def test_printer_shows_locations_on_request():
    g = trace(lambda a: a * 2.0, X)
    assert __file__ in format_graph(g, locs=True)
    assert __file__ not in format_graph(g)


# -- JSON and networkx ----------------------------------------------------------------------------


def test_json_round_trip_preserves_graph_and_results():
    def f(a, w):
        z = np.zeros((3, 5))
        z[::2] = (a @ w)[::2]
        idx = np.array([0, 2, 2])
        return np.sum(z[idx] * np.arange(5.0)) + a.astype(np.float32).sum() * 0.5

    g = trace(f, X, W)
    data = json.loads(json.dumps(g.to_json()))
    g2 = verify(Graph.from_json(data))
    assert g2.fingerprint() == g.fingerprint()
    assert format_graph(g2) == format_graph(g)
    assert all(n2.out.type == n.out.type for n, n2 in zip(g.nodes, g2.nodes))
    np.testing.assert_allclose(run_graph(g2, [X, W])[0], interpret(g, X, W), rtol=1e-12)


def test_json_round_trip_keeps_zero_d_constants_zero_d():
    # regression: np.ascontiguousarray turns a 0-d array into shape (1,)
    g = trace(lambda a: a * 2.5 + np.float64(1.0), X)
    g2 = verify(Graph.from_json(json.loads(json.dumps(g.to_json()))))
    consts = [n.attrs["value"].array for n in g2.nodes if n.op == "const"]
    assert consts and all(c.shape == () for c in consts)
    assert str(g2) == str(g)


def test_networkx_view_is_a_dag_with_one_vertex_per_node_input_output():
    g = trace(_mlp, X, W, Bv)
    d = to_networkx(g)
    assert nx.is_directed_acyclic_graph(d)
    assert d.number_of_nodes() == len(g.nodes) + len(g.inputs) + len(g.outputs)
    ops = [d.nodes[i]["op"] for i in range(len(g.nodes))]
    assert ops == [n.op for n in g.nodes]
    assert g.to_networkx().number_of_edges() == d.number_of_edges()
    dot = to_dot(g)
    assert dot.startswith("digraph") and "tanh" in dot and "matmul" in dot


# -- queries and copy_into ------------------------------------------------------------------------


def test_live_values_and_keep_nodes_drop_dead_code():
    def f(a):
        _ = np.exp(a) * 3.0  # dead
        return np.sin(a)

    g = trace(f, X)
    live = g.live_values()
    dead = [n for n in g.nodes if not any(v in live for v in n.outputs)]
    assert {n.op for n in dead} >= {"exp", "multiply"}
    pruned = verify(g.keep_nodes(lambda n: n not in dead))
    assert [n.op for n in pruned.nodes] == ["sin"]
    np.testing.assert_allclose(run_graph(pruned, [X])[0], np.sin(X), rtol=1e-12)


def test_copy_into_inlines_a_graph():
    inner = trace(lambda a: np.tanh(a) * 2.0, X)
    b = Builder()
    x = b.add_input(TensorType(X.shape, F64))
    (y,) = copy_into(b, inner, [b.add("exp", [x])])
    g = verify(b.build([y]))
    np.testing.assert_allclose(run_graph(g, [X])[0], np.tanh(np.exp(X)) * 2.0, rtol=1e-12)


def test_producers_and_users():
    g = trace(lambda a: np.exp(a) * np.exp(a).sum(), X)
    prod = g.producers()
    users = g.users()
    for n in g.nodes:
        for v in n.outputs:
            assert prod[v] is n
        for v in n.inputs:
            assert n in users[v]
