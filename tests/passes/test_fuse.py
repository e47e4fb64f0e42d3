"""The fuse pass: meaning kept, idempotent, acyclic, and the grouping the design asks for."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from compiler import trace
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType, verify
from compiler.passes import PASSES
from compiler.passes.fuse import fuse, fused_count
from compiler.pipeline import lower, lower_passes
from tests.codegen.graphs import deep_joint, elementwise_graphs
from tests.passes.cases import assert_same_outputs


def _fused_nodes(g):
    return [n for n in g.nodes if n.op == "fused"]


def test_fuse_preserves_meaning_and_types(case):
    for g in (case.graph, case.joint):
        out = verify(fuse(g))
        assert [v.type for v in out.outputs] == [v.type for v in g.outputs]
        assert out.meta == g.meta
        for seed in range(2):
            assert_same_outputs(g, out, case.random_inputs(seed)[: len(g.inputs)])


def test_fuse_is_idempotent(case):
    once = fuse(case.joint)
    twice = fuse(once)
    assert twice is once
    assert PASSES["fuse"] is fuse


def test_fuse_is_idempotent_when_a_group_reads_a_value_made_between_its_members():
    """Regression (found by hypothesis): neg(a:[]), neg(b:[1]), neg(neg a), then add. One greedy
    round cannot join `neg b` with the add (the scalar group's output is made between them), the
    next round can; fuse runs rounds to a fixpoint, so a second fuse changes nothing."""
    b = Builder()
    a = b.add_input(TensorType((), np.float64))
    c = b.add_input(TensorType((1,), np.float64))
    na = b.add("negative", [a])
    nc = b.add("negative", [c])
    g = b.build([b.add("add", [b.add("negative", [na]), nc]), na])
    once = verify(fuse(g))
    assert fuse(once) is once
    assert len(_fused_nodes(once)) == 2 and len(once.nodes) == 2
    x = [np.float64(0.5), np.array([2.0])]
    assert_same_outputs(g, once, x)


def test_fuse_returns_same_object_without_chains():
    b = Builder()
    x = b.add_input(TensorType((3, 4), np.float64))
    g = b.build([b.add("exp", [x])])
    assert fuse(g) is g


def _loss_chain(x):
    a = np.tanh(x)
    g = np.exp(-0.5 * x * x)
    return np.sum((a * g + np.sin(x)) / (1.0 + g))


def _driver_steps(fn) -> list[str]:
    """The ops the compiled driver runs, one per `# %N = op` comment of its source."""
    return [ln.split("= ")[1].split()[0] for ln in fn.source.splitlines() if "# %" in ln]


def test_fuse_groups_chain_with_reduction_into_one_loop():
    # with nothing routed to a library call, codegen runs the whole chain as one loop
    g = trace(_loss_chain, np.ones(8))
    low = lower_passes(g, "test", disable=("route",))
    assert [n.op for n in low.graph.nodes] == ["fused"]
    body = low.graph.nodes[0].attrs["body"]
    assert body.nodes[-1].op == "sum" and len(body.outputs) == 1
    fn = lower(low, "numba")
    assert fn.graph is low.graph and _driver_steps(fn) == ["fused"]
    assert_same_outputs(g, verify(low.graph), [np.linspace(-2, 2, 8)])


def test_fuse_routed_ops_split_the_chain_as_codegen_runs_it(scalar_libm):
    # with scalar libm, tanh and exp (float64) are NumPy ufunc calls: the loops form around
    # them (with SIMD they stay in the loop: tests/codegen/test_simd.py)
    g = trace(_loss_chain, np.ones(8))
    low = lower_passes(g, "test")
    fn = lower(low, "numba")
    assert _driver_steps(fn) == [n.op for n in low.graph.nodes]
    assert [n.op for n in low.graph.nodes] == ["tanh", "fused", "exp", "fused"]
    assert low.graph.nodes[-1].attrs["body"].nodes[-1].op == "sum"
    assert_same_outputs(g, verify(low.graph), [np.linspace(-2, 2, 8)])


def test_fuse_keeps_matmul_outside_and_fuses_bias_and_activation():
    g = trace(lambda x, w, b: np.tanh(x @ w + b) + x, np.ones((2, 3)), np.ones((3, 3)), np.ones(3))
    out = verify(fuse(g))
    assert [n.op for n in out.nodes] == ["matmul", "fused"]
    assert [n.op for n in out.nodes[1].attrs["body"].nodes] == ["add", "tanh", "add"]


def test_fuse_reduction_ends_its_group():
    # softmax: the max must be complete before the subtraction reads it
    def f(z):
        s = z - np.max(z, axis=1, keepdims=True)
        return s - np.log(np.sum(np.exp(s), axis=1, keepdims=True))

    g = trace(f, np.ones((3, 4)))
    out = verify(fuse(g))
    for n in _fused_nodes(out):
        body = n.attrs["body"]
        reds = {m.out for m in body.nodes if m.op in ("sum", "max", "min")}
        assert not any(v in reds for m in body.nodes for v in m.inputs)
    rng = np.random.default_rng(0)
    assert_same_outputs(g, out, [rng.normal(size=(3, 4))])


def test_fuse_absorbs_broadcasts_and_scalar_constants():
    b = Builder()
    x = b.add_input(TensorType((4,), np.float64))
    y = b.add_input(TensorType((3, 4), np.float64))
    xb = b.add("broadcast_to", [x], {"shape": (3, 4)})
    c = b.const(np.float64(2.0))
    g = b.build([b.add("exp", [b.add("multiply", [c, b.add("add", [xb, y])])])])
    out = verify(fuse(g))
    assert [n.op for n in out.nodes] == ["fused"]
    assert [v.type for v in out.nodes[0].inputs] == [x.type, y.type]
    ops = [n.op for n in out.nodes[0].attrs["body"].nodes]
    assert "broadcast_to" in ops and "const" in ops


def test_fuse_multi_output_group_shares_one_loop():
    b = Builder()
    x = b.add_input(TensorType((3, 4), np.float64))
    e = b.add("exp", [x])
    s = b.add("sum", [e], {"axis": (1,), "keepdims": False})
    g = b.build([e, s, b.add("matmul", [e, b.add("transpose", [e], {"axes": (1, 0)})])])
    out = verify(fuse(g))
    (f,) = _fused_nodes(out)
    assert [v.type for v in f.outputs] == [e.type, s.type]


def test_fuse_pulls_private_producers_into_the_consumer_group():
    # the backward `1 - t*t` of layer 1 is read only after a matmul: it must be computed
    # in the backward group, not stored from the forward one
    g, flat = deep_joint(2, 4, 3, fuse=False)
    out = verify(fuse(g))
    assert fused_count(out) == 3  # layer 1 forward, layer 2 + loss + its backward, layer 1 back
    last = _fused_nodes(out)[-1].attrs["body"]
    assert [n.op for n in last.nodes] == ["add", "square", "const", "subtract", "multiply", "sum"]
    assert [n.op for n in out.nodes if n.op not in ("fused", "matmul", "transpose")] == [
        "const",
        "divide",
        "sum",
    ]
    assert_same_outputs(g, out, flat)


def test_fuse_barrier_keeps_nodes_out_of_groups():
    g = trace(lambda x: np.sum(np.tanh(x * 2.0) + 1.0), np.ones(5))
    out = verify(fuse(g, barrier=lambda n: n.op == "tanh"))
    assert "tanh" in [n.op for n in out.nodes]
    assert_same_outputs(g, out, [np.linspace(-1, 1, 5)])


@settings(deadline=None, max_examples=60)
@given(elementwise_graphs())
def test_fuse_random_elementwise_graphs_keep_meaning(case):
    g, args = case
    out = verify(fuse(g))
    assert fuse(out) is out
    for a, e in zip(run_graph(out, args), run_graph(g, args)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
