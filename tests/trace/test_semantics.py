"""Regression tests for issue #18: NumPy's copy-versus-view rules, immutable scalars, weak
Python floats through ufuncs, and vjp with the batch pass. Every expected value is NumPy's own
result on the same function, every gradient is checked against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import jit, value_and_grad, vjp
from tests.helpers import fd_grad
from tests.robustness.differential import fd_grad_typed

I = "interpret"


def _check_value_and_grad(f, *args, backend=I):
    """gradc's value equals NumPy's, its gradients equal finite differences (every arg)."""
    argnums = tuple(range(len(args)))
    value, grads = value_and_grad(f, argnums=argnums, backend=backend)(*args)
    want = f(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    np.testing.assert_allclose(value, want, rtol=1e-12)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g, fd_grad_typed(f, args, i), rtol=1e-6, atol=1e-6)


# -- 1. reshape / ravel of a non-contiguous array is a copy (as NumPy's strides decide) -----


def test_semantics_issue_repro_transposed_reshape_is_a_copy():
    def f(x):
        v = x.copy()
        w = v.T.reshape(-1)  # NumPy: a copy
        w[0] = 100.0
        return np.sum(v)

    x = np.arange(6.0).reshape(2, 3)
    value, g = value_and_grad(f)(x)  # the compiled backend, as in the issue
    assert value == f(x.copy()) == 15.0
    np.testing.assert_allclose(g, fd_grad(f, [x], 0), atol=1e-6)


COPIES = {  # each a copy in NumPy: the write must not reach v
    "T.reshape": lambda v: v.T.reshape(-1),
    "T.ravel": lambda v: v.T.ravel(),
    "np.reshape(T)": lambda v: np.reshape(v.T, (4, 3)),
    "rows[::2].reshape": lambda v: v[::2].reshape(-1),
    "cols[::2].ravel": lambda v: v[:, ::2].ravel(),
    "F result ravel": lambda v: (v.T * 1.0).ravel(),
    "np.copy(T) ravel": lambda v: np.copy(v.T).ravel(),
    "col.ravel": lambda v: v[:, :1].ravel(),
    "1-D strided ravel": lambda v: v[0, ::2].ravel(),
    "flatten": lambda v: v.flatten(),
    "positive": lambda v: +v,
    "np.positive": lambda v: np.positive(v),
}
VIEWS = {  # each a view in NumPy: the write must reach v
    "reshape": lambda v: v.reshape(-1),
    "ravel": lambda v: np.ravel(v),
    "T.T.ravel": lambda v: v.T.T.ravel(),
    "rows[:2].reshape": lambda v: v[:2].reshape(-1),
    "col.reshape": lambda v: v[:, :1].reshape(-1),
    "1-D strided reshape": lambda v: v[0, ::2].reshape(-1),
    "T.reshape same shape": lambda v: v.T.reshape(3, 4),
    "expand_dims(T)": lambda v: np.expand_dims(v.T, 0),
    "T[None].squeeze": lambda v: np.squeeze(v.T[None]),
}


@pytest.mark.parametrize("name", sorted(COPIES) + sorted(VIEWS))
def test_semantics_write_through_reshape_matches_numpy(name):
    make = {**COPIES, **VIEWS}[name]

    def f(x):
        v = x * 1.0
        w = make(v)
        w[..., 0] = w[..., 0] * 3.0 + 1.0
        w *= 2.0
        return np.sum(v * v) + np.sum(w * x.sum())

    x = np.linspace(-1.0, 2.0, 12).reshape(4, 3)
    _check_value_and_grad(f, x)
    assert np.shares_memory(make(x), x) == (name in VIEWS)  # the table above is NumPy's


def test_semantics_elementwise_result_keeps_the_transposed_layout():
    def f(x):
        u = x.T * 1.0  # Fortran-ordered in NumPy
        a = u.ravel()  # so this is a copy...
        b = u.T.ravel()  # ...and this a view of u
        a += 10.0
        b *= 3.0
        return u, a, b

    x = np.arange(6.0).reshape(2, 3)
    for got, want in zip(jit(f, backend=I)(x), f(x)):
        np.testing.assert_array_equal(got, want)


# -- 2. in-place operators on NumPy scalars only rebind ---------------------------------------


def test_semantics_issue_repro_full_reduction_is_an_immutable_scalar():
    def f(x):
        t = x.sum()
        u = t
        t += 1.0
        return u

    x = np.arange(3.0)
    assert jit(f)(x) == f(x) == 3.0
    _check_value_and_grad(f, x)


def test_semantics_issue_repro_numpy_scalar_argument_is_immutable():
    def g(x, s):
        t = s
        t -= 1.0
        return np.sum(x * s)

    x, s = np.arange(3.0), np.float64(2.0)
    assert jit(g, backend=I)(x, s) == g(x, s) == 6.0
    _check_value_and_grad(g, x, s)
    _check_value_and_grad(g, x, 2.0)  # a Python float argument too


SCALARS = {
    "x[i, j]": lambda x: x[1, 2],
    "np.max": lambda x: np.max(x),
    "mean": lambda x: x.mean(),
    "1-D @ 1-D": lambda x: x[0] @ x[1],
    "np.exp(scalar)": lambda x: np.exp(x.sum() * 0.1),
}


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_semantics_scalar_aliases_do_not_change(name):
    def f(x):
        t = SCALARS[name](x)
        u = t
        t *= 3.0
        u += 1.0
        return t * 2.0 + u

    _check_value_and_grad(f, np.linspace(0.5, 1.5, 12).reshape(2, 6))


def test_semantics_zero_d_arrays_stay_mutable():
    def f(x):
        t = x.reshape(())  # a 0-d array view, not a scalar
        u = t
        t += 1.0
        z = np.zeros(())
        w = z
        z += x[0]
        return u * 2.0 + w + x

    x = np.array([1.5])
    np.testing.assert_array_equal(jit(f, backend=I)(x), f(x.copy()))
    _check_value_and_grad(lambda x: np.sum(f(x)), x)


def test_semantics_item_assignment_into_a_numpy_scalar_is_an_error():
    def f(x):
        t = x.sum()
        t[...] = 1.0
        return t

    with pytest.raises(TypeError, match="does not support item assignment"):
        f(np.ones(2))  # NumPy refuses it too
    with pytest.raises(TypeError, match="does not support item assignment"):
        jit(f, backend=I)(np.ones(2))


# -- 3. vjp with the batch pass and a transpose -------------------------------------------------


def test_semantics_issue_repro_vjp_with_batch_and_transpose():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))

    def f(x):
        return np.sum(x @ y) + np.sum(x.T @ x)

    out, pullback = vjp(f, x)
    (g,) = pullback(np.float64(0.5))
    np.testing.assert_allclose(out, f(x), rtol=1e-12)
    np.testing.assert_allclose(g, 0.5 * fd_grad(f, [x], 0), rtol=1e-6, atol=1e-6)
    out_nb, pullback_nb = vjp(f, x, disable=("batch",))
    np.testing.assert_allclose(pullback_nb(np.float64(0.5))[0], g, rtol=1e-12)


# -- 4. a Python float through a ufunc is a strong float64 ------------------------------------


UFUNC_OF_FLOAT = {
    "np.exp": lambda x, s: x * np.exp(s),
    "np.abs": lambda x, s: np.abs(s) * x,
    "np.tanh": lambda x, s: x - np.tanh(s),
    "np.multiply": lambda x, s: x * np.multiply(s, 2.0),
    "np.sum": lambda x, s: x * np.sum(s),
    "operators stay weak": lambda x, s: x * (s * 2.0 + 1.0) - abs(s),
    "np.float64 constant": lambda x, s: x * np.float64(0.5) * s,
}


@pytest.mark.parametrize("name", sorted(UFUNC_OF_FLOAT))
def test_semantics_python_float_through_ufunc_promotes_like_numpy(name):
    f = UFUNC_OF_FLOAT[name]
    x = np.linspace(0.1, 1.0, 4, dtype=np.float32)
    want = f(x, 0.5)
    got = jit(f, backend=I)(x, 0.5)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)
    loss = lambda x, s: np.sum(f(x, s))  # noqa: E731
    _, (gx, gs) = value_and_grad(loss, argnums=(0, 1), backend=I)(x, 0.5)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(gs, fd_grad_typed(loss, [x64, 0.5], 1), rtol=1e-4)
    assert gx.dtype == np.float32


# -- found by the campaign: Python's own arithmetic on Python bools -------------------------


PY_BOOL_OPS = {
    "~": lambda s: ~(s <= s),
    "+": lambda s: (s <= s) + (s <= s),
    "-": lambda s: (s <= s) - (s > s),
    "unary -": lambda s: -(s <= s),
    "abs": lambda s: abs(s <= s),
    "**": lambda s: (s <= s) ** (s <= s),
    "|": lambda s: (s <= s) | (s > s),
    "* float": lambda s: (s <= s) * s,
    "array ~": lambda s: ~(np.ones(2) > s),
}


@pytest.mark.parametrize("name", sorted(PY_BOOL_OPS))
def test_semantics_operators_on_python_bools_compute_what_python_does(name):
    """A comparison of Python float arguments is a Python bool: `~b` is -2 and `b + b` is 2
    (int arithmetic), where NumPy's bool ops would give bools (random_program(18000466))."""
    f = PY_BOOL_OPS[name]
    want = f(0.5)
    got = jit(f, backend=I)(0.5)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got, want)


