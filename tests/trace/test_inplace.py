"""In-place NumPy code is functionalized: writes, augmented assignment, `out=`, `np.add.at`,
arrays created inside the function, and views that alias their base, all behave as NumPy;
the caller's arrays never change. Also closures and pytree arguments."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import grad, interpret, trace, value_and_grad, vjp
from tests.helpers import check_jit, check_trace, fd_grad

R = np.random.default_rng(11)
X = R.normal(size=(6, 4))
Y = R.normal(size=(6, 4))
V = R.normal(size=(2, 4))


def _setslice(a, b):
    a = a.copy()
    a[1:3] = b
    return a


def _setslice_own_arg(a, b):
    a[1:3] = b
    return a * 2


def _setitem_broadcast_scalar(a):
    a[2:, 1] = 5.0
    return a


def _gather_iadd_repeated(a, b):
    a[[0, 2, 2]] += b[:3]  # NumPy: repeated indices do not accumulate (last write wins)
    return a


def _iadd(a, b):
    a += b
    return a


def _augmented_chain(a, b):
    a *= 2
    a -= b
    a /= 3
    a **= 2
    return a


def _ufunc_out_self(a, b):
    np.add(a, b, out=a)
    return a


def _ufunc_out_zeros_like(a, b):
    z = np.zeros_like(a)
    np.multiply(a, b, out=z)
    return z


def _unary_out_self(a):
    np.exp(a, out=a)
    return a


def _add_at_repeated(a):
    z = np.zeros((7, 4))
    np.add.at(z, [0, 0, 3, 6, 6, 6], a)  # repeated indices accumulate
    return z


def _add_at_into_argument(a, b):
    np.add.at(a, ([0, 0, 1],), b[:3])
    return a


def _ones_then_write(a):
    z = np.ones((3, 4))
    z[0] = a[0]
    z[2, 1:] = 5.0
    return z


def _empty_then_write(a):
    z = np.empty((2, 4))
    z[0] = a[0]
    z[1] = a[1] * 2
    return z


def _full_arange_eye(a):
    return a * np.full((6, 4), 2.5) + np.arange(4) + np.eye(6, 4)


def _zeros_accumulate_in_loop(a):
    z = np.zeros(4)
    for i in range(a.shape[0]):
        z += a[i] * i
    return z


def _zeros_float32_write(a):
    z = np.zeros((3,), dtype=np.float32)
    z[0] = a[0, 0]  # cast to the destination dtype, as NumPy
    return z


def _zeros_like_write_column(a):
    z = np.zeros_like(a)
    z[:, 0] = a[:, 1]
    return z


def _ellipsis_write(a):
    z = np.zeros(a.shape)
    z[...] = a
    return z


def _identity_write(a):
    z = np.identity(4)
    z[0, 0] = a[0, 0]
    return z @ a.T[:4]


def _full_imul_row(a):
    z = np.full((2, 3), 1.5)
    z[1] *= a[0, :3]
    return z


def _write_with_gather_axis1(a):
    a[:, [1, 1]] = 3.0
    return a


def _write_two_index_arrays(a):
    a[[1, 2], [0, 3]] = 9.0
    return a


def _write_negative_step(a):
    a[1] += 1
    a[-1, ::-1] = np.arange(4.0)
    return a


# views alias their base, as in NumPy


def _view_write(a):
    r = a[1:4]
    r[0] = 100.0
    return a


def _transpose_view_write(a):
    r = a.T
    r[0] = -1.0
    return a


def _view_read_after_base_write(a):
    r = a[2]
    a[2] = 7.0
    return r


def _view_read_after_base_iadd(a):
    r = a[1]
    a += 1
    return r


def _view_of_view_write(a):
    r = a[1:4]
    s = r[0]
    s[...] = 5
    return a


def _sibling_views(a):
    r = a[1:4]
    s = a[2:5]
    r[1] = 9
    return s


def _view_iadd(a):
    r = a[1:4]
    r += 1
    return a


def _column_view_imul(a):
    r = a[:, 1]
    r *= 2
    return a


def _reshape_then_transpose_chain(a):
    b = a.reshape(4, 6)
    b[0, 0] = 3
    c = b.T
    c[1, 1] = 4
    return a


def _strided_clear(a):
    b = a[::2]
    b[:] = 0
    return a


def _ravel_view_write(a):
    b = a.ravel()
    b[0] = -3
    return a


def _newaxis_view_write(a):
    b = a[None]
    b[0, 1] = 3
    return a


def _copy_does_not_alias(a):
    c = a.copy()
    c[0] = 1
    return a


def _gather_is_a_copy(a):
    b = a[[0, 1]]
    b[0] = 100
    return a


ONE_ARG = [
    _setitem_broadcast_scalar,
    _unary_out_self,
    _add_at_repeated,
    _ones_then_write,
    _empty_then_write,
    _full_arange_eye,
    _zeros_accumulate_in_loop,
    _zeros_float32_write,
    _zeros_like_write_column,
    _ellipsis_write,
    _identity_write,
    _full_imul_row,
    _write_with_gather_axis1,
    _write_two_index_arrays,
    _write_negative_step,
    _view_write,
    _transpose_view_write,
    _view_read_after_base_write,
    _view_read_after_base_iadd,
    _view_of_view_write,
    _sibling_views,
    _view_iadd,
    _column_view_imul,
    _reshape_then_transpose_chain,
    _strided_clear,
    _ravel_view_write,
    _newaxis_view_write,
    _copy_does_not_alias,
    _gather_is_a_copy,
]
TWO_ARG = [
    _iadd,
    _augmented_chain,
    _ufunc_out_self,
    _ufunc_out_zeros_like,
    _gather_iadd_repeated,
    _add_at_into_argument,
]


@pytest.mark.parametrize("f", ONE_ARG, ids=lambda f: f.__name__.strip("_"))
def test_inplace_one_arg_matches_numpy(f):
    check_trace(f, X.copy())


@pytest.mark.parametrize("f", TWO_ARG, ids=lambda f: f.__name__.strip("_"))
def test_inplace_two_args_matches_numpy(f):
    check_trace(f, X.copy(), Y.copy())


def test_inplace_setslice_from_other_arg_matches_numpy():
    check_trace(_setslice, X.copy(), V.copy())
    check_trace(_setslice_own_arg, X.copy(), V.copy())


# the same functions compiled through `jit`: the caller's arrays are still not changed


@pytest.mark.parametrize("f", ONE_ARG, ids=lambda f: f.__name__.strip("_"))
def test_inplace_one_arg_jit_matches_numpy(f, backend):
    check_jit(backend, f, X.copy())


@pytest.mark.parametrize("f", TWO_ARG, ids=lambda f: f.__name__.strip("_"))
def test_inplace_two_args_jit_matches_numpy(f, backend):
    check_jit(backend, f, X.copy(), Y.copy())


def test_inplace_setslice_from_other_arg_jit_matches_numpy(backend):
    check_jit(backend, _setslice, X.copy(), V.copy())
    check_jit(backend, _setslice_own_arg, X.copy(), V.copy())


def test_inplace_creation_functions_are_restored_after_tracing():
    trace(_ones_then_write, X)
    assert isinstance(np.zeros(3), np.ndarray) and isinstance(np.ones(2), np.ndarray)
    assert isinstance(np.full(2, 1.0), np.ndarray) and isinstance(np.eye(2), np.ndarray)


# -- mutating an argument never reaches the caller ------------------------------------------------


def _mutating_loss(a):
    a[0] = 5.0
    a *= 2.0
    np.add(a, 1.0, out=a)
    return np.sum(a * a)


def _mutating_loss_grad(a):
    g = 2.0 * (2.0 * a + 1.0) * 2.0
    g[0] = 0.0  # a[0] was overwritten
    return g


def test_inplace_mutating_argument_leaves_caller_array_unchanged_under_trace():
    x = X.copy()
    trace(_mutating_loss, x)
    np.testing.assert_array_equal(x, X)


def test_inplace_mutating_argument_leaves_caller_array_unchanged_under_grad(backend):
    x = X.copy()
    g = grad(_mutating_loss, backend=backend)(x)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_allclose(g, _mutating_loss_grad(X), rtol=1e-12)
    v, g2 = value_and_grad(_mutating_loss, backend=backend)(x)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_allclose(v, _mutating_loss(X.copy()), rtol=1e-12)
    np.testing.assert_allclose(g2, g, rtol=1e-12)


def test_inplace_mutating_argument_leaves_caller_array_unchanged_under_vjp(backend):
    x = X.copy()
    out, pullback = vjp(_mutating_loss, x, backend=backend)
    (g,) = pullback(1.0)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_allclose(g, _mutating_loss_grad(X), rtol=1e-12)


def test_inplace_gradient_through_writes_matches_finite_differences(backend):
    def f(a, b):
        z = np.zeros((5, 4))
        z[1:3] = a[:2] * b[0]
        np.add.at(z, [0, 0, 4], a[2:5])
        z[[3, 3]] += b[1:3]
        z[::2] *= 3.0
        r = z[1:4]
        r += a[0]
        return np.sum(np.tanh(z))

    a, b = X[:5].copy(), Y[:3].copy()
    ga, gb = grad(f, argnums=(0, 1), backend=backend)(a, b)
    np.testing.assert_allclose(ga, fd_grad(f, [a, b], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, fd_grad(f, [a, b], 1), rtol=1e-6, atol=1e-8)


# -- closures and pytrees -------------------------------------------------------------------------


def test_trace_closure_array_becomes_a_constant():
    w = R.normal(size=(4, 3))

    def f(x):
        return np.tanh(x @ w)

    graph = check_trace(f, X)
    assert len(graph.inputs) == 1
    consts = [n for n in graph.nodes if n.op == "const"]
    assert any(np.array_equal(n.attrs["value"].array, w) for n in consts)
    expected = f(X)
    w[...] = 0.0  # the graph holds a copy: later changes to the closure do not leak in
    np.testing.assert_allclose(interpret(graph, X), expected, rtol=1e-12)


def _pytree_params():
    return {
        "layers": [
            {"w": R.normal(size=(4, 3)), "b": R.normal(size=(3,))},
            {"w": R.normal(size=(3, 2)), "b": R.normal(size=(2,))},
        ],
        "scale": (np.float64(0.5), 2.0),
    }


def _pytree_fn(p, x):
    h = x
    for layer in p["layers"]:
        h = np.tanh(h @ layer["w"] + layer["b"])
    s0, s1 = p["scale"]
    return {"out": h * s0 + s1, "stats": [h.mean(), (h.max(axis=0), h.min())]}


def test_trace_pytree_arguments_and_outputs():
    graph = check_trace(_pytree_fn, _pytree_params(), X)
    assert len(graph.inputs) == 7  # four arrays, a NumPy scalar, a Python float, x


def _static_args_fn(x, n, mode):
    return x * n if mode == "mul" else x + n


def test_jit_pytrees_static_arguments_and_constant_outputs(backend):
    check_jit(backend, _pytree_fn, _pytree_params(), X)
    check_jit(backend, _static_args_fn, X, 3, "mul")
    check_jit(backend, _static_args_fn, X, 3, "add")
    check_jit(backend, lambda x: (x.sum(), np.ones(3), 2.0), X)
    p32 = {"w": X.astype(np.float32), "v": V.astype(np.float32)}
    check_jit(backend, lambda p: (p["w"] * 2.0).sum() + p["v"].mean(), p32)


def test_trace_static_arguments_are_baked_in():
    g = check_trace(_static_args_fn, X, 3, "mul")
    assert len(g.inputs) == 1
    check_trace(_static_args_fn, X, 3, "add")


def test_trace_output_constants_and_python_numbers():
    check_trace(lambda x: (x.sum(), np.ones(3), 2.0), X)


def test_interpret_rejects_a_different_pytree_structure():
    g = trace(lambda p: p["a"] * 2, {"a": X})
    with pytest.raises(TypeError, match="structure"):
        interpret(g, {"b": X})


def test_trace_float32_pytree_leaves_keep_their_dtypes():
    p = {"w": X.astype(np.float32), "v": V.astype(np.float32)}
    g = check_trace(lambda p: (p["w"] * 2.0).sum() + p["v"].mean(), p)
    assert g.outputs[0].dtype == np.float32
    assert [v.dtype for v in g.inputs] == [np.float32, np.float32]
