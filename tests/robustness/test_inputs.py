"""gradc never changes the caller's data, and what it returns belongs to the caller.

Every argument is deep-copied before the call and compared (values, dtype, flags) after, for
every built-in example, every benchmark workload (small sizes), and functions that write into
their own arguments, on the Numba backend. Results must be fresh, writable arrays that no
later call changes.
"""

from __future__ import annotations

import copy

import numpy as np
import optree
import pytest

from benchmarks.workloads import WORKLOADS
from compiler import grad, jit, value_and_grad, vjp
from compiler.cli.target import parse_spec
from compiler.examples import EXAMPLES
from tests.helpers import fd_grad


def _snapshot(tree):
    return copy.deepcopy(tree)


def assert_unchanged(after, before, what: str = "argument") -> None:
    """Same pytree, and every array leaf equal bit for bit with the same dtype and flags."""
    a_leaves, a_tree = optree.tree_flatten(after, none_is_leaf=True)
    b_leaves, b_tree = optree.tree_flatten(before, none_is_leaf=True)
    assert a_tree == b_tree, f"{what}: structure changed from {b_tree} to {a_tree}"
    for k, (a, b) in enumerate(zip(a_leaves, b_leaves)):
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray), f"{what} leaf {k} is no longer an array"
            assert a.dtype == b.dtype and a.shape == b.shape, f"{what} leaf {k}: type changed"
            np.testing.assert_array_equal(a, b, err_msg=f"{what} leaf {k} was modified")
            assert a.flags.writeable == b.flags.writeable, f"{what} leaf {k}: flags changed"
        else:
            assert type(a) is type(b) and (a == b or a != a), f"{what} leaf {k} changed"


def _example_args(ex):
    rng = np.random.default_rng(0)
    return [parse_spec(s, rng) for s in ex.args.values()]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_inputs_examples_unchanged_by_every_transform(name):
    ex = EXAMPLES[name]
    args = _example_args(ex)
    before = _snapshot(args)
    value_and_grad(ex.fun, argnums=ex.argnums)(*args)
    assert_unchanged(args, before)
    grad(ex.fun, argnums=ex.argnums)(*args)
    jit(ex.fun)(*args)
    out, pullback = vjp(ex.fun, *args)
    pullback(np.ones_like(out))
    assert_unchanged(args, before)


def _workload_args(w):
    rng = np.random.default_rng(1)
    return w.make(rng, w.dtype, **w.small)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_inputs_workloads_unchanged(name):
    w = WORKLOADS[name]
    params, data = _workload_args(w)
    before = _snapshot((params, data))
    value, grads = value_and_grad(w.loss)(params, *data)
    assert_unchanged((params, data), before)
    # the gradient is still right (so the check is not vacuous)
    ref_value, ref_grads = w.numpy_vg(_snapshot(params), *_snapshot(data))
    tol = 1e-3 if w.dtype == np.float32 else 1e-8
    np.testing.assert_allclose(value, ref_value, rtol=tol)
    for g, r in zip(optree.tree_leaves(grads), optree.tree_leaves(ref_grads)):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


def _perturbed(tree):
    return optree.tree_map(
        lambda a: a * 1.25 + 0.1 if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a, tree
    )


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_inputs_earlier_results_survive_later_calls(name):
    """A result is the caller's: a later call (same signature, other values) must not write
    into it through a reused buffer."""
    w = WORKLOADS[name]
    params, data = _workload_args(w)
    vg = value_and_grad(w.loss)
    first = vg(params, *data)
    kept = _snapshot(first)
    for _ in range(3):
        vg(_perturbed(params), *_perturbed(data))
    assert_unchanged(first, kept, "result")
    out, pullback = vjp(w.loss, params, *data)
    g1 = pullback(np.ones_like(out))
    kept = _snapshot(g1)
    pullback(np.full_like(out, 3.0))
    vjp(w.loss, _perturbed(params), *_perturbed(data))[1](np.ones_like(out))
    assert_unchanged(g1, kept, "pullback result")
    # the first pullback's stored residuals are its own too
    assert_unchanged(pullback(np.ones_like(out)), kept, "pullback after another vjp")


# -- functions that write into their own arguments ------------------------------------------


def _iadd(x, y):
    x += y  # rebinds x inside the trace; the caller's x must not change
    return np.sum(x * x)


def _setitem(x, y):
    x[0] = y[1] * 3.0
    x[1:] *= y[:-1]
    return np.sum(np.tanh(x))


def _out_kwarg(x, y):
    np.multiply(x, y, out=x)
    np.add(x, 1.0, out=x)
    return np.sum(x**2)