SCALAR_RESHAPES = {
    "flatten": lambda s: s.flatten(),
    "ravel": lambda s: np.ravel(s),
    "reshape(1)": lambda s: s.reshape(1),
    "[None]": lambda s: s[None],
    "expand_dims": lambda s: np.expand_dims(s, 0),
    "reshape(())": lambda s: s.reshape(()),
    ".T": lambda s: s.T,
}


@pytest.mark.parametrize("name", sorted(SCALAR_RESHAPES))
def test_semantics_reshapes_of_a_numpy_scalar_are_new(name):
    """A NumPy scalar shares no memory: its flatten/ravel/reshape is a new array (or scalar),
    and writing into it leaves the scalar alone (random_program(18002139, 8))."""

    def f(x, s):
        t = x.sum()
        a, b = SCALAR_RESHAPES[name](s), SCALAR_RESHAPES[name](t)
        a += 1.0
        b *= 2.0
        return s + t * 10.0, a, b

    x, s = np.arange(3.0), np.float64(0.5)
    want = f(x, s)
    got = jit(f, backend=I)(x, s)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_array_equal(g, w)


def test_semantics_add_at_with_a_2d_index_and_broadcast_values():
    """NumPy 2.4's own np.add.at is wrong here (it gives [2, 1]); gradc adds every pair, as
    the loop below does. The campaign's generator avoids this form for that reason."""
    idx = np.array([[1, 0], [0, 1]])

    def f(v):
        out = np.zeros(2)
        np.add.at(out, idx, v)
        return out

    v = np.array([1.0, 2.0])
    want = np.zeros(2)
    for i, x in zip(idx.ravel(), np.broadcast_to(v, idx.shape).ravel()):
        want[i] += x
    np.testing.assert_array_equal(jit(f, backend=I)(v), want)
