"""Forward mode (`jvp_graph`) vs central finite differences, and vs reverse mode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from compiler import trace, verify
from compiler.autodiff import jvp_graph, vjp_graph
from compiler.interpret import run_graph
from tests import strategies as gst
from tests.helpers import fd_directional

R = np.random.default_rng(21)


def _jvp(f, args, wrt, tangents):
    graph = trace(f, *args)
    j = verify(jvp_graph(graph, wrt))
    assert len(j.inputs) == len(graph.inputs) + len(wrt)
    assert len(j.outputs) == 2 * len(graph.outputs)
    outs = run_graph(j, list(args) + list(tangents))
    n = len(graph.outputs)
    return outs[:n], outs[n:], graph


def _check_fd(f, args, wrt=None, rtol=1e-6, atol=1e-7, eps=1e-6):
    args = [np.asarray(a) for a in args]
    wrt = list(range(len(args))) if wrt is None else wrt
    rng = np.random.default_rng(0)  # reproducible under hypothesis
    tans = [rng.normal(size=args[i].shape) for i in wrt]
    primal, tan_out, graph = _jvp(f, args, wrt, tans)
    dirs = [None] * len(args)
    for i, t in zip(wrt, tans):
        dirs[i] = t
    n_out = len(graph.outputs)
    for k in range(n_out):

        def fk(*a, k=k):
            out = f(*a)
            return out[k] if n_out > 1 else out

        fd = fd_directional(fk, args, dirs, eps)
        assert tan_out[k].shape == np.shape(fd)
        np.testing.assert_allclose(tan_out[k], fd, rtol=rtol, atol=atol, err_msg=f"output {k}")
        np.testing.assert_allclose(primal[k], fk(*args), rtol=1e-12)


X = R.normal(size=(3, 4))
Y = R.normal(size=(3, 4))
V = R.normal(size=(4,))
P = R.uniform(0.5, 2.0, size=(3, 4))

FUNCS = {
    "poly": (lambda a, b: a * b + a * a - 3.0 * b, X, Y),
    "broadcast_row": (lambda a, v: np.tanh(a * v + v), X, V),
    "broadcast_outer": (lambda c, r: np.exp(c + r), X[:, :1], V[None]),
    "scalar_times_matrix": (lambda s, a: s * a, np.float64(1.3), X),
    "divide_power": (lambda a, p: a / p + p**a, X, P),
    "log_sqrt": (lambda p: np.log(p) + np.sqrt(p) + np.log1p(p), P),
    "trig": (lambda a: np.sin(a) * np.cos(a) + np.expm1(a), X),
    "matmul": (lambda a, b: a @ b.T, X, Y),
    "matmul_vec": (lambda a, v: a @ v, X, V),
    "reductions": (
        lambda a: (a.sum(axis=0), a.mean(axis=(0, 1), keepdims=True), a.max(axis=1), a.min()),
        X,
    ),
    "softmax": (lambda a: np.exp(a - a.max(axis=1, keepdims=True)).sum(axis=1), X),
    "where_maximum": (lambda a, b: np.where(a > 0, a, b) + np.maximum(a, b), X, Y),
    "clip_abs": (lambda a: np.clip(a, -0.5, 0.5) + np.abs(a), X + 0.01),
    "logaddexp": (lambda a, b: np.logaddexp(a, b), X, Y),
    "shapes": (
        lambda a: np.concatenate([a.T.reshape(2, 6), a[::-1, 1:3].reshape(2, 3)], axis=1),
        X,
    ),
    "stack_broadcast": (lambda a, v: np.stack([a, np.broadcast_to(v, a.shape)], axis=-1), X, V),
    "gather_repeated": (lambda a: a[[0, 2, 2, 1]] * a[:, [3, 3]].sum(), X),
    "writes": (_writes := None, X),  # replaced below
    "astype_f32": (lambda a: a.astype(np.float32).astype(np.float64) * 2.0, X),
}


def _writes_fn(a):
    z = np.zeros((4, 4))
    z[1:3] = a[:2] * 2.0
    np.add.at(z, [0, 0, 3], a)
    z[[1, 1]] = a[2:]  # duplicate write: the last one wins
    return np.sin(z)


FUNCS["writes"] = (_writes_fn, X)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_jvp_graph_matches_finite_differences(name):
    f, *args = FUNCS[name]
    if name == "astype_f32":  # float32 in the middle: a step float32 can resolve
        _check_fd(f, args, rtol=1e-4, atol=1e-5, eps=1e-2)
    else:
        _check_fd(f, args)


def test_jvp_graph_respects_wrt_subset():
    f = lambda a, b: a * b + np.sin(b)  # noqa: E731
    _check_fd(f, [X, Y], wrt=[1])
    _check_fd(f, [X, Y], wrt=[0])


def test_jvp_graph_output_independent_of_wrt_gets_zero_tangent_of_its_shape():
    f = lambda a, b: (a * 2.0, b.sum(), (b > 0).sum())  # noqa: E731
    _, tans, _ = _jvp(f, [X, Y], [0], [np.ones_like(X)])
    np.testing.assert_array_equal(tans[0], 2.0 * np.ones_like(X))
    assert tans[1].shape == () and tans[1] == 0.0
    assert tans[2].shape == () and tans[2] == 0.0


def test_jvp_graph_integer_input_has_no_tangent():
    idx = np.array([2, 0, 1])
    f = lambda a, i: a[i] * 2.0  # noqa: E731
    _, tans, _ = _jvp(f, [X, idx], [0, 1], [np.ones_like(X), np.ones_like(idx)])
    np.testing.assert_array_equal(tans[0], 2.0 * np.ones((3, 4)))


def test_jvp_graph_keeps_float32():
    x32 = X.astype(np.float32)
    f = lambda a: np.tanh(a * 2.0).sum(axis=0)  # noqa: E731
    _, tans, _ = _jvp(f, [x32], [0], [np.ones_like(x32)])
    assert tans[0].dtype == np.float32
    want = (2.0 * (1 - np.tanh(2.0 * X) ** 2)).sum(axis=0)
    np.testing.assert_allclose(tans[0], want, rtol=1e-5)


def test_jvp_graph_agrees_with_vjp_graph():
    # <c, J t> from forward mode == <J^T c, t> from reverse mode
    def f(a, b, v):
        return np.tanh(a @ b.T + v[:3]) * a.sum(axis=1, keepdims=True)

    args = [X, Y, V]
    graph = trace(f, *args)
    tans = [R.normal(size=a.shape) for a in args]
    ct = R.normal(size=graph.outputs[0].shape)
    jt = run_graph(jvp_graph(graph, [0, 1, 2]), args + tans)[1]
    grads = run_graph(vjp_graph(graph, [0, 1, 2], seeds="input"), args + [ct])[1:]
    lhs = np.sum(ct * jt)
    rhs = sum(np.sum(g * t) for g, t in zip(grads, tans))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_jvp_graph_can_be_differentiated_again():
    # forward-over-reverse style check: d/dx (J t) for f = sum(x^3) is 6 x t
    graph = trace(lambda a: np.sum(a**3), V)
    j = jvp_graph(graph, [0])  # inputs x, t; outputs f, f'(x) t
    t = R.normal(size=V.shape)
    jj = vjp_graph(j, [0], ct_outputs=(1,))
    grad_x = run_graph(jj, [V, t])[2]
    np.testing.assert_allclose(grad_x, 6.0 * V * t, rtol=1e-12)


@gst.INTERP
@given(
    shapes=gst.mutually_broadcastable_shapes(2),
    op=st.sampled_from(["add", "mul", "div", "max", "where", "lae"]),
    data=st.data(),
)
def test_jvp_graph_broadcasting_matches_finite_differences(shapes, op, data):
    a = data.draw(gst.arrays(shapes[0]))
    b = data.draw(gst.arrays(shapes[1], lo=0.5, hi=2.0))
    assume(np.all(np.abs(a) > 1e-3))  # keep where's switch out of the FD step
    f = {
        "add": lambda x, y: x + y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
        "max": lambda x, y: np.maximum(x, y + 3.0),
        "where": lambda x, y: np.where(x > 0, x * y, y),
        "lae": np.logaddexp,
    }[op]
    _check_fd(f, [a, b], atol=1e-6)


@gst.INTERP
@given(case=gst.shape_and_axes(), red=st.sampled_from(["sum", "mean", "max", "min"]))
def test_jvp_graph_reductions_match_finite_differences(case, red):
    shape, axis, keepdims = case
    n = int(np.prod(shape))
    x = np.random.default_rng(n).permutation(np.arange(n, dtype=np.float64)).reshape(shape) * 0.1
    _check_fd(lambda a: getattr(a, red)(axis=axis, keepdims=keepdims) * 1.0, [x], atol=1e-6)
