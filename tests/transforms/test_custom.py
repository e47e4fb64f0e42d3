"""`custom_vjp`, `custom_jvp` and `stop_gradient` used by grad, value_and_grad, vjp, jvp,
Jacobians and nested transformations; and the errors for rules that return the wrong thing."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import (
    custom_jvp,
    custom_vjp,
    grad,
    hessian,
    jacrev,
    jvp,
    stop_gradient,
    trace,
    value_and_grad,
    vjp,
)
from tests.helpers import fd_directional, fd_grad

R = np.random.default_rng(77)
X = R.normal(size=(4,))
T = R.normal(size=(4,))


# -- a numerically stable log-sum-exp: the naive body overflows, the rule does not ----------------


@custom_jvp
def lse(x):
    m = np.max(x)
    return np.log(np.sum(np.exp(x - m))) + m


@lse.defjvp
def _lse_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    p = np.exp(x - lse(x))  # softmax, from the (stable) output
    return lse(x), np.sum(p * t)


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


BIG = X + 1000.0


def test_custom_jvp_used_by_grad_value_and_grad_vjp_and_jvp(backend):
    want = _softmax(BIG)
    np.testing.assert_allclose(grad(lse, backend=backend)(BIG), want, rtol=1e-12)
    v, g = value_and_grad(lse, backend=backend)(BIG)
    np.testing.assert_allclose(g, want, rtol=1e-12)
    np.testing.assert_allclose(v, lse(BIG), rtol=1e-15)
    _, pullback = vjp(lse, BIG, backend=backend)
    np.testing.assert_allclose(pullback(2.0)[0], 2.0 * want, rtol=1e-12)
    _, tan = jvp(lse, (BIG,), (T,), backend=backend)
    np.testing.assert_allclose(tan, np.sum(want * T), rtol=1e-12)


def test_custom_jvp_second_order_matches_fd_of_its_gradient():
    h = hessian(lse, backend="interpret")(X)
    want = np.diag(_softmax(X)) - np.outer(_softmax(X), _softmax(X))
    np.testing.assert_allclose(h, want, rtol=1e-10, atol=1e-12)


def test_custom_jvp_rule_is_what_gets_differentiated():
    # a deliberately "wrong" rule (3x the true tangent) shows that every transform uses it
    @custom_jvp
    def f(x):
        return np.sin(x)

    @f.defjvp
    def _(primals, tangents):
        return f(primals[0]), 3.0 * np.cos(primals[0]) * tangents[0]

    want = 3.0 * np.cos(X)
    np.testing.assert_allclose(grad(lambda x: np.sum(f(x)), backend="interpret")(X), want)
    np.testing.assert_allclose(jvp(f, (X,), (np.ones(4),), backend="interpret")[1], want)
    np.testing.assert_allclose(jacrev(f, backend="interpret")(X), np.diag(want))


# -- a clipped gradient: custom_vjp ---------------------------------------------------------------


@custom_vjp
def clip_gradient(x, lo, hi):
    return x


def _clip_fwd(x, lo, hi):
    return x, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return (np.clip(g, lo, hi), None, None)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def _scaled(x):
    return np.sum(clip_gradient(x, -1.0, 1.0) * np.array([0.5, 3.0, -4.0, 1.0]))


def test_custom_vjp_used_by_grad_value_and_grad_and_vjp(backend):
    want = np.array([0.5, 1.0, -1.0, 1.0])
    np.testing.assert_allclose(grad(_scaled, backend=backend)(X), want)
    v, g = value_and_grad(_scaled, backend=backend)(X)
    np.testing.assert_allclose(v, _scaled(X), rtol=1e-12)
    np.testing.assert_allclose(g, want)
    _, pullback = vjp(lambda x: clip_gradient(x, -1.0, 1.0), X, backend=backend)
    np.testing.assert_allclose(pullback(np.array([0.5, 3.0, -4.0, 1.0]))[0], want)


def test_custom_vjp_under_jvp_uses_the_rule_transposed():
    # an implicit-function-style rule whose VJP is a linear map: the JVP must be its transpose
    A = R.normal(size=(4, 4)) + 4 * np.eye(4)

    @custom_vjp
    def solve(b):  # pretend black box: x with A x = b, by a few Jacobi sweeps
        x = b / np.diag(A)
        for _ in range(60):
            x = (b - (A - np.diag(np.diag(A))) @ x) / np.diag(A)
        return x

    ainv = np.linalg.inv(A)
    solve.defvjp(lambda b: (solve(b), None), lambda _, g: (ainv.T @ g,))
    _, tan = jvp(solve, (X,), (T,), backend="interpret")
    np.testing.assert_allclose(tan, ainv @ T, rtol=1e-10)
    np.testing.assert_allclose(jacrev(solve, backend="interpret")(X), ainv, rtol=1e-10)


def test_custom_vjp_multiple_outputs_and_pytree_arguments_match_fd():
    @custom_vjp
    def f(p, s):
        return {"a": np.sin(p["x"]) * s, "b": np.sum(p["y"] ** 2)}

    def fwd(p, s):
        return f(p, s), (p, s)

    def bwd(res, ct):
        p, s = res
        gx = ct["a"] * np.cos(p["x"]) * s
        gy = ct["b"] * 2.0 * p["y"]
        gs = np.sum(ct["a"] * np.sin(p["x"]))
        return ({"x": gx, "y": gy}, gs)

    f.defvjp(fwd, bwd)

    def loss(x, y, s):
        out = f({"x": x, "y": y}, s)
        return np.sum(out["a"] ** 2) + out["b"] * 3.0

    args = [X, T, 1.3]
    gs = grad(loss, argnums=(0, 1, 2), backend="interpret")(*args)
    for i in range(3):
        np.testing.assert_allclose(gs[i], fd_grad(loss, args, i), rtol=1e-6, atol=1e-8)


def test_custom_rules_inside_grad_of_grad():
    # grad(grad(.)) applies the rule at both levels; d2/dt2 lse([t, 2t]) by FD of the first
    d1 = grad(lambda t: lse(np.stack([t, 2.0 * t])), backend="interpret")
    d2 = grad(grad(lambda t: lse(np.stack([t, 2.0 * t]))), backend="interpret")
    for t in (0.3, -1.1):
        assert d2(t) == pytest.approx(fd_directional(d1, [t], [1.0]), rel=1e-6)


def test_custom_call_appears_as_one_node_in_the_traced_graph():
    dump = str(trace(lambda x: lse(x) * 2.0, X))
    assert "custom" in dump and "custom_jvp:lse[0]" in dump


# -- stop_gradient --------------------------------------------------------------------------------


def test_stop_gradient_cuts_the_gradient_in_every_transform(backend):
    def f(x):  # d/dx = stop(x) * 2x; d2/dx2 = 2 stop(x), as the stopped factor is a constant
        return np.sum(stop_gradient(x) * x**2)

    np.testing.assert_allclose(grad(f, backend=backend)(X), 2.0 * X * X, rtol=1e-12)
    _, tan = jvp(lambda x: stop_gradient(x) * x, (X,), (T,), backend=backend)
    np.testing.assert_allclose(tan, X * T)
    h = hessian(f, backend=backend)(X)
    np.testing.assert_allclose(h, np.diag(2.0 * X), rtol=1e-12)


def test_stop_gradient_outside_a_transformation_is_the_identity():
    tree = {"a": X, "n": 3}
    assert stop_gradient(tree) is tree


# -- bad rules ------------------------------------------------------------------------------------


def test_custom_vjp_wrong_number_of_cotangents_names_the_rule_and_the_count():
    @custom_vjp
    def mul(x, y):
        return x * y

    def bwd_one(res, g):
        return (g * res[1],)

    mul.defvjp(lambda x, y: (x * y, (x, y)), bwd_one)
    with pytest.raises(TypeError) as info:
        grad(lambda x: np.sum(mul(x, x)), backend="interpret")(X)
    msg = str(info.value)
    assert "bwd_one" in msg and "mul" in msg and "1 cotangents" in msg and "tuple of 2" in msg


def test_custom_vjp_wrong_cotangent_shape_names_the_argument_and_shapes():
    @custom_vjp
    def scale(x, w):
        return x * w

    def bwd_bad(res, g):
        return (g, np.ones(2))

    scale.defvjp(lambda x, w: (x * w, None), bwd_bad)
    with pytest.raises(ValueError) as info:
        grad(lambda x: np.sum(scale(x, x)), backend="interpret")(X)
    msg = str(info.value)
    assert "bwd_bad" in msg and "'w'" in msg and "(2,)" in msg and "(4,)" in msg


def test_custom_jvp_wrong_tangent_shape_names_the_rule():
    @custom_jvp
    def f(x):
        return np.sin(x)

    @f.defjvp
    def bad_rule(primals, tangents):
        return f(primals[0]), np.sum(tangents[0])

    with pytest.raises(ValueError, match=r"bad_rule.*shape \(\).*expected \(4,\)"):
        jvp(f, (X,), (T,), backend="interpret")


def test_custom_function_without_a_rule_and_with_closed_over_tracers_are_clear_errors():
    @custom_vjp
    def f(x):
        return x * 2.0

    with pytest.raises(TypeError, match="no rule yet.*defvjp"):
        grad(lambda x: np.sum(f(x)), backend="interpret")(X)

    def outer(x):
        @custom_jvp
        def g(y):
            return y * x  # reads the outer traced x

        g.defjvp(lambda p, t: (g(*p), t[0] * x))
        return np.sum(g(x))

    with pytest.raises(TypeError, match="closure.*pass that value as an argument"):
        grad(outer, backend="interpret")(X)


def test_nondiff_argnums_follow_jax_conventions():
    from functools import partial

    @partial(custom_vjp, nondiff_argnums=(1,))
    def clip_grad(x, c):
        return x * 1.0

    def bwd(c, res, g):  # nondiff arguments first; cotangents only for the others
        return (np.clip(g, -c, c),)

    clip_grad.defvjp(lambda x, c: (x * 1.0, None), bwd)
    w = np.array([1.0, -2.0, 0.1, 0.7])
    g = grad(lambda x: np.sum(clip_grad(x, 0.5) * w), backend="interpret")(X)
    np.testing.assert_allclose(g, np.clip(w, -0.5, 0.5))

    @partial(custom_jvp, nondiff_argnums=(0,))
    def apply(f, x):
        return f(x)

    @apply.defjvp
    def _(f, primals, tangents):  # a Python function as the nondiff argument
        return apply(f, primals[0]), 2.0 * tangents[0]

    _, tan = jvp(lambda x: apply(np.sin, x), (X,), (T,), backend="interpret")
    np.testing.assert_allclose(tan, 2.0 * T)

    clip_grad.defvjp(lambda x, c: (x * 1.0, None), lambda c, res, g: (g, g))
    with pytest.raises(TypeError, match=r"expected a tuple of 1, one per differentiable"):
        grad(lambda x: np.sum(clip_grad(x, 0.5)), backend="interpret")(X)
