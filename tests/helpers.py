"""Test oracles: central finite differences, NumPy-side unbroadcasting, and NumPy itself for
traced (`check_trace`) and compiled (`check_jit`) functions."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import optree

from compiler import interpret, jit, trace, verify


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `g` over the axes along which an array of `shape` was broadcast (NumPy only)."""
    g = np.asarray(g)
    if g.shape == tuple(shape):
        return g
    if g.ndim < len(shape) or np.broadcast_shapes(g.shape, shape) != g.shape:
        return np.broadcast_to(g, shape)  # a smaller cotangent (a scalar zero), as vjp.py
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead > 0 else g
    keep = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    if keep:
        g = g.sum(axis=keep, keepdims=True)
    return np.broadcast_to(g, shape)


def fd_directional(
    f: Callable[..., np.ndarray],
    args: Sequence[np.ndarray],
    dirs: Sequence[np.ndarray | None],
    eps: float = 1e-6,
) -> np.ndarray:
    """Central difference (f(x + eps d) - f(x - eps d)) / 2 eps; `None` directions are 0."""
    plus = [a if d is None else a + eps * d for a, d in zip(args, dirs)]
    minus = [a if d is None else a - eps * d for a, d in zip(args, dirs)]
    hi = np.asarray(f(*plus), dtype=np.float64)
    lo = np.asarray(f(*minus), dtype=np.float64)
    return (hi - lo) / (2 * eps)


def fd_grad(f: Callable[..., float], args: Sequence[np.ndarray], i: int, eps: float = 1e-6):
    """The full gradient of scalar f w.r.t. args[i], one central difference per element."""
    x = np.asarray(args[i], dtype=np.float64)
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = 1.0
        dirs = [None] * len(args)
        dirs[i] = e
        g[k] = fd_directional(f, [np.asarray(a, dtype=np.float64) for a in args], dirs, eps)
    return g


def assert_close(actual, expected, rtol: float = 1e-6, atol: float = 1e-8, what: str = "") -> None:
    """Like np.testing.assert_allclose, but also requires equal shapes."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def is_float(a) -> bool:
    return np.asarray(a).dtype.kind == "f"


def assert_tree_matches(actual, expected, rtol: float | None = None, what: str = "") -> None:
    """Same pytree structure; each leaf the same shape and dtype as NumPy's, values close
    (exact for integers and booleans; rtol by dtype unless given)."""
    a_leaves, a_tree = optree.tree_flatten(actual, none_is_leaf=True)
    e_leaves, e_tree = optree.tree_flatten(expected, none_is_leaf=True)
    assert a_tree == e_tree, f"{what}: structure {a_tree} != {e_tree}"
    for k, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        a, e = np.asarray(a), np.asarray(e)
        where = f"{what} leaf {k}"
        assert a.shape == e.shape, f"{where}: shape {a.shape} != {e.shape}"
        assert a.dtype == e.dtype, f"{where}: dtype {a.dtype} != {e.dtype}"
        if e.dtype.kind in "biu":
            np.testing.assert_array_equal(a, e, err_msg=where)
        else:
            tol = rtol if rtol is not None else (2e-6 if e.dtype == np.float32 else 1e-12)
            np.testing.assert_allclose(a, e, rtol=tol, atol=tol, err_msg=where)


def check_trace(f: Callable, *args, rtol: float | None = None):
    """`interpret(trace(f, *args), *args)` equals `f(*args)` (run on copies, so functions
    that write into their arguments see the same inputs); the caller's arrays are not
    changed by tracing. Returns the graph."""
    before = copy.deepcopy(args)
    graph = verify(trace(f, *args))
    out = interpret(graph, *args)
    for a, b in zip(optree.tree_leaves(args), optree.tree_leaves(before)):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg="tracing changed the caller's array")
    assert_tree_matches(out, f(*copy.deepcopy(before)), rtol)
    return graph


def check_jit(backend: str, f: Callable, *args, rtol: float | None = None):
    """`jit(f, backend=backend)(*args)` equals NumPy's `f(*args)` (leaf by leaf: structure,
    shape, dtype, values), twice in a row (the second call reuses the compiled function), and
    the caller's arrays are not changed. Returns the jitted function."""
    before = copy.deepcopy(args)
    want = f(*copy.deepcopy(before))
    fn = jit(f, backend=backend)
    for call in ("first", "second"):
        out = fn(*args)
        for a, b in zip(optree.tree_leaves(args), optree.tree_leaves(before)):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b, err_msg="jit changed the caller's array")
        assert_tree_matches(out, want, rtol, what=f"jit[{backend}] {call} call")
    return fn


def check_value_and_grad(f: Callable, *args, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """`f` traced and interpreted equals NumPy's `f` (pytree outputs too), and the gradient of
    `sum(sin(outputs))` w.r.t. every argument (interpreter backend) matches central finite
    differences. Lists/tuples of outputs are weighted by position, so each part counts."""
    from compiler import grad

    assert_tree_matches(interpret(trace(f, *args), *args), f(*copy.deepcopy(args)), rtol=1e-9)

    def loss(*xs):
        out = f(*xs)
        parts = out if isinstance(out, (list, tuple)) else [out]
        return sum(np.sum(np.sin(p) * (k + 1)) for k, p in enumerate(parts))

    gs = grad(loss, argnums=tuple(range(len(args))), backend="interpret")(*args)
    for i, g in enumerate(gs):
        np.testing.assert_allclose(g, fd_grad(loss, args, i), rtol=rtol, atol=atol)
