"""End to end through the public API on each backend (the `backend` fixture): gradients vs
hand-written NumPy backprop or finite differences, and the `examples/` scripts' losses."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from compiler import grad, jit, value_and_grad, vjp
from tests.autodiff import test_mlp as mlp
from tests.helpers import fd_grad

# end to end through compiled code (the suite default is the NumPy tier, tests/conftest.py)
pytestmark = pytest.mark.compiled

ROOT = Path(__file__).resolve().parents[2]
R = np.random.default_rng(17)


def _example(name: str):
    spec = importlib.util.spec_from_file_location(
        f"gradc_example_{name}", ROOT / "examples" / f"{name}.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_e2e_walkthrough_exact(backend):
    f = lambda w, x, b, y: (w * x + b - y) ** 2  # noqa: E731
    value, grads = value_and_grad(f, argnums=(0, 1, 2, 3), backend=backend)(2.0, 3.0, 1.0, 4.0)
    assert value == 9.0
    assert grads == (18.0, 12.0, 6.0, -6.0)
    assert all(type(g) is float for g in grads)


def test_e2e_mlp_matches_hand_backprop(backend):
    rng = np.random.default_rng(0)
    params = mlp._params(rng)
    x, onehot = mlp._data(rng)
    value, grads = value_and_grad(mlp.loss, backend=backend)(params, x, onehot)
    want_value, want, _ = mlp.backprop(params, x, onehot)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    for name in want:
        for p in ("W", "b"):
            np.testing.assert_allclose(grads[name][p], want[name][p], rtol=1e-9, atol=1e-12)


def _broadcast_reduce(a, b, c):
    z = np.tanh(a[:, None, :] * b + c)  # (3,1,4) * (5,4) + (1,) -> (3,5,4)
    m = z.max(axis=(0, 2), keepdims=True)
    return np.sum(np.exp(z - m) * z.mean(axis=1, keepdims=True)) + np.sum(c**2)


def _inplace(a, b, c):
    z = np.zeros((4, 4))
    z[1:] = a[:, :4] * c[0]
    np.add.at(z, [0, 0, 2], b[:3, :4])
    z[::2] *= 2.0
    r = z[1:3]
    r += np.sin(a[:2, :4])
    return np.sum(z * z)


@pytest.mark.parametrize("f", [_broadcast_reduce, _inplace], ids=lambda f: f.__name__.strip("_"))
def test_e2e_gradients_match_finite_differences(backend, f):
    args = [R.normal(size=(3, 4)), R.normal(size=(5, 4)), R.normal(size=(1,))]
    grads = grad(f, argnums=(0, 1, 2), backend=backend)(*args)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g, fd_grad(f, args, i), rtol=1e-6, atol=1e-8, err_msg=str(i))


def test_e2e_float32_stays_float32(backend):
    x = R.normal(size=(6, 3)).astype(np.float32)
    w = R.normal(size=(3, 2)).astype(np.float32)
    v, (gx, gw) = value_and_grad(
        lambda x, w: np.mean(np.tanh(x @ w) ** 2) * 0.5, argnums=(0, 1), backend=backend
    )(x, w)
    assert np.asarray(v).dtype == np.float32
    assert gx.dtype == np.float32 and gw.dtype == np.float32
    t = np.tanh(x.astype(np.float64) @ w)
    d = t * (1 - t**2) / t.size
    np.testing.assert_allclose(gw, x.T.astype(np.float64) @ d, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gx, d @ w.T.astype(np.float64), rtol=1e-4, atol=1e-6)


def test_e2e_vjp_and_jit(backend):
    m = R.normal(size=(3, 4))
    out, pullback = vjp(lambda a: np.exp(a) @ m.T, R.normal(size=(2, 4)) * 0 + 0.5, backend=backend)
    np.testing.assert_allclose(out, np.exp(0.5) * np.ones((2, 4)) @ m.T, rtol=1e-12)
    ct = R.normal(size=(2, 3))
    (g,) = pullback(ct)
    np.testing.assert_allclose(g, np.exp(0.5) * (ct @ m), rtol=1e-12)
    f = jit(lambda a: np.maximum(a, 0.0) @ m, backend=backend)
    x = R.normal(size=(5, 3))
    np.testing.assert_allclose(f(x), np.maximum(x, 0.0) @ m, rtol=1e-12)


def test_e2e_reuse_with_new_values_and_batch_size(backend):
    vg = value_and_grad(lambda w, x: np.sum(np.tanh(x @ w)), backend=backend)
    w = R.normal(size=(4, 2))
    for n in (3, 3, 7):
        x = R.normal(size=(n, 4))
        v, g = vg(w, x)
        t = np.tanh(x @ w)
        np.testing.assert_allclose(v, t.sum(), rtol=1e-12)
        np.testing.assert_allclose(g, x.T @ (1 - t**2), rtol=1e-10)


# -- the examples/ scripts' losses ----------------------------------------------------------------


def test_e2e_example_mlp_sgd_gradient_matches_fd(backend):
    ex = _example("mlp_sgd")
    rng = np.random.default_rng(0)
    params = ex.init(rng, [4, 5, 5, 2])
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    g = grad(ex.loss, backend=backend)(params, x, y)
    assert set(g) == set(params)
    for k in params:

        def f(leaf, k=k):
            return ex.loss({**params, k: leaf}, x, y)

        np.testing.assert_allclose(g[k], fd_grad(f, [params[k]], 0), rtol=1e-6, atol=1e-9)


def test_e2e_example_logreg_gradient_matches_fd(backend):
    ex = _example("logreg_scipy")
    X, t = ex.make_data(np.random.default_rng(0), n=20, d=3)
    theta = np.random.default_rng(1).normal(size=4)
    v, g = value_and_grad(ex.loss, backend=backend)(theta, X, t)
    np.testing.assert_allclose(v, ex.loss(theta, X, t), rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(ex.loss, [theta, X, t], 0), rtol=1e-6, atol=1e-9)


def test_e2e_example_seed_walkthrough_loss(backend):
    ex = _example("seed_walkthrough")
    v, gs = value_and_grad(ex.loss, argnums=(0, 1, 2, 3), backend=backend)(2.0, 3.0, 1.0, 4.0)
    assert (v, gs) == (9.0, (18.0, 12.0, 6.0, -6.0))
