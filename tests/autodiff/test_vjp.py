"""Reverse mode: the worked example, broadcasting, reductions, fan-out, gathers, ties, and
ops without a gradient, against hand-derived NumPy or central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from compiler import trace, value_and_grad, verify
from compiler.autodiff import vjp_graph
from compiler.interpret import run_graph
from tests import strategies as gst
from tests.helpers import fd_grad

R = np.random.default_rng(5)


def _grads(backend, f, *args, argnums=None):
    argnums = tuple(range(len(args))) if argnums is None else argnums
    return value_and_grad(f, argnums=argnums, backend=backend)(*args)


def _check_fd(backend, f, args, argnums=None, rtol=1e-6, atol=1e-8):
    args = [np.asarray(a, dtype=np.float64) for a in args]
    argnums = tuple(range(len(args))) if argnums is None else argnums
    _, gs = _grads(backend, f, *args, argnums=argnums)
    for i, g in zip(argnums, gs):
        want = fd_grad(f, args, i)
        assert np.shape(g) == want.shape, f"grad {i}: shape {np.shape(g)} != {want.shape}"
        np.testing.assert_allclose(g, want, rtol=rtol, atol=atol, err_msg=f"argument {i}")


# -- the worked example ---------------------------------------------------------------------------


def _walkthrough(w, x, b, y):
    return (w * x + b - y) ** 2


def test_grad_walkthrough_gives_exact_values(backend):
    value, (dw, dx, db, dy) = _grads(backend, _walkthrough, 2.0, 3.0, 1.0, 4.0)
    assert value == 9.0
    assert (dw, dx, db, dy) == (18.0, 12.0, 6.0, -6.0)
    assert all(type(g) is float for g in (dw, dx, db, dy))


def test_vjp_graph_walkthrough_on_arrays():
    args = [np.array(2.0), np.array(3.0), np.array(1.0), np.array(4.0)]
    joint = verify(vjp_graph(trace(_walkthrough, *args), [0, 1, 2, 3]))
    assert joint.meta["n_primal_outputs"] == 1
    out = run_graph(joint, args)
    assert [float(o) for o in out] == [9.0, 18.0, 12.0, 6.0, -6.0]


def test_vjp_graph_seeds_input_takes_a_cotangent():
    f = lambda a: np.sin(a) * 2.0  # noqa: E731
    x, ct = R.normal(size=(3,)), R.normal(size=(3,))
    joint = vjp_graph(trace(f, x), [0], seeds="input")
    assert len(joint.inputs) == 2
    np.testing.assert_allclose(run_graph(joint, [x, ct])[1], 2.0 * np.cos(x) * ct, rtol=1e-12)


# -- broadcasting ---------------------------------------------------------------------------------


def test_grad_broadcast_column_plus_row_sums_back(backend):
    c, r = R.normal(size=(3, 1)), R.normal(size=(1, 4))
    w = R.normal(size=(3, 4))
    _, (gc, gr) = _grads(backend, lambda c, r: np.sum(w * (c + r)), c, r)
    np.testing.assert_allclose(gc, w.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(gr, w.sum(axis=0, keepdims=True), rtol=1e-12)


def test_grad_scalar_times_matrix(backend):
    m = R.normal(size=(3, 4))
    _, (gs, gm) = _grads(backend, lambda s, m: np.sum(np.sin(s * m)), 0.7, m)
    assert type(gs) is float
    np.testing.assert_allclose(gs, np.sum(np.cos(0.7 * m) * m), rtol=1e-12)
    np.testing.assert_allclose(gm, np.cos(0.7 * m) * 0.7, rtol=1e-12)


def test_grad_bias_row_is_column_sum(backend):
    x, w, b = R.normal(size=(5, 3)), R.normal(size=(3, 4)), R.normal(size=(4,))
    _, (gw, gb) = _grads(backend, lambda w, b: np.sum(np.tanh(x @ w + b)), w, b)
    d = 1 - np.tanh(x @ w + b) ** 2
    np.testing.assert_allclose(gb, d.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gw, x.T @ d, rtol=1e-12)


def test_grad_broadcast_to_and_leading_axes(backend):
    v = R.normal(size=(4,))
    _check_fd(backend, lambda v: np.sum(np.broadcast_to(v, (2, 3, 4)) ** 3), [v])
    _check_fd(backend, lambda v: np.sum(np.exp(v[None, :, None] * np.ones((2, 4, 3)))), [v])


def test_grad_broadcasting_binary_matches_finite_differences(backend):
    @gst.given_on(
        backend,
        shapes=gst.mutually_broadcastable_shapes(2),
        op=st.sampled_from(["add", "sub", "mul", "div", "pow", "max", "min", "where", "lae"]),
        data=st.data(),
    )
    def check(shapes, op, data):
        a = data.draw(gst.arrays(shapes[0]), label="a")
        b = data.draw(gst.arrays(shapes[1], lo=0.5, hi=2.0), label="b")
        assume(np.all(np.abs(a) > 1e-3))
        # keep finite differences away from the kinks of maximum/minimum (exact ties are drawn)
        assume(op != "max" or np.all(np.abs(a - (b + 2.5)) > 1e-3))
        assume(op != "min" or np.all(np.abs(a - (b - 2.5)) > 1e-3))
        f = {
            "add": lambda x, y: x + y,
            "sub": lambda x, y: x - y,
            "mul": lambda x, y: x * y,
            "div": lambda x, y: x / y,
            "pow": lambda x, y: y**x,
            "max": lambda x, y: np.maximum(x, y + 2.5),
            "min": lambda x, y: np.minimum(x, y - 2.5),
            "where": lambda x, y: np.where(x > 0, x * y, y),
            "lae": np.logaddexp,
        }[op]
        w = np.random.default_rng(0).normal(size=np.broadcast_shapes(shapes[0], shapes[1]))
        _check_fd(backend, lambda x, y: np.sum(w * f(x, y)), [a, b])

    check()


# -- reductions -----------------------------------------------------------------------------------


def test_grad_reductions_axes_keepdims_match_finite_differences(backend):
    @gst.given_on(
        backend, case=gst.shape_and_axes(), red=st.sampled_from(["sum", "mean", "max", "min"])
    )
    def check(case, red):
        shape, axis, keepdims = case
        n = int(np.prod(shape))
        rng = np.random.default_rng(n)
        x = rng.permutation(np.arange(n, dtype=np.float64)).reshape(shape) * 0.1  # no ties
        w = rng.normal(size=np.shape(getattr(x, red)(axis=axis, keepdims=keepdims)))

        def f(a):
            return np.sum(w * np.sin(getattr(a, red)(axis=axis, keepdims=keepdims)))

        _check_fd(backend, f, [x])

    check()


def test_grad_mean_of_axis_tuple(backend):
    x = R.normal(size=(2, 3, 4))
    _, (g,) = _grads(backend, lambda a: np.mean(a, axis=(0, 2)).sum(), x)
    np.testing.assert_allclose(g, np.full(x.shape, 1 / 8), rtol=1e-12)


# -- fan-out and diamonds -------------------------------------------------------------------------


def test_grad_fan_out_accumulates(backend):
    x = R.normal(size=(4,))
    _, (g,) = _grads(backend, lambda a: np.sum(a * a + np.sin(a) * a + a), x)
    np.testing.assert_allclose(g, 2 * x + np.cos(x) * x + np.sin(x) + 1, rtol=1e-12)


def test_grad_diamond_graph(backend):
    def f(x):
        a = np.exp(x)
        b = a * 2.0
        c = a + 1.0
        return np.sum(b * c)

    x = R.normal(size=(3,))
    _, (g,) = _grads(backend, f, x)
    e = np.exp(x)
    np.testing.assert_allclose(g, (4.0 * e + 2.0) * e, rtol=1e-12)


def test_grad_same_argument_used_twice_in_one_op(backend):
    x = R.normal(size=(3, 3))
    _check_fd(backend, lambda a: np.sum(a @ a), [x])
    _check_fd(backend, lambda a: np.sum(a * a.T), [x])


# -- gathers, scatters, ties ----------------------------------------------------------------------


def test_grad_gather_with_repeated_indices_accumulates(backend):
    x = R.normal(size=(5, 2))
    idx = np.array([0, 2, 2, 2, 4, -1])
    w = R.normal(size=(6, 2))
    _, (g,) = _grads(backend, lambda a: np.sum(a[idx] * w), x)
    want = np.zeros_like(x)
    np.add.at(want, idx, w)
    np.testing.assert_allclose(g, want, rtol=1e-12)
    assert g[2, 0] == pytest.approx(w[1:4, 0].sum())


def test_grad_gather_along_axis1_and_np_take(backend):
    x = R.normal(size=(3, 4))
    _check_fd(backend, lambda a: np.sum(np.tanh(a[:, [1, 1, 3]])), [x])
    _check_fd(backend, lambda a: np.sum(np.take(a, [0, 0, 5, 11]) ** 2), [x])


def test_grad_max_ties_share_gradient_equally(backend):
    x = np.array([1.0, 3.0, 3.0, 2.0])
    _, (g,) = _grads(backend, lambda a: np.max(a), x)
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5, 0.0])
    m = np.array([[1.0, 1.0, 1.0], [2.0, 5.0, 5.0]])
    _, (g,) = _grads(
        backend, lambda a: np.sum(a.max(axis=1, keepdims=True) * np.array([[2.0], [4.0]])), m
    )
    np.testing.assert_allclose(g, [[2 / 3] * 3, [0.0, 2.0, 2.0]], rtol=1e-12)
    _, (g,) = _grads(backend, lambda a: np.min(a), np.array([4.0, -1.0, 0.0, -1.0, -1.0]))
    np.testing.assert_allclose(g, [0.0, 1 / 3, 0.0, 1 / 3, 1 / 3], rtol=1e-12)


def test_grad_elementwise_maximum_tie_goes_to_first_operand(backend):
    x = np.array([1.0, 2.0, 3.0])
    _, (gx, gy) = _grads(backend, lambda a, b: np.sum(np.maximum(a, b)), x, x.copy())
    np.testing.assert_array_equal(gx, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(gy, [0.0, 0.0, 0.0])


def test_grad_clip_passes_gradient_inside_closed_interval(backend):
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    _, (g,) = _grads(backend, lambda a: np.sum(np.clip(a, -1.0, 1.0)), x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_grad_through_indexed_writes_last_duplicate_wins(backend):
    def f(x, v):
        z = x.copy()
        z[[1, 3, 1]] = v  # v[2] is what lands at index 1; v[0] is overwritten
        return np.sum(z * np.arange(1.0, 6.0))

    x, v = R.normal(size=(5,)), R.normal(size=(3,))
    _, (gx, gv) = _grads(backend, f, x, v)
    np.testing.assert_array_equal(gx, [1.0, 0.0, 3.0, 0.0, 5.0])
    np.testing.assert_array_equal(gv, [0.0, 4.0, 2.0])


# -- no gradient: masks, sign, integer paths, unused inputs ---------------------------------------


def test_grad_through_mask_and_sign_treats_them_as_constants(backend):
    x = np.array([-1.5, 0.5, 2.0, -0.2])
    _, (g,) = _grads(backend, lambda a: np.sum((a > 0) * a**2 + np.sign(a) * a), x)
    np.testing.assert_allclose(g, (x > 0) * 2 * x + np.sign(x), rtol=1e-12)


def test_grad_through_astype_round_trip(backend):
    x = R.normal(size=(3,))
    _, (g,) = _grads(backend, lambda a: np.sum(a.astype(np.float32).astype(np.float64) * 3.0), x)
    np.testing.assert_array_equal(g, [3.0, 3.0, 3.0])
    _, (g,) = _grads(backend, lambda a: np.sum(a.astype(np.int64) * a), x)
    np.testing.assert_array_equal(g, x.astype(np.int64).astype(np.float64))


def test_vjp_graph_unused_input_gets_zeros_of_its_shape():
    x, y = R.normal(size=(3,)), R.normal(size=(2, 5))
    joint = vjp_graph(trace(lambda a, b: np.sum(a), x, y), [0, 1])
    gx, gy = run_graph(joint, [x, y])[1:]
    np.testing.assert_array_equal(gx, np.ones(3))
    assert gy.shape == (2, 5) and gy.dtype == np.float64 and not gy.any()


def test_grad_float32_in_float32_out(backend):
    x = R.normal(size=(3, 4)).astype(np.float32)
    w = R.normal(size=(4, 2)).astype(np.float32)
    v, (gx, gw) = _grads(backend, lambda a, b: np.sum(np.tanh(a @ b) * 0.5) + 1.0, x, w)
    assert np.asarray(v).dtype == np.float32
    assert gx.dtype == np.float32 and gw.dtype == np.float32
    d = 0.5 * (1 - np.tanh(x.astype(np.float64) @ w) ** 2)
    np.testing.assert_allclose(gx, d @ w.T.astype(np.float64), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gw, x.T.astype(np.float64) @ d, rtol=1e-4, atol=1e-5)
