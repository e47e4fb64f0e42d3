"""Public forward mode: `jvp` and `linearize` vs central finite differences, JAX's
conventions (pytrees, has_aux, Python floats), every primitive through the public drivers,
and the errors for tangents that do not match their primals."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from compiler import grad, jit, jvp, linearize, vjp
from compiler.primitives import OPS, bind
from tests.helpers import fd_directional, is_float

R = np.random.default_rng(14)
X = R.normal(size=(3, 4))
V = R.normal(size=(4,))


def _f(a, v):
    return np.tanh(a @ v) * np.sum(a**2, axis=0).mean() + np.exp(v[:3] * 0.5)


def test_jvp_matches_finite_differences_and_returns_the_primal(backend):
    ta, tv = R.normal(size=X.shape), R.normal(size=V.shape)
    out, tan = jvp(_f, (X, V), (ta, tv), backend=backend)
    np.testing.assert_allclose(out, _f(X, V), rtol=1e-12)
    np.testing.assert_allclose(tan, fd_directional(_f, [X, V], [ta, tv]), rtol=1e-6, atol=1e-8)


def test_jvp_pytrees_in_and_out_and_has_aux(backend):
    def f(p, scale):
        h = np.sin(p["w"] @ p["b"][0])
        return {"h": h * scale, "s": np.sum(h)}, {"n": h.shape[0]}

    p = {"w": X, "b": [V]}
    t = {"w": R.normal(size=X.shape), "b": [R.normal(size=V.shape)]}
    out, tan, aux = jvp(f, (p, 2.0), (t, 0.5), has_aux=True, backend=backend)
    assert set(out) == set(tan) == {"h", "s"} and aux == {"n": 3}
    for key in ("h", "s"):

        def fk(w, b, s, key=key):
            return f({"w": w, "b": [b]}, s)[0][key]

        want = fd_directional(fk, [X, V, np.float64(2.0)], [t["w"], t["b"][0], np.float64(0.5)])
        np.testing.assert_allclose(tan[key], want, rtol=1e-6, atol=1e-8, err_msg=key)


def test_jvp_float32_tangents_stay_float32(backend):
    x32 = X.astype(np.float32)
    _, tan = jvp(lambda a: np.tanh(a) * 2.0, (x32,), (np.ones_like(x32),), backend=backend)
    assert tan.dtype == np.float32
    np.testing.assert_allclose(tan, 2.0 * (1 - np.tanh(X) ** 2), rtol=1e-5)


def test_jvp_static_and_integer_arguments_have_no_tangent(backend):
    idx = np.array([2, 0])
    _, tan = jvp(lambda a, i, n: a[i] ** n, (V, idx, 3), (np.ones(4), idx, 3), backend=backend)
    np.testing.assert_allclose(tan, 3 * V[idx] ** 2, rtol=1e-12)


def test_jvp_reuses_one_compiled_function_per_signature():
    calls = []

    def f(a):
        calls.append(1)  # Python runs only while tracing
        return np.sin(a)

    for k in range(3):
        _, tan = jvp(f, (V + k,), (np.ones(4),), backend="interpret")
        np.testing.assert_allclose(tan, np.cos(V + k), rtol=1e-12)
    assert len(calls) == 1


def test_linearize_gives_the_primal_and_a_reusable_tangent_map(backend):
    out, f_jvp = linearize(_f, X, V, backend=backend)
    np.testing.assert_allclose(out, _f(X, V), rtol=1e-12)
    for _ in range(2):
        ta, tv = R.normal(size=X.shape), R.normal(size=V.shape)
        want = fd_directional(_f, [X, V], [ta, tv])
        np.testing.assert_allclose(f_jvp(ta, tv), want, rtol=1e-6, atol=1e-8)


def test_linearize_traces_once_per_signature_and_keeps_aux():
    calls = []

    def f(a):
        calls.append(1)
        return np.sin(a) * 2.0, {"n": a.shape[0]}

    for k in range(3):
        out, f_jvp, aux = linearize(f, V + k, has_aux=True, backend="interpret")
        np.testing.assert_allclose(out, np.sin(V + k) * 2.0, rtol=1e-12)
        np.testing.assert_allclose(f_jvp(np.ones(4)), 2.0 * np.cos(V + k), rtol=1e-12)
        assert aux == {"n": 4}
    assert len(calls) == 1


def test_linearize_inside_grad(backend):
    # d/dx <J_sin(x) x, 1> = d/dx sum(cos(x) x) = cos(x) - sin(x) x
    g = grad(lambda x: np.sum(linearize(np.sin, x)[1](x)), backend=backend)(V)
    np.testing.assert_allclose(g, np.cos(V) - np.sin(V) * V, rtol=1e-12)


# -- every primitive through the public drivers -----------------------------------------------
# tests/primitives checks each op's rules on arrays; this checks what the drivers add around
# them (broadcast and dtype fitting, absent tangents, splicing) through public jvp and vjp


def _as_f64(args):
    return [np.asarray(a, np.float64) if is_float(a) else np.asarray(a) for a in args]


def _op_cases() -> list:
    out = []
    for name, op in sorted(OPS.items()):
        if not op.differentiable or op.samples is None:
            continue
        samples = op.samples(np.random.default_rng(zlib.crc32(name.encode())))
        out += [
            pytest.param(name, i, s, id=f"{name}-{i}")
            for i, s in enumerate(samples)
            if np.asarray(op.impl(*_as_f64(s.args), **s.attrs)).dtype.kind == "f"
        ]
    return out


@pytest.mark.parametrize("name,i,sample", _op_cases())
def test_jvp_public_every_primitive_matches_fd_and_vjp(name, i, sample):
    args = _as_f64(sample.args)
    attrs = sample.attrs

    def f(*xs):
        return bind(name, *xs, **attrs)

    out = np.asarray(f(*args))
    rng = np.random.default_rng(zlib.crc32(f"{name}{i}".encode()))
    tans = [rng.normal(size=a.shape) if is_float(a) else a for a in args]
    eps, rtol = (1e-3, 1e-3) if out.dtype == np.float32 else (1e-6, 1e-5)
    got_out, t_out = jvp(f, tuple(args), tuple(tans), backend="interpret")
    np.testing.assert_allclose(got_out, out, rtol=1e-12)
    dirs = [t if is_float(a) else None for a, t in zip(args, tans)]
    np.testing.assert_allclose(t_out, fd_directional(f, args, dirs, eps), rtol=rtol, atol=1e-6)
    # <vjp(c), t> == <c, jvp(t)> through the public transforms
    floats = [k for k, a in enumerate(args) if is_float(a)]

    def g(*fl):
        full = list(args)
        for k, x in zip(floats, fl):
            full[k] = x
        return f(*full)

    ct = rng.normal(size=out.shape).astype(out.dtype)
    _, pullback = vjp(g, *[args[k] for k in floats], backend="interpret")
    lhs = sum(np.sum(c * tans[k]) for c, k in zip(pullback(ct), floats))
    np.testing.assert_allclose(lhs, np.sum(ct * t_out), rtol=1e-5 if rtol > 1e-5 else 1e-9)


# -- bad input -----------------------------------------------------------------------------------


def test_jvp_tangent_shape_mismatch_names_the_argument_and_both_shapes():
    def f(a, bias):
        return a + bias

    with pytest.raises(ValueError) as info:
        jvp(f, (X, V), (X, np.ones(3)))
    msg = str(info.value)
    assert "'bias'" in msg and "(3,)" in msg and "(4,)" in msg


def test_jvp_tangent_dtype_mismatch_names_the_argument_and_both_dtypes():
    with pytest.raises(TypeError) as info:
        jvp(lambda a: a * 2.0, (X.astype(np.float32),), (X,))
    msg = str(info.value)
    assert "'a'" in msg and "float32" in msg and "float64" in msg and "(3, 4)" in msg


def test_jvp_tangent_structure_and_count_mismatches_are_clear():
    with pytest.raises(TypeError, match=r"'p'.*structure"):
        jvp(lambda p: p["w"] * 2.0, ({"w": V},), ({"v": V},))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        jvp(lambda a, b: a * b, (V, V), (V,))
    with pytest.raises(TypeError, match="tuple or list"):
        jvp(lambda a: a, V, V)


def test_jvp_inside_jit_is_inlined(backend):
    f = jit(lambda a: jvp(np.sin, (a,), (np.ones_like(a),))[1] * 2.0, backend=backend)
    np.testing.assert_allclose(f(V), 2.0 * np.cos(V), rtol=1e-12)
