"""The loop node in the IR: printed with its body, verified, serialized, optimized inside,
merged with its residual twin, and compiled once whatever the trip count."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import scan, trace, verify, while_loop
from compiler.autodiff import vjp_graph
from compiler.codegen import compile_stats
from compiler.interpret import run_graph
from compiler.ir.graph import Graph, Node
from compiler.ir.verify import VerifyError
from compiler.passes import run_passes
from compiler.pipeline import lower_graph


def rnn(W, xs, h0):
    def step(h, x):
        h = np.tanh(h @ W + x * 1.0 + 0.0)
        return h, np.sum(h * h)

    h, ys = scan(step, h0, xs)
    return np.sum(ys) + np.sum(h)


def _args(t=5):
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(t, 3)), np.zeros(3)


def test_printer_shows_body_indented_under_loop_node():
    text = str(trace(rnn, *_args()))
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if " = scan " in line)
    assert "length=5" in lines[i] and "n_carry=1" in lines[i]
    assert lines[i + 1].strip() == "body:"
    assert lines[i + 2].startswith("    graph(")
    assert any(line.startswith("      ") and "tanh" in line for line in lines[i + 2 :])


def test_fingerprint_and_json_include_the_body():
    g = trace(rnn, *_args())
    back = Graph.from_json(g.to_json())
    assert back.fingerprint() == g.fingerprint()
    verify(back)
    g2 = trace(lambda W, xs, h0: rnn(W * 1.0, xs, h0) if False else _other(W, xs, h0), *_args())
    assert g2.fingerprint() != g.fingerprint()


def _other(W, xs, h0):
    h, ys = scan(lambda h, x: (np.sin(h @ W + x), np.sum(h)), h0, xs)
    return np.sum(ys) + np.sum(h)


def test_verify_checks_bodies_and_output_types():
    g = trace(rnn, *_args())
    n = next(n for n in g.nodes if n.op == "scan")
    body = n.attrs["body"]
    bad_body = Graph(body.inputs, body.nodes, (body.inputs[1], body.inputs[0]))  # carry f64[3,3]
    bad = Node(n.op, n.inputs, {**n.attrs, "body": bad_body}, n.outputs, n.loc)
    with pytest.raises(VerifyError, match="scan"):
        verify(Graph(g.inputs, tuple(bad if m is n else m for m in g.nodes), g.outputs))


def test_passes_run_inside_bodies_and_twin_is_merged():
    args = _args()
    joint = vjp_graph(trace(rnn, *args), [0, 1, 2])
    scans = [n for n in joint.nodes if n.op == "scan"]
    assert len(scans) == 3  # primal, residual-storing twin, reverse
    opt = run_passes(joint, check=True, disable=("fuse",))
    scans = [n for n in opt.nodes if n.op == "scan"]
    assert len(scans) == 2  # the twin took the primal's place
    fwd_body = scans[0].attrs["body"]
    ops = [m.op for m in fwd_body.nodes]
    assert "multiply" not in ops and "add" in ops  # `x * 1.0` simplified away inside
    ref = run_graph(joint, list(args))
    got = run_graph(opt, list(args))
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_step_kernels_compile_once_whatever_the_trip_count():
    def f(W, xs, h0):
        h, _ = scan(lambda h, x: (np.tanh(h @ W + x) * 0.5 + 0.1 * h, None), h0, xs)
        return h

    g20 = trace(f, *_args(20))
    fn = lower_graph(g20)
    fn(*_args(20))
    before = compile_stats().compiled
    g400 = trace(f, *_args(400))
    out = lower_graph(g400)(*_args(400))
    assert compile_stats().compiled == before  # a new length compiles nothing
    np.testing.assert_allclose(out[0], run_graph(g400, list(_args(400)))[0], rtol=1e-13)


def test_while_loop_node_prints_cond_and_body():
    g = trace(lambda x: while_loop(lambda s: s > 1.0, lambda s: s * 0.5, x), 8.0)
    text = str(g)
    assert "while_loop" in text and "cond:" in text and "body:" in text
    assert Graph.from_json(g.to_json()).fingerprint() == g.fingerprint()


def test_weight_gradients_of_a_batched_rnn_are_one_gemm_after_the_loop():
    from compiler.pipeline import Options, grad_stages
    from tests.loops.cases import batch_rnn_args, rnn_scan

    args = batch_rnn_args(np.random.default_rng(0))
    g = run_passes(vjp_graph(trace(rnn_scan, *args), [0, 1]), disable=("fuse",))
    rev = [n for n in g.nodes if n.op == "scan" and n.attrs["reverse"]]
    assert len(rev) == 1
    # no per-step accumulator for W or U: the reverse loop carries the state's cotangent and
    # the state itself (handed down, so the forward stacks only the carry inputs)
    carries = rev[0].outputs[: rev[0].attrs["n_carry"]]
    assert [v.shape for v in carries] == [(2, 3), (2, 3)]
    fwd = [n for n in g.nodes if n.op == "scan" and not n.attrs["reverse"]]
    # final h, the primal ys, stacked h_{t-1}: one stack of states
    assert [v.shape for v in fwd[0].outputs] == [(2, 3), (7,), (7, 2, 3)]
    outside = [n for n in g.nodes if n.op == "matmul"]
    assert sorted(n.out.shape for n in outside) == [(2, 3), (3, 3)]
    traced = trace(rnn_scan, *args)
    assert grad_stages(traced, vjp_graph(traced, [0, 1]), Options()).lowered[0].graph.nodes
