"""Forward mode: `jvp` and `linearize`, compiled through `jit`'s pipeline and cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree

from compiler.api import jit
from compiler.autodiff.apply import check_tangents, jvp_in_trace
from compiler.trace import Tracer
from runtime.memo import per_function


def _compiled_jvp(
    fun: Callable, has_aux: bool, backend: str | None, disable: Sequence[str]
) -> Callable:
    """The `jit` of `(primals, tangents) -> jvp(...)` for `fun`, one per function and options,
    so repeated calls reuse one compiled function per signature."""

    def make() -> Callable:
        def jvp_of(primals: Any, tangents: Any) -> Any:
            return jvp_in_trace(fun, primals, tangents, has_aux)

        jvp_of.__name__ = f"jvp_of_{getattr(fun, '__name__', 'function')}"
        return jit(jvp_of, backend=backend, disable=disable)

    return per_function(fun, ("jvp", has_aux, backend, tuple(disable)), make)


def jvp(
    fun: Callable,
    primals: Sequence[Any],
    tangents: Sequence[Any],
    *,
    has_aux: bool = False,
    backend: str | None = None,
    disable: Sequence[str] = (),
) -> tuple:
    """`(out, tangent_out)` of `fun` at `primals` along `tangents` (JAX's convention; with
    `has_aux`, `(out, tangent_out, aux)`). One tangent per primal, each with its primal's
    structure, shapes and dtypes."""
    if not callable(fun):
        raise TypeError(f"jvp expects a callable, got {type(fun).__name__}")
    check_tangents(fun, primals, tangents)
    return _compiled_jvp(fun, has_aux, backend, disable)(tuple(primals), tuple(tangents))


def linearize(
    fun: Callable,
    *primals: Any,
    has_aux: bool = False,
    backend: str | None = None,
    disable: Sequence[str] = (),
) -> tuple:
    """`(out, f_jvp)` with `f_jvp(*tangents)` the JVP of `fun` at `primals` (JAX's
    convention; with `has_aux`, `(out, f_jvp, aux)`)."""
    if not callable(fun):
        raise TypeError(f"linearize expects a callable, got {type(fun).__name__}")
    compiled = _compiled_jvp(fun, has_aux, backend, disable)
    zeros = tuple(_zeros_like(p) for p in primals)
    res = compiled(tuple(primals), zeros)

    def f_jvp(*tangents: Any) -> Any:
        check_tangents(fun, primals, tangents, "linearize")
        return compiled(tuple(primals), tuple(tangents))[1]

    return (res[0], f_jvp, res[2]) if has_aux else (res[0], f_jvp)


def _zeros_like(tree: Any) -> Any:
    def zero(x: Any) -> Any:
        if isinstance(x, float):
            return 0.0
        if isinstance(x, (np.ndarray, np.generic, Tracer)):
            return np.zeros_like(x)
        return x  # a static leaf: no tangent space, passed through

    return optree.tree_map(zero, tree, none_is_leaf=False)
