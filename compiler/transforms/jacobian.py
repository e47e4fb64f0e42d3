"""`jacfwd`, `jacrev`, `jacobian`, `hessian` and `hvp`: each one compiled function per
signature (through `jit`'s pipeline and cache), and each inlined when called inside another
transformation, so they nest with `grad`, `vjp`, `jvp` and each other."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree

from compiler.api import grad, jit
from compiler.autodiff.apply import check_tangents, jvp_in_trace
from compiler.autodiff.inline import current_trace, differentiable_leaves, trace_sub
from compiler.autodiff.jacobian import FORWARD, REVERSE, choose_mode, jacobian_blocks

log = logging.getLogger("gradc")

_MODES = {"jacfwd": FORWARD, "jacrev": REVERSE, "hessian": FORWARD, "jacobian": None}


class _Jacobian:
    """A Jacobian transform of `fun`: called, it returns `out.shape + arg.shape` blocks laid out
    as JAX lays them out (output pytree of argument pytrees; a tuple over `argnums`)."""

    def __init__(
        self,
        fun: Callable,
        name: str,
        argnums: int | Sequence[int],
        has_aux: bool,
        backend: str | None,
        disable: Sequence[str],
        compile: str | None = None,
    ) -> None:
        if not callable(fun):
            raise TypeError(f"{name} expects a callable, got {type(fun).__name__}")
        self.__name__ = f"{name}({getattr(fun, '__name__', 'function')})"
        if name == "hessian":  # forward over reverse: the Jacobian of the gradient
            fun = grad(
                fun, argnums, has_aux=has_aux, backend=backend, disable=disable, compile=compile
            )
        self.fun, self.name, self.has_aux = fun, name, has_aux
        self.single = isinstance(argnums, (int, np.integer))
        self.argnums = (int(argnums),) if self.single else tuple(int(a) for a in argnums)
        self._jit = jit(self.traced, backend=backend, disable=disable, compile=compile)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._jit(*args, **kwargs)

    def traced(self, *args: Any, **kwargs: Any) -> Any:
        """The Jacobian built into the innermost active trace."""
        sub = trace_sub(self.fun, args, kwargs, self.has_aux, self.name)
        leaves = differentiable_leaves(self.fun, args, self.argnums, sub.traced.kinds, self.name)
        wrt = [sub.position(i) for i in leaves]
        mode, n_in, n_out = choose_mode(sub, wrt)
        mode = _MODES[self.name] or mode
        note = f"{self.name}: {mode} mode ({n_in} input elements, {n_out} output elements)"
        log.info("%s", note)
        current_trace(self.name).notes.append(note)  # printed at the top of `gradc ir`
        outs, blocks = jacobian_blocks(sub, wrt, mode)
        arg_trees = [optree.tree_structure(args[a % len(args)]) for a in self.argnums]

        def per_output(row: list) -> Any:
            parts, pos = [], 0
            for t in arg_trees:
                parts.append(optree.tree_unflatten(t, row[pos : pos + t.num_leaves]))
                pos += t.num_leaves
            return parts[0] if self.single else tuple(parts)

        jac = optree.tree_unflatten(sub.primal_tree(), [per_output(r) for r in blocks])
        if self.has_aux:
            return jac, sub.split_outputs(outs)[1]
        return jac


def _maker(name: str) -> Callable:
    def transform(
        fun: Callable,
        argnums: int | Sequence[int] = 0,
        *,
        has_aux: bool = False,
        backend: str | None = None,
        disable: Sequence[str] = (),
        compile: str | None = None,
    ) -> _Jacobian:
        return _Jacobian(fun, name, argnums, has_aux, backend, disable, compile)

    transform.__name__ = name
    return transform


jacfwd = _maker("jacfwd")
jacfwd.__doc__ = "`jacfwd(f)(*args)`: the Jacobian by forward mode, one sweep per input element."
jacrev = _maker("jacrev")
jacrev.__doc__ = "`jacrev(f)(*args)`: the Jacobian by reverse mode, one sweep per output element."
jacobian = _maker("jacobian")
jacobian.__doc__ = (
    "`jacobian(f)(*args)`: the Jacobian by forward mode when the inputs have no more elements "
    "than the outputs, else by reverse mode; jacrev's layout either way."
)


hessian = _maker("hessian")
hessian.__doc__ = (
    "`hessian(f)(*args)`: forward over reverse, `jacfwd(grad(f))`; `f` must return a float "
    "scalar (grad's error otherwise)."
)


class _Hvp:
    def __init__(
        self, fun: Callable, backend: str | None, disable: Sequence[str], compile: str | None
    ) -> None:
        if not callable(fun):
            raise TypeError(f"hvp expects a callable, got {type(fun).__name__}")
        self.fun = fun
        self.__name__ = f"hvp({getattr(fun, '__name__', 'function')})"
        self._grad = grad(fun, backend=backend, disable=disable, compile=compile)
        self._jit = jit(self.traced, backend=backend, disable=disable, compile=compile)

    def __call__(self, x: Any, v: Any, *args: Any, **kwargs: Any) -> Any:
        return self._jit(x, v, *args, **kwargs)

    def traced(self, x: Any, v: Any, *args: Any, **kwargs: Any) -> Any:
        """H(x) @ v as a JVP of the gradient (forward over reverse), built into the trace."""
        check_tangents(self.fun, (x,), (v,), "hvp")
        g = self._grad

        def grad_at(y: Any) -> Any:
            return g(y, *args, **kwargs)

        return jvp_in_trace(grad_at, (x,), (v,), False)[1]


def hvp(
    fun: Callable,
    *,
    backend: str | None = None,
    disable: Sequence[str] = (),
    compile: str | None = None,
) -> _Hvp:
    """`hvp(f)(x, v, *args)`: the Hessian of scalar `f` w.r.t. its first argument at `x`, times
    `v` (a pytree like `x`), without forming the Hessian; the signature scipy's `hessp=` calls."""
    return _Hvp(fun, backend, disable, compile)
