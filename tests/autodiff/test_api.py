"""The public transformations: pytrees, dtypes, has_aux, argnums, Python floats, higher order,
nested grad, vjp, and the errors for misuse."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import grad, jit, value_and_grad, vjp
from tests.helpers import fd_grad

R = np.random.default_rng(9)
X = R.normal(size=(3,))
M = R.normal(size=(3, 4))


# -- pytrees --------------------------------------------------------------------------------------


def _model_loss(params, x):
    h = np.tanh(x @ params["dense"]["w"] + params["dense"]["b"])
    out = h @ params["head"][0] + params["head"][1]["bias"]
    return np.sum(out**2) * params["scale"]


def _model_params():
    return {
        "dense": {"w": R.normal(size=(4, 3)), "b": R.normal(size=(3,))},
        "head": [R.normal(size=(3, 2)), {"bias": R.normal(size=(2,))}],
        "scale": 0.5,
    }


def test_grad_pytree_params_have_params_structure_and_match_fd(backend):
    params = _model_params()
    x = R.normal(size=(5, 4))
    g = grad(_model_loss, backend=backend)(params, x)
    assert set(g) == {"dense", "head", "scale"}
    assert isinstance(g["head"], list) and isinstance(g["head"][1], dict)
    assert type(g["scale"]) is float

    leaves = [
        ("dense", "w"),
        ("dense", "b"),
        ("head", 0),
        ("head", 1, "bias"),
    ]
    for path in leaves:
        base = params
        for k in path[:-1]:
            base = base[k]

        def f(leaf, path=path):
            p = {
                "dense": dict(params["dense"]),
                "head": [params["head"][0], dict(params["head"][1])],
            }
            p["scale"] = params["scale"]
            tgt = p
            for k in path[:-1]:
                tgt = tgt[k]
            tgt[path[-1]] = leaf
            return _model_loss(p, x)

        got = g
        for k in path:
            got = got[k]
        want = fd_grad(f, [base[path[-1]]], 0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=str(path))
    h = np.tanh(x @ params["dense"]["w"] + params["dense"]["b"])
    out = h @ params["head"][0] + params["head"][1]["bias"]
    assert g["scale"] == pytest.approx(np.sum(out**2), rel=1e-12)


def test_grad_tuple_and_list_arguments_keep_their_types(backend):
    g = grad(lambda p: np.sum(p[0] * p[1][0]), backend=backend)((X, [X * 2]))
    assert isinstance(g, tuple) and isinstance(g[1], list)
    np.testing.assert_allclose(g[0], 2 * X)
    np.testing.assert_allclose(g[1][0], X)


def test_grad_float32_pytree_gives_float32_grads(backend):
    p = {"w": M.astype(np.float32), "v": X.astype(np.float32)}
    g = grad(lambda p: np.sum(p["v"] @ p["w"]) * 2.0, backend=backend)(p)
    assert g["w"].dtype == np.float32 and g["v"].dtype == np.float32
    np.testing.assert_allclose(g["w"], 2.0 * np.outer(X, np.ones(4)), rtol=1e-6)
    np.testing.assert_allclose(g["v"], 2.0 * M.sum(axis=1), rtol=1e-5)


# -- has_aux, argnums, scalars --------------------------------------------------------------------


def _with_aux(x):
    return np.sum(x**2), {"mean": x.mean(), "n": 3}


def test_grad_has_aux_returns_grad_and_aux(backend):
    g, aux = grad(_with_aux, has_aux=True, backend=backend)(X)
    np.testing.assert_allclose(g, 2 * X, rtol=1e-12)
    assert set(aux) == {"mean", "n"}
    np.testing.assert_allclose(aux["mean"], X.mean(), rtol=1e-12)


def test_value_and_grad_has_aux_returns_value_aux_then_grad(backend):
    (v, aux), g = value_and_grad(_with_aux, has_aux=True, backend=backend)(X)
    np.testing.assert_allclose(v, np.sum(X**2), rtol=1e-12)
    np.testing.assert_allclose(aux["mean"], X.mean(), rtol=1e-12)
    np.testing.assert_allclose(g, 2 * X, rtol=1e-12)


def test_grad_argnums_tuple_returns_tuple_in_order(backend):
    f = lambda a, b, c: np.sum(a * b + c)  # noqa: E731
    gs = grad(f, argnums=(2, 0), backend=backend)(X, X * 3, X * 5)
    assert isinstance(gs, tuple) and len(gs) == 2
    np.testing.assert_allclose(gs[0], np.ones(3))
    np.testing.assert_allclose(gs[1], 3 * X)
    (g,) = grad(f, argnums=(1,), backend=backend)(X, X, X)  # a 1-tuple stays a tuple
    np.testing.assert_allclose(g, X)


def test_grad_negative_argnums_counts_from_the_end(backend):
    g = grad(lambda a, b: np.sum(a * b**2), argnums=-1, backend=backend)(X, M[:, 0])
    np.testing.assert_allclose(g, 2 * X * M[:, 0], rtol=1e-12)


def test_grad_decorator_forms(backend, monkeypatch):
    monkeypatch.setenv("GRADC_BACKEND", backend)  # the bare form uses the default backend

    @grad
    def f(x):
        return np.sum(np.sin(x))

    @grad(argnums=1, backend=backend)
    def h(x, y):
        return np.sum(x * y)

    assert f.backend == backend and h.backend == backend
    np.testing.assert_allclose(h(X, M[:, 1]), X)
    np.testing.assert_allclose(f(X), np.cos(X))


def test_grad_default_backend_is_numba(monkeypatch):
    monkeypatch.delenv("GRADC_BACKEND", raising=False)
    assert grad(lambda x: np.sum(x)).backend == "numba"


def test_grad_of_python_float_is_a_float(backend):
    g = grad(lambda t: t**3 + 2.0 * t, backend=backend)(1.5)
    assert type(g) is float
    assert g == pytest.approx(3 * 1.5**2 + 2.0, rel=1e-12)


def test_grad_of_zero_d_array_is_zero_d_array(backend):
    g = grad(lambda t: t**3, backend=backend)(np.array(2.0))
    assert isinstance(g, np.ndarray) and g.shape == () and g == 12.0


def test_grad_unused_inputs_get_zeros_of_their_shape_and_dtype(backend):
    gs = grad(lambda a, b, c: np.sum(a), argnums=(0, 1, 2), backend=backend)(
        X, np.ones((2, 5), np.float32), 2.0
    )
    np.testing.assert_array_equal(gs[0], np.ones(3))
    assert gs[1].shape == (2, 5) and gs[1].dtype == np.float32 and not gs[1].any()
    assert gs[2] == 0.0 and type(gs[2]) is float


def test_grad_with_static_and_keyword_arguments(backend):
    def f(x, n, *, scale):
        return np.sum(x**n) * scale

    gf = grad(f, backend=backend)
    np.testing.assert_allclose(gf(X, 3, scale=2.0), 6 * X**2, rtol=1e-12)
    np.testing.assert_allclose(gf(X, 2, scale=2.0), 4 * X, rtol=1e-12)  # new static: retrace


def test_grad_cache_gives_fresh_results_for_new_values_and_shapes(backend):
    gf = grad(lambda x: np.sum(np.exp(x)), backend=backend)
    for x in (X, X + 1.0, M):
        np.testing.assert_allclose(gf(x), np.exp(x), rtol=1e-12)


# -- higher order and nesting ---------------------------------------------------------------------


def test_grad_of_grad_scalar(backend):
    f = lambda t: np.sin(t) * t  # noqa: E731
    d2 = grad(grad(f, backend=backend), backend=backend)
    for t in (0.7, -1.3):
        assert d2(t) == pytest.approx(-np.sin(t) * t + 2 * np.cos(t), rel=1e-12)


def test_grad_of_grad_of_grad_scalar(backend):
    d3 = grad(
        grad(grad(lambda t: t**4 + np.exp(2.0 * t), backend=backend), backend=backend),
        backend=backend,
    )
    assert d3(0.3) == pytest.approx(24 * 0.3 + 8 * np.exp(0.6), rel=1e-10)


def test_grad_of_grad_of_sum_is_hessian_diagonal_row_sum(backend):
    # d/dx sum(grad(f)(x)) for f = sum(x^3) is 6 x
    g = grad(lambda x: np.sum(grad(lambda y: np.sum(y**3), backend=backend)(x)), backend=backend)
    np.testing.assert_allclose(g(X), 6 * X, rtol=1e-12)


def test_grad_of_function_that_calls_grad_with_closure(backend):
    def h(x):
        inner = grad(lambda y: np.sum(np.tanh(y * x)), backend=backend)(x * 2.0)
        return np.sum(inner * x)

    g = grad(h, backend=backend)(X)
    np.testing.assert_allclose(g, fd_grad(h, [X], 0), rtol=1e-6, atol=1e-9)


def test_value_and_grad_inside_grad(backend):
    def h(x):
        v, g = value_and_grad(lambda y: np.sum(np.sin(y)), backend=backend)(x)
        return v + np.sum(g * x)

    np.testing.assert_allclose(
        grad(h, backend=backend)(X), fd_grad(h, [X], 0), rtol=1e-6, atol=1e-9
    )


def test_jit_matches_numpy_and_inlines_inside_grad(backend):
    f = jit(lambda x: np.tanh(x) * 2.0, backend=backend)
    np.testing.assert_allclose(f(M), np.tanh(M) * 2.0, rtol=1e-12)
    g = grad(lambda x: np.sum(f(x)), backend=backend)(X)
    np.testing.assert_allclose(g, 2.0 * (1 - np.tanh(X) ** 2), rtol=1e-12)


# -- vjp ------------------------------------------------------------------------------------------


def test_vjp_returns_output_and_pullback_returning_a_tuple(backend):
    out, pullback = vjp(lambda a: np.sin(a) * 2.0, M, backend=backend)
    np.testing.assert_allclose(out, np.sin(M) * 2.0, rtol=1e-12)
    ct = R.normal(size=M.shape)
    res = pullback(ct)
    assert isinstance(res, tuple) and len(res) == 1
    np.testing.assert_allclose(res[0], 2.0 * np.cos(M) * ct, rtol=1e-12)


def test_vjp_several_primals_and_pytree_output(backend):
    def f(a, b):
        return {"prod": a * b, "sum": np.sum(a) + b[0]}

    out, pullback = vjp(f, X, X * 2, backend=backend)
    np.testing.assert_allclose(out["prod"], X * X * 2, rtol=1e-12)
    ga, gb = pullback({"prod": np.ones(3), "sum": 2.0})
    np.testing.assert_allclose(ga, X * 2 + 2.0, rtol=1e-12)
    np.testing.assert_allclose(gb, X + np.array([2.0, 0.0, 0.0]), rtol=1e-12)


def test_vjp_pullback_can_be_called_repeatedly(backend):
    out, pullback = vjp(lambda a: a @ M, X, backend=backend)
    for _ in range(2):
        ct = R.normal(size=(4,))
        np.testing.assert_allclose(pullback(ct)[0], M @ ct, rtol=1e-12)


def test_vjp_pullback_rejects_wrong_cotangent_shape(backend):
    _, pullback = vjp(lambda a: a * 2.0, X, backend=backend)
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        pullback(np.ones(4))


# -- errors ---------------------------------------------------------------------------------------


def test_grad_non_scalar_output_is_a_type_error_naming_shape_and_vjp(backend):
    with pytest.raises(TypeError) as info:
        grad(lambda a: a * 2.0, backend=backend)(M)
    msg = str(info.value)
    assert "(3, 4)" in msg and "vjp" in msg


@pytest.mark.parametrize(
    "ret", [lambda a: (np.sum(a), 1.0), lambda a: (np.sum(a),), lambda a: {"loss": np.sum(a)}]
)
def test_grad_pytree_output_without_has_aux_is_a_type_error(ret, backend):
    # regression: only the first leaf used to be differentiated, the rest silently dropped
    for transform in (grad, value_and_grad):
        with pytest.raises(TypeError, match=r"pytree.*has_aux=True"):
            transform(ret, backend=backend)(X)


def test_grad_integer_output_is_a_type_error(backend):
    with pytest.raises(TypeError, match="float scalar"):
        grad(lambda a: (a > 0).sum(), backend=backend)(X)


def test_grad_argnums_out_of_range_names_it(backend):
    with pytest.raises((ValueError, TypeError)) as info:
        grad(lambda a: np.sum(a), argnums=1, backend=backend)(X)
    msg = str(info.value)
    assert "argnums=1" in msg and "1 positional" in msg


def test_grad_argnums_naming_an_int_argument_names_the_argument(backend):
    with pytest.raises(TypeError) as info:
        grad(lambda a, n: np.sum(a * n), argnums=1, backend=backend)(X, 3)
    msg = str(info.value)
    assert "'n'" in msg and "int" in msg


def test_grad_argnums_naming_an_integer_array_names_its_dtype(backend):
    with pytest.raises(TypeError) as info:
        grad(lambda a, idx: np.sum(a[idx]), argnums=(0, 1), backend=backend)(X, np.array([0, 1]))
    msg = str(info.value)
    assert "'idx'" in msg and "int64" in msg


@pytest.mark.parametrize(
    "ret", [lambda a: np.sum(a), lambda a: (np.sum(a), 1, 2), lambda a: [np.sum(a)]]
)
def test_grad_has_aux_with_non_pair_is_a_clear_error(ret, backend):
    with pytest.raises(TypeError, match=r"has_aux=True.*pair"):
        grad(ret, has_aux=True, backend=backend)(X)


def test_value_and_grad_has_aux_with_non_pair_is_a_clear_error(backend):
    with pytest.raises(TypeError, match=r"has_aux=True.*pair"):
        value_and_grad(lambda a: np.sum(a), has_aux=True, backend=backend)(X)


def test_grad_of_non_callable_is_a_type_error():
    with pytest.raises(TypeError, match="callable"):
        grad(3)


def test_grad_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="unknown backend"):
        grad(lambda a: np.sum(a), backend="cuda")(X)
