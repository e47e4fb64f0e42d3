"""while_loop and fori_loop: gradients against the closed form and finite differences, and the
errors for a bad cond, a changing carry and a missing bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compiler import fori_loop, grad, jit, value_and_grad, while_loop
from compiler.ir.graph import ShapeError
from runtime.loops import LoopError

THRESHOLD = 0.01


def decay(a, x0):
    """Geometric decay x <- a x until x < THRESHOLD; returns the final x and the sum of the
    iterates. With n steps: x_n = a^n x0 and the sum is x0 (1 - a^n) / (1 - a)."""

    def cond(s):
        return s[0] >= THRESHOLD

    def body(s):
        x, tot = s
        return x * a, tot + x

    x, tot = while_loop(cond, body, (x0, 0.0), max_steps=200)
    return x + tot


def decay_closed_form(a, x0):
    n = math.ceil(math.log(THRESHOLD / x0) / math.log(a))  # first n with a^n x0 < THRESHOLD
    xn = a**n * x0
    value = xn + x0 * (1 - a**n) / (1 - a)
    da = n * a ** (n - 1) * x0 + x0 * (-(n * a ** (n - 1)) * (1 - a) + (1 - a**n)) / (1 - a) ** 2
    dx0 = a**n + (1 - a**n) / (1 - a)
    return n, value, (da, dx0)


@pytest.mark.parametrize("backend", ["interpret", "numba"])
def test_while_loop_gradient_matches_closed_form(backend):
    a, x0 = 0.7, 1.3
    n, value, (da, dx0) = decay_closed_form(a, x0)
    # the trip count is fixed under a small perturbation: a^n x0 stays on the same side of
    # the threshold for a +- 1e-6 and x0 +- 1e-6 (checked here), so the function is smooth
    assert n == 14
    for da_, dx_ in ((1e-6, 0), (-1e-6, 0), (0, 1e-6), (0, -1e-6)):
        assert decay_closed_form(a + da_, x0 + dx_)[0] == n
    v, g = value_and_grad(decay, argnums=(0, 1), backend=backend)(a, x0)
    np.testing.assert_allclose(v, value, rtol=1e-12)
    np.testing.assert_allclose(g, (da, dx0), rtol=1e-10)
    eps = 1e-6
    fd_a = (decay_closed_form(a + eps, x0)[1] - decay_closed_form(a - eps, x0)[1]) / (2 * eps)
    fd_x = (decay_closed_form(a, x0 + eps)[1] - decay_closed_form(a, x0 - eps)[1]) / (2 * eps)
    np.testing.assert_allclose(g, (fd_a, fd_x), rtol=1e-6)


def test_while_loop_vector_carry_matches_finite_differences():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(3, 3)) * 0.3

    def f(M, v):
        def cond(s):
            return s[1] < 5

        def body(s):
            return (np.tanh(s[0] @ M + 0.1), s[1] + 1)

        out, _ = while_loop(cond, body, (v, 0), max_steps=10)
        return np.sum(out**2)

    v = rng.normal(size=3)
    g = grad(f, argnums=(0, 1), backend="interpret")(M, v)
    for k, arg in enumerate((M, v)):
        d = rng.normal(size=arg.shape)
        args = [M, v]
        args[k] = arg + 1e-6 * d
        hi = value_and_grad(f, backend="interpret")(*args)[0]
        args[k] = arg - 1e-6 * d
        lo = value_and_grad(f, backend="interpret")(*args)[0]
        np.testing.assert_allclose(np.sum(g[k] * d), (hi - lo) / 2e-6, rtol=1e-6)


def test_fori_loop_static_and_traced_bounds_agree_with_python_loop():
    def py(w):
        c = 0.3
        for i in range(2, 9):
            c = c * w + np.sin(c) * i
        return c

    def static(w):
        return fori_loop(2, 9, lambda i, c: c * w + np.sin(c) * i, 0.3)

    def traced(w, hi):
        return fori_loop(2, hi, lambda i, c: c * w + np.sin(c) * i, 0.3, max_steps=20)

    ref = grad(py, backend="interpret")(0.8)
    np.testing.assert_allclose(grad(static, backend="interpret")(0.8), ref, rtol=1e-12)
    np.testing.assert_allclose(grad(traced, backend="interpret")(0.8, np.int64(9)), ref, rtol=1e-12)


def test_while_loop_cond_not_a_scalar_bool_is_an_error():
    def f(x):
        return while_loop(lambda s: s > 1.0, lambda s: s * 0.5, x)

    with pytest.raises(
        TypeError, match=r"cond function `<lambda>` .*must return a scalar bool.*bool\[3\]"
    ):
        grad(lambda x: np.sum(f(x)), backend="interpret")(np.ones(3) * 4)
    with pytest.raises(TypeError, match=r"must return a scalar bool.*f64\[\]"):
        grad(lambda x: while_loop(lambda s: s * 1.0, lambda s: s * 0.5, x), backend="interpret")(
            4.0
        )


def test_loop_step_changing_the_carry_names_both_types_and_the_step():
    def shrink(c, x):
        return c.astype(np.float32), None

    with pytest.raises(TypeError) as info:
        from compiler import scan

        grad(lambda c: np.sum(scan(shrink, c, np.ones(3))[0]), backend="interpret")(np.ones(2))
    msg = str(info.value)
    assert "f64[2]" in msg and "f32[2]" in msg and "`shrink`" in msg
    assert f"test_while.py:{shrink.__code__.co_firstlineno}" in msg

    def grow(s):
        return np.concatenate([s, s])

    with pytest.raises(TypeError, match=r"`grow` .*f64\[2\].*f64\[4\]"):
        grad(lambda c: np.sum(while_loop(lambda s: s[0] > 9, grow, c)), backend="interpret")(
            np.ones(2)
        )


def test_while_loop_reverse_mode_needs_max_steps_and_enforces_it():
    def f(x, bound):
        return while_loop(lambda s: s > 0.5, lambda s: s * 0.5, x, max_steps=bound)

    with pytest.raises(TypeError, match=r"while_loop \(at .*test_while.py:\d+\).*max_steps"):
        grad(lambda x: f(x, None), backend="interpret")(8.0)
    assert grad(lambda x: f(x, 5), backend="interpret")(8.0) == 0.5**4
    with pytest.raises(LoopError, match="max_steps=3"):
        grad(lambda x: f(x, 3), backend="interpret")(8.0)
    # forward only: no bound needed
    assert jit(lambda x: f(x, None), backend="interpret")(8.0) == 0.5


def test_scan_xs_of_different_lengths_is_a_shape_error():
    from compiler import scan

    with pytest.raises(ShapeError, match="disagree"):
        grad(
            lambda a: scan(lambda c, x: (c + x[0] * x[1], None), a, (np.ones(3), np.ones(4)))[0],
            backend="interpret",
        )(1.0)


def test_fori_loop_body_indexes_a_closed_over_array_with_the_loop_index():
    obs = np.linspace(0.0, 1.0, 6)

    def f(w, obs):
        return fori_loop(0, 6, lambda i, e: e + (w * i - obs[i]) ** 2, 0.0)

    def f_loop(w, obs):
        e = 0.0
        for i in range(6):
            e = e + (w * i - obs[i]) ** 2
        return e

    g = grad(f, argnums=(0, 1), backend="interpret")(0.3, obs)
    ref = grad(f_loop, argnums=(0, 1), backend="interpret")(0.3, obs)
    np.testing.assert_allclose(g[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(g[1], ref[1], rtol=1e-12)
