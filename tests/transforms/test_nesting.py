"""Every transformation nests with every other, in any order, checked against finite
differences of the inner transformation; and `vjp`'s backward is compiled once per signature."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import grad, jacfwd, jvp, value_and_grad, vjp
from tests.helpers import fd_directional, fd_grad

R = np.random.default_rng(5)
X = R.normal(size=(3,))
C = R.normal(size=(3,))
T = R.normal(size=(3,))


def _f(x):
    return np.sin(x) * np.exp(0.5 * x) + x**3


def _loss(x):
    return np.sum(np.tanh(x) * x**2)


def _pull(x):
    """<c, J_f(x)^T ...>: the pullback of f at x applied to C (first-order, for nesting)."""
    return vjp(_f, x)[1](C)[0]


def test_grad_of_vjp(backend):
    h = lambda x: np.sum(_pull(x) * T)  # noqa: E731
    np.testing.assert_allclose(
        grad(h, backend=backend)(X), fd_grad(h, [X], 0), rtol=1e-6, atol=1e-8
    )


def test_vjp_of_vjp(backend):
    out, pullback = vjp(_pull, X, backend=backend)
    np.testing.assert_allclose(out, _pull(X), rtol=1e-12)
    (g,) = pullback(T)
    np.testing.assert_allclose(g, fd_grad(lambda x: np.sum(_pull(x) * T), [X], 0), rtol=1e-6)


def test_jvp_of_grad_and_grad_of_jvp(backend):
    gl = grad(_loss)
    _, tan = jvp(gl, (X,), (T,), backend=backend)
    np.testing.assert_allclose(tan, fd_directional(gl, [X], [T]), rtol=1e-6, atol=1e-8)

    def h(x):
        return jvp(_loss, (x,), (T,))[1]

    np.testing.assert_allclose(
        grad(h, backend=backend)(X), fd_grad(h, [X], 0), rtol=1e-6, atol=1e-8
    )


def test_jvp_of_jvp_and_vjp_of_jvp(backend):
    def d1(x):
        return jvp(_f, (x,), (T,))[1]

    _, d2 = jvp(d1, (X,), (C,), backend=backend)
    np.testing.assert_allclose(d2, fd_directional(d1, [X], [C]), rtol=1e-6, atol=1e-8)
    _, pullback = vjp(d1, X, backend=backend)
    np.testing.assert_allclose(
        pullback(C)[0], fd_grad(lambda x: np.sum(d1(x) * C), [X], 0), rtol=1e-6, atol=1e-8
    )


def test_grad_of_grad_of_grad_vector(backend):
    # d/dx sum(d/dx sum(d/dx loss)) checked against FD of the (already checked) second order
    def g2(x):
        return np.sum(grad(lambda y: np.sum(grad(_loss)(y)))(x))

    np.testing.assert_allclose(
        grad(g2, backend=backend)(X), fd_grad(g2, [X], 0), rtol=1e-5, atol=1e-7
    )


def test_value_and_grad_of_jacobian_entry(backend):
    def h(x):
        return np.sum(jacfwd(_f)(x) * np.outer(C, T))

    v, g = value_and_grad(h, backend=backend)(X)
    np.testing.assert_allclose(v, h(X), rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(h, [X], 0), rtol=1e-6, atol=1e-8)


def test_pullback_of_an_eager_vjp_can_be_differentiated():
    # the pullback made outside any trace, then called inside grad
    _, pullback = vjp(_f, X, backend="interpret")
    g = grad(lambda c: np.sum(pullback(c)[0] ** 2), backend="interpret")(C)
    np.testing.assert_allclose(
        g, fd_grad(lambda c: np.sum(pullback(c)[0] ** 2), [C], 0), rtol=1e-6, atol=1e-8
    )


def test_pullback_used_outside_its_trace_is_a_clear_error():
    leaked = []

    def f(x):
        out, pullback = vjp(np.sin, x)
        leaked.append(pullback)
        return np.sum(out)

    grad(f, backend="interpret")(X)
    with pytest.raises(RuntimeError, match="outside the traced function"):
        leaked[0](C)


def test_vjp_backward_is_compiled_once_per_signature():
    calls = []

    def f(x):
        calls.append(1)  # Python runs only while tracing
        return np.tanh(x) * 2.0

    for k in range(3):
        out, pullback = vjp(f, X + k, backend="interpret")
        np.testing.assert_allclose(pullback(C)[0], 2.0 * (1 - np.tanh(X + k) ** 2) * C)
    assert len(calls) == 1
    vjp(f, np.ones(5), backend="interpret")  # a new shape: a new signature, traced once more
    assert len(calls) == 2