def _through_views(x, y):
    v = x[::2]
    v *= 2.0  # writes into x through the view
    r = x.reshape(-1)
    r[-1] = y[0]
    return np.sum(x * y)


def _scatter(x, y):
    idx = np.array([0, 2, 2])
    np.add.at(x, idx, y[:3])
    x[np.array([1, 3])] += 1.5
    return np.sum(np.sin(x))


def _pytree(params, y):
    params["w"] *= 2.0
    params["b"] = params["b"] + 1.0  # replaces a dict entry
    params["extra"] = y  # and adds one
    params["list"][0][:2] -= y[:2]
    params["list"].append(y)
    return np.sum(params["w"] * y) + np.sum(params["b"]) + np.sum(params["list"][0] ** 2)


MUTATORS = [_iadd, _setitem, _out_kwarg, _through_views, _scatter]


def _xy():
    rng = np.random.default_rng(3)
    return rng.uniform(0.5, 1.5, 4), rng.uniform(0.5, 1.5, 4)


@pytest.mark.parametrize("fun", MUTATORS, ids=lambda f: f.__name__.strip("_"))
def test_inputs_mutating_function_leaves_arguments_alone(fun):
    x, y = _xy()
    before = _snapshot((x, y))
    vg = value_and_grad(fun, argnums=(0, 1))
    for _ in range(2):  # the compiling call and the cached one
        value, (gx, gy) = vg(x, y)
        assert_unchanged((x, y), before)
    assert value == pytest.approx(fun(*_snapshot(before)), rel=1e-12)
    plain = lambda a, b: fun(a.copy(), b.copy())  # noqa: E731
    np.testing.assert_allclose(gx, fd_grad(plain, before, 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gy, fd_grad(plain, before, 1), rtol=1e-6, atol=1e-8)
    out = jit(fun)(x, y)
    assert_unchanged((x, y), before)
    assert out == pytest.approx(fun(*_snapshot(before)), rel=1e-12)


def test_inputs_mutating_pytree_function_leaves_containers_alone():
    x, y = _xy()
    params = {"w": x, "b": np.array([0.5]), "list": [y.copy()]}
    before = _snapshot((params, y))
    g = grad(_pytree)(params, y)
    assert_unchanged((params, y), before)
    assert set(g) == {"w", "b", "list"} and len(g["list"]) == 1  # the caller's structure
    want = _pytree(_snapshot(before[0]), y)
    assert value_and_grad(_pytree)(params, y)[0] == pytest.approx(want, rel=1e-12)
    assert_unchanged((params, y), before)


def test_inputs_read_only_arguments_work_and_stay_read_only():
    x, y = _xy()
    x.setflags(write=False)
    before = _snapshot((x, y))
    before[0].setflags(write=False)  # deepcopy makes writable copies
    for fun in MUTATORS:
        value_and_grad(fun, argnums=(0, 1))(x, y)
    assert_unchanged((x, y), before)
    assert not x.flags.writeable


# -- results belong to the caller ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["numba", "interpret"])
def test_inputs_results_are_fresh_writable_arrays(backend):
    c = np.array([1.0, 2.0, 3.0])
    x = np.ones(3)
    ident = jit(lambda x: (x, x * 2.0, x * 2.0, c), backend=backend)
    outs = ident(x)
    assert not any(np.shares_memory(o, x) for o in outs), "a result aliases an argument"
    assert not np.shares_memory(outs[1], outs[2]), "two results share memory"
    for o in outs:
        assert o.flags.writeable
        o[...] = -7.0
    np.testing.assert_array_equal(x, 1.0)
    np.testing.assert_array_equal(c, [1.0, 2.0, 3.0])  # the captured constant
    again = ident(x)
    np.testing.assert_array_equal(again[3], c)  # and the graph's copy of it
    np.testing.assert_array_equal(again[1], 2.0)

    g = grad(lambda x: np.sum(x * c), backend=backend)
    first = g(x)
    first *= 10.0  # the usual `g *= lr` on a gradient
    np.testing.assert_array_equal(g(x), c)


@pytest.mark.parametrize("backend", ["numba", "interpret"])
def test_inputs_vjp_pullback_is_repeatable_after_caller_writes(backend):
    x = np.array([0.1, 0.5, 1.0])
    out, pullback = vjp(lambda x: np.exp(x) * 1.0, x, backend=backend)
    first = pullback(np.ones(3))[0].copy()
    out[...] = 0.0  # the forward result may share nothing with the stored residuals
    g = pullback(np.ones(3))[0]
    np.testing.assert_array_equal(g, first)
    g[...] = 5.0
    np.testing.assert_array_equal(pullback(np.ones(3))[0], first)
    np.testing.assert_array_equal(x, [0.1, 0.5, 1.0])
