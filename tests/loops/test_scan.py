"""scan: gradients against the unrolled Python loop and finite differences, pytrees, reverse,
forward mode, grad of grad, and the compiled backend."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import grad, jit, scan, trace, value_and_grad
from compiler.autodiff import jvp_graph
from compiler.interpret import run_graph
from tests.helpers import fd_directional
from tests.loops.cases import CASES, rnn_args, rnn_loop, rnn_scan


def _argnums(args):
    return tuple(i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f")


@pytest.mark.parametrize("name", sorted(CASES))
def test_scan_gradient_equals_unrolled_loop(name):
    f_scan, f_loop, make = CASES[name]
    args = make(np.random.default_rng(1))
    nums = _argnums(args)
    v1, g1 = value_and_grad(f_scan, argnums=nums, backend="interpret")(*args)
    v2, g2 = value_and_grad(f_loop, argnums=nums, backend="interpret")(*args)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_scan_gradient_matches_finite_differences(name):
    f_scan, f_loop, make = CASES[name]
    rng = np.random.default_rng(2)
    args = [np.asarray(a, dtype=np.float64) for a in make(rng)]
    g = grad(f_scan, argnums=tuple(range(len(args))), backend="interpret")(*args)
    for k in range(len(args)):
        d = rng.normal(size=args[k].shape)
        dirs = [None] * len(args)
        dirs[k] = d
        fd = fd_directional(f_loop, args, dirs)
        np.testing.assert_allclose(np.sum(g[k] * d), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["rnn_batch", "leaky", "nested"])
def test_scan_numba_backend_equals_unrolled_on_the_interpreter(name):
    # rnn_batch: GEMM-batched weight gradients; leaky: an all-scalar step (njit scalar
    # driver); nested: a scan inside the step's compiled stage
    f_scan, f_loop, make = CASES[name]
    args = make(np.random.default_rng(3))
    nums = _argnums(args)
    v1, g1 = value_and_grad(f_scan, argnums=nums, backend="numba")(*args)
    v2, g2 = value_and_grad(f_loop, argnums=nums, backend="interpret")(*args)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_scan_step_is_traced_once_and_graph_does_not_grow_with_length():
    calls = []

    def f(w, xs):
        def step(c, x):
            calls.append(1)
            return c * w + x, None

        return scan(step, 0.0, xs)[0]

    g10 = trace(f, 0.5, np.ones(10))
    g1000 = trace(f, 0.5, np.ones(1000))
    assert len(calls) == 2  # once per trace
    assert len(g10.nodes) == len(g1000.nodes)
    np.testing.assert_allclose(run_graph(g1000, [0.5, np.ones(1000)])[0], 2.0)


def test_scan_pytree_carry_and_outputs_none_and_reverse():
    xs = {"a": np.arange(1.0, 5.0), "b": np.arange(4.0) * 0.1}

    def f(s, xs):
        def step(c, x):
            lo, hi = c
            return (lo + x["a"] * s, hi * x["b"] + 1.0), {"p": lo * hi, "q": None}

        (lo, hi), ys = scan(step, (0.0, 1.0), xs, reverse=True)
        assert ys["q"] is None
        return lo + hi + np.sum(ys["p"] ** 2)

    def f_loop(s, xs):
        lo, hi, tot = 0.0, 1.0, 0.0
        for t in reversed(range(4)):
            tot = tot + (lo * hi) ** 2
            lo, hi = lo + xs["a"][t] * s, hi * xs["b"][t] + 1.0
        return lo + hi + tot

    v1, g1 = value_and_grad(f, argnums=(0, 1), backend="interpret")(0.7, xs)
    v2, g2 = value_and_grad(f_loop, argnums=(0, 1), backend="interpret")(0.7, xs)
    np.testing.assert_allclose(v1, v2)
    np.testing.assert_allclose(g1[0], g2[0])
    np.testing.assert_allclose(g1[1]["a"], g2[1]["a"])
    np.testing.assert_allclose(g1[1]["b"], g2[1]["b"])


def test_scan_length_without_xs_and_eager_outside_a_trace():
    c, ys = scan(lambda c, _: (c * 2.0, c), np.float64(1.0), None, length=4)
    np.testing.assert_allclose(c, 16.0)
    np.testing.assert_allclose(ys, [1.0, 2.0, 4.0, 8.0])


def test_scan_grad_of_grad_on_scalar_carry():
    def f(w):
        c, _ = scan(lambda c, x: (np.sin(c * w) + x, None), 0.4, np.linspace(0, 1, 6))
        return c

    def f_loop(w):
        c = 0.4
        for x in np.linspace(0, 1, 6):
            c = np.sin(c * w) + x
        return c

    g2 = grad(grad(f), backend="interpret")(0.9)
    ref = grad(grad(f_loop), backend="interpret")(0.9)
    np.testing.assert_allclose(g2, ref, rtol=1e-10)
    fd = (grad(f_loop)(0.9 + 1e-5) - grad(f_loop)(0.9 - 1e-5)) / 2e-5
    np.testing.assert_allclose(g2, fd, rtol=1e-6)


def test_scan_forward_mode_equals_unrolled_jvp():
    args = [np.asarray(a, dtype=np.float64) for a in rnn_args(np.random.default_rng(4))]
    rng = np.random.default_rng(5)
    tans = [rng.normal(size=a.shape) for a in args]
    outs = []
    for f in (rnn_scan, rnn_loop):
        j = jvp_graph(trace(f, *args), [0, 1, 2, 3])
        outs.append(run_graph(j, [*args, *tans]))
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-10)
    fd = fd_directional(rnn_loop, args, tans)
    np.testing.assert_allclose(outs[0][1], fd, rtol=1e-6)


def test_scan_jit_forward_only():
    args = rnn_args(np.random.default_rng(6))
    np.testing.assert_allclose(jit(rnn_scan)(*args), rnn_loop(*args), rtol=1e-12)


def test_scan_vjp_float32_with_an_int_carry_on_both_backends():
    from compiler import vjp

    rng = np.random.default_rng(7)
    W = (rng.normal(size=(3, 3)) * 0.5).astype(np.float32)
    xs = rng.normal(size=(6, 3)).astype(np.float32)

    def f(W, xs):
        def step(c, x):
            h, n = c
            h = np.tanh(h @ W + x)
            return (h, n + 1), h

        (_, n), ys = scan(step, (np.zeros(3, np.float32), 0), xs)
        return ys * n.astype(np.float32)

    def f_loop(W, xs):
        h, out = np.zeros(3, np.float32), []
        for t in range(6):
            h = np.tanh(h @ W + xs[t])
            out.append(h)
        return np.stack(out) * np.float32(6)

    ct = rng.normal(size=(6, 3)).astype(np.float32)
    ref_out, ref_pb = vjp(f_loop, W, xs, backend="interpret")
    for backend in ("interpret", "numba"):
        out, pb = vjp(f, W, xs, backend=backend)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref_out, rtol=1e-6)
        for a, b in zip(pb(ct), ref_pb(ct)):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_scan_grad_of_grad_through_batched_rnn_equals_unrolled():
    from tests.loops.cases import batch_rnn_args

    args = batch_rnn_args(np.random.default_rng(8))

    def gnorm(f):
        return lambda W, *rest: np.sum(grad(f, argnums=0)(W, *rest) ** 2)

    got = grad(gnorm(rnn_scan), backend="interpret")(*args)
    ref = grad(gnorm(rnn_loop), backend="interpret")(*args)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_scan_under_hessian_and_jacobians_equals_unrolled():
    # forward-over-reverse leaves dead loops behind; the loops pass must drop them whole
    from compiler import hessian, jacfwd, jacrev

    xs = np.linspace(0, 1, 8).reshape(4, 2)

    def f(w):
        c, ys = scan(lambda c, x: (np.sin(c * w + x), c * x), np.ones(2) * 0.3, xs)
        return ys.ravel()

    def f_loop(w):
        c, out = np.ones(2) * 0.3, []
        for x in xs:
            out.append(c * x)
            c = np.sin(c * w + x)
        return np.stack(out).ravel()

    w = np.array([0.7, 0.2])
    np.testing.assert_allclose(jacfwd(f)(w), jacfwd(f_loop)(w), rtol=1e-12)
    np.testing.assert_allclose(jacrev(f)(w), jacrev(f_loop)(w), rtol=1e-12)

    def s(w):
        return np.sum(f(w) ** 2)

    def s_loop(w):
        return np.sum(f_loop(w) ** 2)

    np.testing.assert_allclose(hessian(s)(w), hessian(s_loop)(w), rtol=1e-10)
