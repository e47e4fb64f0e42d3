"""Jacobians and Hessians vs finite differences (of the function, and of its gradient), hvp vs
hessian @ v, reverse-over-reverse vs forward-over-reverse, pytrees in and out, the choice of
mode, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import grad, hessian, hvp, jacfwd, jacobian, jacrev, jit, trace
from tests import strategies as gst
from tests.helpers import fd_directional

R = np.random.default_rng(41)
X = R.normal(size=(3,))
W = R.normal(size=(2, 3))


def _fd_jacobian(f, args, i, eps=1e-6):
    """Block d f / d args[i] by central differences: shape f.shape + args[i].shape."""
    x = np.asarray(args[i], np.float64)
    cols = []
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = 1.0
        dirs = [None] * len(args)
        dirs[i] = e
        cols.append(fd_directional(f, args, dirs, eps))
    out = np.stack(cols, axis=-1)
    return out.reshape(out.shape[:-1] + x.shape)


def _vec(w, x):
    return np.tanh(w @ x) * np.sum(x**2) + w[:, :1].sum(axis=1) * 0.5


@pytest.mark.parametrize("transform", [jacfwd, jacrev, jacobian])
def test_jacobian_matches_finite_differences_both_arguments(transform, backend):
    ja, jb = transform(_vec, argnums=(0, 1), backend=backend)(W, X)
    assert ja.shape == (2, 2, 3) and jb.shape == (2, 3)
    np.testing.assert_allclose(ja, _fd_jacobian(_vec, [W, X], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jb, _fd_jacobian(_vec, [W, X], 1), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("transform", [jacfwd, jacrev])
def test_jacobian_pytrees_in_and_out(transform):
    def f(p, s):
        h = np.sin(p["w"] @ p["x"][0])
        return {"h": h * s, "tot": np.sum(h * h)}

    p = {"w": W, "x": [X]}
    jac = transform(f, backend="interpret")(p, 1.5)
    assert set(jac) == {"h", "tot"}
    assert set(jac["h"]) == {"w", "x"} and isinstance(jac["h"]["x"], list)
    assert jac["h"]["w"].shape == (2, 2, 3) and jac["tot"]["x"][0].shape == (3,)
    for key in ("h", "tot"):
        for name, i in (("w", 0), ("x", 1)):

            def fk(w, x, key=key):
                return f({"w": w, "x": [x]}, 1.5)[key]

            got = jac[key][name] if name == "w" else jac[key][name][0]
            want = _fd_jacobian(fk, [W, X], i)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=f"{key}/{name}")


def test_jacobian_has_aux_and_float32():
    x32 = X.astype(np.float32)
    jac, aux = jacrev(lambda x: (x * 3.0, {"m": x.mean()}), has_aux=True, backend="interpret")(x32)
    assert jac.dtype == np.float32
    np.testing.assert_allclose(jac, 3.0 * np.eye(3), rtol=1e-6)
    np.testing.assert_allclose(aux["m"], x32.mean(), rtol=1e-6)


def test_jacobian_picks_forward_or_reverse_from_sizes_and_says_which_in_the_dump():
    tall = trace(jit(jacobian(lambda x: x[:, None] * x)), X)  # 3 inputs, 9 outputs
    wide = trace(jit(jacobian(lambda w: w @ X)), W)  # 6 inputs, 2 outputs
    assert "# jacobian: forward mode (3 input elements, 9 output elements)" in str(tall)
    assert "# jacobian: reverse mode (6 input elements, 2 output elements)" in str(wide)


def test_jacobian_is_one_compiled_function_per_signature():
    calls = []

    def f(x):
        calls.append(1)
        return np.sin(x) * x

    jf = jacfwd(f, backend="interpret")
    for k in range(3):
        np.testing.assert_allclose(jf(X + k), np.diag(np.cos(X + k) * (X + k) + np.sin(X + k)))
    assert len(calls) == 1


# -- Hessians -------------------------------------------------------------------------------------


def _scalar(w, x):
    return np.sum(np.tanh(w @ x) ** 2) + np.sum(np.exp(0.3 * x) * x)


def test_hessian_matches_finite_differences_of_grad(backend):
    h = hessian(_scalar, argnums=1, backend=backend)(W, X)
    g = grad(_scalar, argnums=1, backend="interpret")
    np.testing.assert_allclose(h, _fd_jacobian(lambda x: g(W, x), [X], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-12)


def test_hessian_argnums_tuple_gives_nested_blocks_matching_fd():
    hs = hessian(_scalar, argnums=(0, 1), backend="interpret")(W, X)
    for a in range(2):
        ga = grad(_scalar, argnums=a, backend="interpret")
        for b in range(2):

            def gab(w, x, ga=ga):
                return ga(w, x)

            want = _fd_jacobian(gab, [W, X], b)
            np.testing.assert_allclose(hs[a][b], want, rtol=1e-6, atol=1e-8, err_msg=f"{a}{b}")


def test_reverse_over_reverse_equals_forward_over_reverse(backend):
    fwd_rev = hessian(_scalar, argnums=1, backend=backend)(W, X)
    rev_rev = jacrev(grad(_scalar, argnums=1), argnums=1, backend=backend)(W, X)
    np.testing.assert_allclose(rev_rev, fwd_rev, rtol=1e-10, atol=1e-12)


def test_hvp_equals_hessian_times_v_for_pytrees(backend):
    def f(p, scale):
        return scale * np.sum(np.sin(p["w"] @ p["x"]) ** 2) + np.sum(p["x"] ** 4)

    p = {"w": W, "x": X}
    v = {"w": R.normal(size=W.shape), "x": R.normal(size=X.shape)}
    got = hvp(f, backend=backend)(p, v, 0.7)
    H = hessian(f, backend="interpret")(p, 0.7)
    for a in ("w", "x"):
        want = sum(
            np.tensordot(H[a][b], v[b], axes=v[b].ndim) for b in ("w", "x")
        )  # (H v)_a = sum_b H_ab . v_b
        np.testing.assert_allclose(got[a], want, rtol=1e-10, atol=1e-12, err_msg=a)


def test_hessian_of_non_scalar_function_gives_grads_error():
    with pytest.raises(TypeError) as h_info:
        hessian(lambda x: x * 2.0, backend="interpret")(X)
    with pytest.raises(TypeError) as g_info:
        grad(lambda x: x * 2.0, backend="interpret")(X)
    assert str(h_info.value) == str(g_info.value)


def test_hvp_tangent_mismatch_names_the_argument():
    with pytest.raises(ValueError, match=r"hvp.*'x'.*\(2,\).*\(3,\)"):
        hvp(lambda x: np.sum(x**3), backend="interpret")(X, np.ones(2))


def test_jacobian_argnums_naming_an_int_argument_is_grads_error():
    with pytest.raises(TypeError, match=r"jacrev: argument 'n'"):
        jacrev(lambda x, n: x * n, argnums=1, backend="interpret")(X, 3)


def test_hessian_has_aux_and_python_float_argument():
    def f(x, s):
        return s * np.sum(x**3), {"mean": x.mean()}

    h, aux = hessian(f, has_aux=True, backend="interpret")(X, 2.0)
    np.testing.assert_allclose(h, np.diag(12.0 * X), rtol=1e-12)
    np.testing.assert_allclose(aux["mean"], X.mean(), rtol=1e-12)
    hs = hessian(lambda x, s: s * np.sum(x**3), argnums=1, backend="interpret")(X, 2.0)
    assert float(hs) == 0.0  # linear in s


@settings(deadline=None, max_examples=30)
@given(
    shapes=gst.mutually_broadcastable_shapes(2),
    op=st.sampled_from(["mul", "div", "lae", "where", "sum0", "matmul"]),
    data=st.data(),
)
def test_jacfwd_equals_jacrev_on_broadcasting_ops(shapes, op, data):
    a = data.draw(gst.arrays(shapes[0]))
    b = data.draw(gst.arrays(shapes[1], lo=0.5, hi=2.0))
    f = {
        "mul": lambda x, y: x * y * x,
        "div": lambda x, y: np.tanh(x) / y,
        "lae": np.logaddexp,
        "where": lambda x, y: np.where(x > 0, x * y, y * y),
        "sum0": lambda x, y: (x * y).sum(axis=0) if np.ndim(x * y) else x * y,
        "matmul": lambda x, y: np.tanh(x.reshape(-1, 1) @ y.reshape(1, -1)),
    }[op]
    fwd = jacfwd(f, argnums=(0, 1), backend="interpret")(a, b)
    rev = jacrev(f, argnums=(0, 1), backend="interpret")(a, b)
    for k in range(2):
        np.testing.assert_allclose(fwd[k], rev[k], rtol=1e-10, atol=1e-12)
