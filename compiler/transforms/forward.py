"""Forward mode: `jvp` and `linearize`, compiled through `jit`'s pipeline and cache."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import optree

from compiler.api import jit
from compiler.autodiff.apply import check_tangents, jvp_in_trace, linearize_in_trace
from compiler.autodiff.inline import splice
from compiler.trace import STATIC
from compiler.trace.creation import active_contexts
from compiler.trace.entry import leaf_kind
from runtime.memo import per_function
from runtime.signature import signature_key


def _compiled_jvp(
    fun: Callable,
    has_aux: bool,
    backend: str | None,
    disable: Sequence[str],
    compile: str | None = None,
) -> Callable:
    """The `jit` of `(primals, tangents) -> jvp(...)` for `fun`, one per function and options,
    so repeated calls reuse one compiled function per signature."""

    def make() -> Callable:
        def jvp_of(primals: Any, tangents: Any) -> Any:
            return jvp_in_trace(fun, primals, tangents, has_aux)

        jvp_of.__name__ = f"jvp_of_{getattr(fun, '__name__', 'function')}"
        return jit(jvp_of, backend=backend, disable=disable, compile=compile)

    return per_function(fun, ("jvp", has_aux, backend, tuple(disable), compile), make)


def jvp(
    fun: Callable,
    primals: Sequence[Any],
    tangents: Sequence[Any],
    *,
    has_aux: bool = False,
    backend: str | None = None,
    disable: Sequence[str] = (),
    compile: str | None = None,
) -> tuple:
    """`(out, tangent_out)` of `fun` at `primals` along `tangents` (JAX's convention; with
    `has_aux`, `(out, tangent_out, aux)`). One tangent per primal, each with its primal's
    structure, shapes and dtypes."""
    if not callable(fun):
        raise TypeError(f"jvp expects a callable, got {type(fun).__name__}")
    if not (isinstance(primals, (tuple, list)) and isinstance(tangents, (tuple, list))):
        check_tangents(fun, primals, tangents)  # raises the error that names which
    # the rest of the checks run when a new signature is traced (shapes and dtypes are in it)
    compiled = _compiled_jvp(fun, has_aux, backend, disable, compile)
    return compiled(tuple(primals), tuple(tangents))


def linearize(
    fun: Callable,
    *primals: Any,
    has_aux: bool = False,
    backend: str | None = None,
    disable: Sequence[str] = (),
    compile: str | None = None,
) -> tuple:
    """`(out, f_jvp)` with `f_jvp(*tangents)` the JVP of `fun` at `primals` (JAX's
    convention; with `has_aux`, `(out, f_jvp, aux)`). The forward runs once and stores the
    residuals; `f_jvp` runs only the compiled linear part on them."""
    if not callable(fun):
        raise TypeError(f"linearize expects a callable, got {type(fun).__name__}")
    if active_contexts():  # inside a transformation: both parts go into its trace
        out, f_jvp, aux, *_ = linearize_in_trace(fun, primals, has_aux)
        return (out, f_jvp, aux) if has_aux else (out, f_jvp)
    key = ("linearize", has_aux, backend, tuple(disable), compile)
    lin = per_function(fun, key, lambda: _Linearize(fun, has_aux, backend, tuple(disable), compile))
    return lin(primals)


class _Linearize:
    """Two compiled stages per signature: forward (outputs and residuals) and linear."""

    def __init__(
        self,
        fun: Callable,
        has_aux: bool,
        backend: str | None,
        disable: tuple,
        compile: str | None = None,
    ) -> None:
        self.fun, self.has_aux, self.backend, self.disable = fun, has_aux, backend, disable
        self.compile = compile
        self._forward = jit(self._traced_forward, backend=backend, disable=disable, compile=compile)
        self._linear: dict[Any, Callable] = {}  # signature -> compiled linear stage
        self._traced: tuple | None = None  # (linear graph, wrt) of the last forward trace
        self._lock = threading.Lock()

    def _new_linear(self, leaves: list) -> tuple:
        """The compiled linear stage for the signature whose forward was just traced."""
        linear, wrt = self._traced
        dyn = [i for i, x in enumerate(leaves) if leaf_kind(x) != STATIC]

        def run_linear(res: list, tangent_leaves: list) -> Any:
            return splice(linear, list(res) + list(tangent_leaves), "linearize")

        lin = jit(run_linear, backend=self.backend, disable=self.disable, compile=self.compile)
        return lin, dyn, wrt

    def _traced_forward(self, primals: tuple) -> Any:
        out, _, aux, res, linear, wrt = linearize_in_trace(self.fun, primals, self.has_aux)
        self._traced = (linear, wrt)
        return out, aux, res

    def __call__(self, primals: tuple) -> tuple:
        leaves, tree = optree.tree_flatten((tuple(primals), {}), none_is_leaf=False)
        key = signature_key(leaves, tree)
        linear_stage = self._linear.get(key)
        if linear_stage is None:
            with self._lock:  # the forward's trace hands its linear part over in self._traced
                out, aux, res = self._forward(tuple(primals))
                linear_stage = self._linear.get(key) or self._new_linear(leaves)
                self._linear[key] = linear_stage
        else:
            out, aux, res = self._forward(tuple(primals))
        compiled, dyn, wrt = linear_stage
        fun, n_primal = self.fun, optree.tree_structure(out, none_is_leaf=False)

        def f_jvp(*tangents: Any) -> Any:
            check_tangents(fun, primals, tangents, "linearize")
            t_leaves, _ = optree.tree_flatten(tuple(tangents), none_is_leaf=False)
            tans = compiled(list(res), [t_leaves[dyn[k]] for k in wrt])
            return optree.tree_unflatten(n_primal, list(tans)[: n_primal.num_leaves])

        return (out, f_jvp, aux) if self.has_aux else (out, f_jvp)
