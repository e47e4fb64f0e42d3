"""Random draws inside differentiated functions: fresh on every call, NumPy's own numbers from
the same generator in the same order, constants for the gradient; clear errors otherwise."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

from compiler import TracerError, grad, jit, trace, value_and_grad
from compiler.interpret import interpret
from tests.helpers import fd_grad

X = np.random.default_rng(5).normal(size=(4,))


def _noisy(x, rng):
    n = rng.standard_normal(4)
    u = rng.random((4,))
    k = rng.integers(0, 4, size=3)
    m = rng.normal(1.0, 2.0, size=4) + rng.uniform(-1, 1, 4)
    return np.sum(np.tanh(x * n + u) * m) + np.sum(x[k] ** 2)


@pytest.mark.parametrize("backend", ["interpret", "numba"])
def test_draws_generator_in_closure_fresh_each_call_same_numbers_as_numpy(backend):
    rng = np.random.default_rng(0)
    ref = copy.deepcopy(rng)

    def loss(x):
        return _noisy(x, rng)

    vg = value_and_grad(loss, backend=backend)
    for _ in range(3):  # each call draws anew, in the order NumPy would
        v, g = vg(X)
        state = copy.deepcopy(ref)
        want = _noisy(X, ref)
        np.testing.assert_allclose(v, want, rtol=1e-12)
        # the gradient treats the draws as constants: finite differences on a frozen copy
        fd = fd_grad(lambda x, s=state: _noisy(x, copy.deepcopy(s)), [X], 0)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    assert rng.bit_generator.state == ref.bit_generator.state


def test_draws_generator_as_argument_and_tracing_does_not_draw():
    rng = np.random.default_rng(1)
    before = copy.deepcopy(rng.bit_generator.state)
    g = trace(_noisy, X, rng)
    assert rng.bit_generator.state == before  # tracing consumed nothing
    ref = np.random.default_rng(1)
    np.testing.assert_allclose(interpret(g, X, rng), _noisy(X, ref), rtol=1e-12)
    np.testing.assert_allclose(interpret(g, X, rng), _noisy(X, ref), rtol=1e-12)
    gx = grad(_noisy, backend="interpret")(X, rng)
    state = copy.deepcopy(ref)
    _noisy(X, ref)
    np.testing.assert_allclose(
        gx, fd_grad(lambda x: _noisy(x, copy.deepcopy(state)), [X], 0), rtol=1e-6, atol=1e-8
    )


def _legacy(x):
    np.random.seed(3)
    a = np.random.normal(size=4)
    b = np.random.rand(4) + np.random.randn()
    return np.sum(x * a * b)


def _legacy_unseeded(x):
    return np.sum(x * np.random.standard_normal(4))


def test_draws_legacy_np_random_functions_and_seed_are_replayed():
    f = jit(_legacy, backend="interpret")
    want = _legacy(X)
    np.testing.assert_allclose([f(X), f(X)], [want, want], rtol=1e-12)  # seed replayed
    np.random.seed(7)
    want = [_legacy_unseeded(X) for _ in range(2)]
    np.random.seed(7)
    g = jit(_legacy_unseeded, backend="interpret")
    np.testing.assert_allclose([g(X), g(X)], want, rtol=1e-12)


def test_draws_generators_made_inside_the_function():
    def seeded(x):
        return np.sum(x * np.random.default_rng(4).normal(size=4))

    np.testing.assert_allclose(jit(seeded, backend="interpret")(X), seeded(X), rtol=1e-12)

    def unseeded(x):
        return x * np.random.default_rng().normal(size=4)

    f = jit(unseeded, backend="interpret")
    a, b = f(X), f(X)
    assert a.shape == (4,) and not np.allclose(a, b)  # fresh entropy on every call


def test_draws_with_traced_parameters_are_reparameterised():
    def f(p, rng):
        return np.sum(rng.normal(p[0], np.exp(p[1]), size=3) + rng.uniform(p[2], p[3], size=3))

    p = np.array([0.3, -0.2, -1.0, 2.0])
    rng, ref = np.random.default_rng(9), np.random.default_rng(9)
    v, g = value_and_grad(f, backend="interpret")(p, rng)
    state = copy.deepcopy(ref)
    np.testing.assert_allclose(v, f(p, ref), rtol=1e-12)
    fd = fd_grad(lambda q: f(q, copy.deepcopy(state)), [p], 0)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_draws_float32_and_scalar_draws_keep_numpy_dtypes():
    rng = np.random.default_rng(2)

    def f(x):
        return x * rng.standard_normal(4, dtype=np.float32) + rng.random()

    x32 = X.astype(np.float32)
    out = jit(f, backend="interpret")(x32)
    ref = np.random.default_rng(2)
    want = x32 * ref.standard_normal(4, dtype=np.float32) + ref.random()
    assert out.dtype == want.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_draws_that_cannot_be_reproduced_name_the_call_and_the_fix():
    rng = np.random.default_rng(0)
    with pytest.raises(TracerError, match=r"rng.gamma\(\.\.\.\) with traced parameters.*argument"):
        trace(lambda x: rng.gamma(np.exp(x)), X)
    with pytest.raises(TracerError, match="rng.permutation"):
        trace(lambda x: rng.shuffle(x), X)


class _Model:
    """Holds a generator; its methods run outside the traced view."""

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def noisy(self, x):
        return x + self.rng.normal(size=x.shape)

    def legacy(self, x):
        return x * np.random.rand(*x.shape)


_MODEL = _Model()


def test_draws_outside_the_traced_view_fail_instead_of_freezing():
    before = _MODEL.rng.bit_generator.state
    with pytest.raises(TracerError, match="drew numbers while the function was traced"):
        grad(lambda x: np.sum(_MODEL.noisy(x) ** 2), backend="interpret")(X)
    assert _MODEL.rng.bit_generator.state != before  # the method did draw (at trace time)
    if threading.active_count() == 1:
        with pytest.raises(TracerError, match="np.random's global generator drew numbers"):
            trace(lambda x: np.sum(_MODEL.legacy(x)), X)
    else:  # another thread may draw from the global generator meanwhile: not checked then
        trace(lambda x: np.sum(_MODEL.legacy(x)), X)


def test_draws_inside_forward_mode_and_nested_transforms():
    from compiler import hessian, jvp

    rng, ref = np.random.default_rng(12), np.random.default_rng(12)

    def f(x):
        return np.sum(np.sin(x) * rng.standard_normal(4))

    v = np.ones(4)
    for _ in range(2):
        out, tangent = jvp(f, (X,), (v,), backend="interpret")
        n = ref.standard_normal(4)
        np.testing.assert_allclose(out, np.sum(np.sin(X) * n), rtol=1e-12)
        np.testing.assert_allclose(tangent, np.sum(np.cos(X) * n), rtol=1e-12)
    h = hessian(f, backend="interpret")(X)
    np.testing.assert_allclose(h, np.diag(-np.sin(X) * ref.standard_normal(4)), atol=1e-12)
