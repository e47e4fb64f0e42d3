"""Batching small products: add trees of `a^T @ b` terms, and products of a shared operand."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import trace, value_and_grad
from compiler.autodiff import vjp_graph
from compiler.interpret import run_graph
from compiler.ir import Builder, Graph, TensorType, verify
from compiler.passes import run_passes
from compiler.passes.batch import batch
from tests.passes.cases import assert_same_outputs, rnn_loss

F64 = np.dtype("float64")


def _ops(g: Graph) -> Counter:
    return Counter(n.op for n in g.nodes)


def _joint(fn, *args, wrt) -> Graph:
    return vjp_graph(trace(fn, *args), wrt=wrt)


def _rnn_args(steps, batch=3, n_in=2, hidden=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [
        a.astype(dtype)
        for a in (
            rng.normal(size=(n_in, hidden)),
            rng.normal(size=(hidden, hidden)) / np.sqrt(hidden),
            rng.normal(size=hidden),
            rng.normal(size=(steps, batch, n_in)),
            rng.normal(size=(batch, hidden)),
        )
    ]


def _pipeline(g: Graph, batch_on: bool = True) -> Graph:
    return run_passes(g, disable=("fuse",) if batch_on else ("fuse", "batch"), check=True)


# -- the unrolled RNN ----------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [2, 5, 12])
def test_rnn_weight_gradients_become_one_product_each(steps):
    args = _rnn_args(steps)
    joint = _joint(rnn_loss, *args, wrt=[0, 1, 2])  # the weights, as in the benchmark
    before, after = _pipeline(joint, batch_on=False), _pipeline(joint)
    # before: per step x_t @ Wx, h @ Wh, d_t @ Wh^T and the two weight-gradient terms
    assert _ops(before)["matmul"] == 5 * steps - 1
    # after: concat(x_t) @ Wx once; h @ Wh and d_t @ Wh^T stay (each needs the previous
    # step); the gradients of Wx and Wh are one product each
    assert _ops(after)["matmul"] == 2 * steps + 2
    # concat(x_t) (shared by the forward and dWx), concat(h_t), concat(d_t) (shared by
    # dWx, dWh and the bias gradient, which is one sum)
    assert _ops(after)["concatenate"] == 3
    assert _ops(after)["sum"] == 2  # the loss and the bias gradient
    assert len(after.nodes) < len(before.nodes)
    for seed in range(2):
        assert_same_outputs(joint, after, _rnn_args(steps, seed=seed + 1))


def test_rnn_input_gradients_are_batched_too():
    # differentiated w.r.t. xs and h0 as well: the d_t @ Wx^T of every step (the gradient of
    # x_t) become one product, on the same concatenation of the d_t as the weight gradients
    args = _rnn_args(4)
    joint = _joint(rnn_loss, *args, wrt=[0, 1, 2, 3, 4])
    after = _pipeline(joint)
    assert _ops(_pipeline(joint, batch_on=False))["matmul"] == 6 * 4
    assert _ops(after)["matmul"] == 1 + 4 + 4 + 1 + 2  # Wx, h @ Wh, d_t @ Wh^T, dxs, dW
    assert _ops(after)["concatenate"] == 3
    assert_same_outputs(joint, after, _rnn_args(4, seed=3))


def test_rnn_long_sequence_within_rounding():
    # the batched sums add 40 steps inside one GEMM: a reassociation, so equal to rounding
    args = _rnn_args(40, batch=5, n_in=3, hidden=6)
    joint = _joint(rnn_loss, *args, wrt=[0, 1, 2])
    out = batch(joint)
    assert_same_outputs(joint, out, args)


def test_batch_is_idempotent_and_verifies():
    joint = _joint(rnn_loss, *_rnn_args(6), wrt=[0, 1, 2, 3, 4])
    once = verify(batch(joint))
    assert once is not joint
    twice = batch(once)
    assert twice is once
    assert twice.fingerprint() == once.fingerprint()
    piped = _pipeline(joint)
    assert batch(piped) is piped  # cse's merged concatenations give nothing new to batch
    assert run_passes(piped, disable=("fuse",)) is piped


def test_float32_stays_float32():
    args = _rnn_args(5, dtype=np.float32)
    joint = _joint(rnn_loss, *args, wrt=[0, 1, 2])
    out = verify(batch(joint))
    assert [v.type for v in out.outputs] == [v.type for v in joint.outputs]
    assert all(n.out.dtype == np.float32 for n in out.nodes if n.op == "concatenate")
    for w, g in zip(run_graph(joint, args), run_graph(out, args)):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6)


def test_pipeline_without_batch_matches():
    args = _rnn_args(5)
    joint = _joint(rnn_loss, *args, wrt=[0, 1, 2, 3, 4])
    assert_same_outputs(_pipeline(joint, batch_on=False), _pipeline(joint), args)


@pytest.mark.parametrize("backend", ["numba", "interpret"])
def test_rnn_end_to_end_with_and_without_batch(backend):
    wx, wh, b, xs, h0 = _rnn_args(6)

    def loss(p, xs, h0):
        return rnn_loss(p["wx"], p["wh"], p["b"], xs, h0)

    p = {"wx": wx, "wh": wh, "b": b}
    v1, g1 = value_and_grad(loss, backend=backend)(p, xs, h0)
    v0, g0 = value_and_grad(loss, backend=backend, disable=("batch",))(p, xs, h0)
    np.testing.assert_allclose(v1, v0, rtol=1e-12)
    for k in p:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-12, atol=1e-14)


# -- the mirrored layout: columns are samples ---------------------------------------------------


def col_rnn_loss(wx, wh, b, xs, h0):
    """The RNN with weights on the left: h_t = tanh(Wx @ x_t + Wh @ h + b), h (hidden, batch)."""
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(wx @ xs[t] + wh @ h + b[:, None])
    return np.sum(h * h)


def test_mirrored_layout_concatenates_along_columns():
    rng = np.random.default_rng(1)
    steps, hidden, n_in, nb = 4, 4, 2, 3
    args = [
        rng.normal(size=(hidden, n_in)),
        rng.normal(size=(hidden, hidden)) / 2,
        rng.normal(size=hidden),
        rng.normal(size=(steps, n_in, nb)),
        rng.normal(size=(hidden, nb)),
    ]
    joint = _joint(col_rnn_loss, *args, wrt=[0, 1, 2])
    before, after = _pipeline(joint, batch_on=False), _pipeline(joint)
    assert _ops(before)["matmul"] == 5 * steps - 1
    assert _ops(after)["matmul"] == 2 * steps + 2
    cats = [n for n in after.nodes if n.op == "concatenate"]
    assert len(cats) == 3 and all(n.attrs["axis"] == 1 for n in cats)
    assert_same_outputs(joint, after, args)


# -- what must not change -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["seed", "mlp", "bias", "diamond", "branches"])
def test_graphs_without_shared_weights_are_unchanged(name, cases):
    assert batch(cases[name].joint) is cases[name].joint


def test_residual_stack_without_shared_weights_is_unchanged():
    # the `deep` benchmark's shape: a weight per layer, so no sum has two products
    def deep(ws, x):
        h = x
        for w in ws:
            h = h + np.tanh(h @ w)
        return np.mean(h * h)

    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(3, 3)) for _ in range(4)]
    joint = _joint(deep, ws, rng.normal(size=(2, 3)), wrt=[0, 1, 2, 3, 4])
    assert batch(joint) is joint
    simplified = run_passes(joint, names=("simplify", "fold"))
    assert batch(simplified) is simplified


def test_shared_bias_alone_is_not_batched():
    # one bias for every layer: its gradient is a sum of reductions, but no product
    # concatenates those deltas, so batching it would only copy them
    def f(ws, b, x):
        h = x
        for w in ws:
            h = np.tanh(h @ w + b)
        return np.sum(h)

    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(3, 3)) for _ in range(3)]
    joint = run_passes(
        _joint(f, ws, rng.normal(size=3), rng.normal(size=(2, 3)), wrt=[0, 1, 2, 3]),
        names=("simplify", "fold"),
    )
    assert batch(joint) is joint


def test_term_with_another_user_and_other_leaves_stay():
    # a weight used twice plus an L2 term: the two products batch, the L2 term stays a leaf
    def f(w, x1, x2):
        return np.sum(np.tanh(x1 @ w)) + np.sum(np.tanh(x2 @ w) ** 2) + np.sum(w * w)

    rng = np.random.default_rng(2)
    args = [rng.normal(size=(3, 3)), rng.normal(size=(2, 3)), rng.normal(size=(4, 3))]
    joint = _joint(f, *args, wrt=[0])
    out = _pipeline(joint)
    # forward: one product for x1 @ w and x2 @ w; gradient: one product, plus the L2 leaf
    assert _ops(out)["matmul"] == 2
    assert_same_outputs(joint, out, args)

    # a product that is also read elsewhere is not absorbed into a batched sum
    b = Builder()
    a1, b1, a2, b2 = (b.add_input(TensorType((2, 3), F64)) for _ in range(4))
    p1 = b.add("matmul", [b.add("transpose", [a1], {"axes": (1, 0)}), b1])
    p2 = b.add("matmul", [b.add("transpose", [a2], {"axes": (1, 0)}), b2])
    g = b.build([b.add("add", [p1, p2]), b.add("tanh", [p1])])
    assert batch(g) is g


def test_dependent_products_of_a_shared_weight_stay():
    # x1 @ w and x2 @ w batch; h @ w needs x1 @ w's result, so it keeps its own product
    b = Builder()
    w = b.add_input(TensorType((3, 3), F64))
    x1, x2 = (b.add_input(TensorType((2, 3), F64)) for _ in range(2))
    p1 = b.add("matmul", [x1, w])
    h = b.add("tanh", [p1])
    p3 = b.add("matmul", [h, w])
    p2 = b.add("matmul", [x2, w])
    g = b.build([b.add("add", [p3, p2])])
    out = verify(batch(g))
    assert _ops(out)["matmul"] == 2 and _ops(out)["concatenate"] == 1
    rng = np.random.default_rng(0)
    assert_same_outputs(g, out, [rng.normal(size=v.shape) for v in g.inputs])


def test_two_groups_that_would_need_each_other_are_batched_one_at_a_time():
    # batching {x1 @ w, x2 @ w} and {y1 @ v, y2 @ v} together is a cycle: x2 needs y1 @ v,
    # and y2 needs x1 @ w. The first group batches; then y2 @ v depends on it and stays.
    b = Builder()
    w, v = (b.add_input(TensorType((3, 3), F64)) for _ in range(2))
    x1, y1 = (b.add_input(TensorType((2, 3), F64)) for _ in range(2))
    m1 = b.add("matmul", [x1, w])
    n1 = b.add("matmul", [y1, v])
    x2 = b.add("tanh", [n1])
    m2 = b.add("matmul", [x2, w])
    y2 = b.add("tanh", [m1])
    n2 = b.add("matmul", [y2, v])
    g = b.build([m2, n2])
    out = verify(batch(g))
    assert _ops(out)["matmul"] == 3 and _ops(out)["concatenate"] == 1
    rng = np.random.default_rng(0)
    assert_same_outputs(g, out, [rng.normal(size=s.shape) for s in g.inputs])
    assert batch(out) is out


# -- random graphs of products, transposes and sums --------------------------------------------


@st.composite
def product_graphs(draw) -> Graph:
    b = Builder()
    pool = [b.add_input(TensorType(s, F64)) for s in [(3, 3), (3, 3), (2, 3), (4, 3), (2, 3)]]

    def pick(rows=None, cols=None):
        vs = [
            v
            for v in pool
            if v.ndim == 2 and rows in (None, v.shape[0]) and cols in (None, v.shape[1])
        ]
        return vs[draw(st.integers(0, len(vs) - 1))]

    def tr(x):
        return b.add("transpose", [x], {"axes": (1, 0)})

    def total(x):
        return b.add("sum", [x], {"axis": (0,), "keepdims": False})

    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["shared", "tn_sum", "nt", "tanh", "add", "sum"]))
        x = pick()
        m, n = x.shape
        if kind == "shared":  # several x_i @ w with one w, some depending on earlier ones
            w = pick(3, 3)
            for _ in range(draw(st.integers(2, 4))):
                pool.append(b.add("matmul", [pick(cols=3), tr(w) if draw(st.booleans()) else w]))
                if draw(st.booleans()):
                    pool.append(b.add("tanh", [pool[-1]]))
        elif kind == "tn_sum":  # a chain of adds of a_i^T b_i (and sometimes another term)
            terms = []
            for _ in range(draw(st.integers(2, 4))):
                a = pick(cols=3)
                terms.append(b.add("matmul", [tr(a), pick(a.shape[0], 3)]))
            if draw(st.booleans()):
                terms.insert(draw(st.integers(0, len(terms))), pick(3, 3))
            acc = terms[0]
            for t in terms[1:]:
                acc = b.add("add", [t, acc] if draw(st.booleans()) else [acc, t])
            pool.append(acc)
            if draw(st.booleans()):
                pool.append(terms[-1])  # a term with another user
        elif kind == "nt":
            pool.append(b.add("matmul", [x, tr(pick(cols=n))]))
        elif kind == "tanh":
            pool.append(b.add("tanh", [x]))
        elif kind == "add":
            pool.append(b.add("add", [x, pick(m, n)]))
        else:
            s = b.add("add", [total(x), total(pick(m, n))])
            pool.append(b.add("reshape", [s], {"shape": (1, n)}))
    n_out = draw(st.integers(1, 3))
    return b.build(pool[-n_out:])


@settings(deadline=None, max_examples=200)
@given(g=product_graphs(), seed=st.integers(0, 2**16))
def test_fuzz_batch_is_correct_and_idempotent(g, seed):
    rng = np.random.default_rng(seed)
    args = [rng.normal(size=v.shape) for v in g.inputs]
    once = verify(batch(g))
    assert_same_outputs(g, once, args)
    assert batch(once) is once
    # (the whole pipeline is not idempotent on every such graph: a batched reduction can
    # give simplify a `reshape(sum)` to fold that the add tree hid)
    assert_same_outputs(g, run_passes(g, disable=("fuse",), check=True), args)
