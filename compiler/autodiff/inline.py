"""Transformations inside a trace: trace a function into a sub-graph, transform that graph,
and splice the result into the innermost active trace.

This is how every transformation nests with every other: `jvp(grad(f))` traces `grad(f)`,
whose own trace splices f's joint graph in, then differentiates the result in forward mode.
Values of enclosing traces that a function closes over become extra inputs of its sub-graph
(`Traced.captured`) and are wired back to the enclosing values when spliced, so an outer
transformation differentiates through them too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optree

from compiler.ir.graph import Graph, copy_into
from compiler.trace import STATIC, Traced, Tracer, trace_tree
from compiler.trace.creation import active_contexts
from compiler.trace.tracer import TraceContext


def current_trace(what: str) -> TraceContext:
    """The innermost active trace; a clear error when there is none."""
    stack = active_contexts()
    if not stack:
        raise RuntimeError(
            f"{what} was called outside the traced function it belongs to (a traced value "
            "escaped its transformation)"
        )
    return stack[-1]


def arg_names(fun: Callable, n: int) -> list[str]:
    """The parameter names of `fun`'s first n positional arguments (`#i` when unknown)."""
    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"#{i}" for i in range(n)]


def describe(x: Any) -> str:
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    if isinstance(x, Tracer):
        return f"an array {x.type}"
    return f"a {type(x).__name__}"


def check_aux(fun: Callable, has_aux: bool, what: str) -> Callable:
    """`fun`, checked to return an (output, aux) pair when `has_aux`."""
    if not has_aux:
        return fun

    def wrapped(*a: Any, **k: Any) -> Any:
        out = fun(*a, **k)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                f"{what}(has_aux=True) needs the function to return a pair "
                f"(output, aux); it returned {describe(out)}"
            )
        return out

    return wrapped


def differentiable_leaves(
    fun: Callable, args: tuple, argnums: Sequence[int], kinds: Sequence[str], what: str
) -> list[int]:
    """Leaf positions (among all argument leaves) of the arguments in `argnums`, checked to
    be float32/float64 arrays or Python floats."""
    names = arg_names(fun, len(args))
    for a in argnums:
        if not -len(args) <= a < len(args):
            raise ValueError(
                f"{what}: argnums={a} is out of range for a function "
                f"called with {len(args)} positional arguments"
            )
    starts, pos = [], 0
    for a in args:
        starts.append(pos)
        pos += optree.tree_flatten(a, none_is_leaf=False)[1].num_leaves
    out = []
    for a in argnums:
        a %= len(args)
        sub, _ = optree.tree_flatten(args[a], none_is_leaf=False)
        for j, leaf in enumerate(sub):
            i = starts[a] + j
            dt = getattr(leaf, "dtype", None)
            if (
                kinds[i] == STATIC
                or (dt is not None and np.dtype(dt).kind != "f")
                or (dt is not None and np.dtype(dt) == np.float16)
            ):
                kind = f"dtype {np.dtype(dt)}" if dt is not None else f"type {type(leaf).__name__}"
                raise TypeError(
                    f"{what}: argument {names[a]!r} (argnums={a}) has {kind}; "
                    "gradients need float32/float64 arrays or Python floats"
                )
            out.append(i)
    return out


@dataclass
class Sub:
    """A function traced inside an enclosing trace, ready to be transformed and spliced."""

    traced: Traced
    leaves: list  # every argument leaf (tracers, arrays, statics)
    dyn: list[int]  # leaf positions that are graph inputs, in graph-input order
    n_primal: int  # output leaves of the primal part (all of them without has_aux)
    has_aux: bool
    _drawn: list | None = None  # the draws' inputs in the enclosing trace (see `inputs`)

    @property
    def graph(self) -> Graph:
        return self.traced.graph

    def inputs(self) -> list[Any]:
        """What the sub-graph's inputs are bound to: dynamic leaves, captured values, then
        the random draws made inside (recorded once as draws of the enclosing trace)."""
        if self._drawn is None:
            ctx = current_trace("a transformation")
            vals = [ctx.draw_input(d) for d in self.traced.draws]  # events too, in order
            self._drawn = [Tracer(ctx, v) for v in vals if v is not None]
        return [self.leaves[i] for i in self.dyn] + list(self.traced.captured) + self._drawn

    def position(self, leaf: int) -> int:
        """Graph-input position of argument leaf `leaf`."""
        return self.dyn.index(leaf)

    def split_outputs(self, flat: Sequence[Any]) -> tuple[Any, Any]:
        """(primal output pytree, aux pytree or None) from flat output values."""
        out = optree.tree_unflatten(self.traced.out_tree, list(flat))
        return (out[0], out[1]) if self.has_aux else (out, None)

    def primal_tree(self) -> Any:
        """The pytree structure of the primal output (without aux)."""
        n = len(self.graph.outputs)
        out = optree.tree_unflatten(self.traced.out_tree, list(range(n)))
        return optree.tree_structure(out[0] if self.has_aux else out, none_is_leaf=False)


def trace_sub(fun: Callable, args: tuple, kwargs: dict, has_aux: bool, what: str) -> Sub:
    """Trace `fun(*args, **kwargs)` as a sub-graph of the innermost active trace."""
    leaves, _ = optree.tree_flatten((tuple(args), dict(kwargs)), none_is_leaf=False)
    tr = trace_tree(check_aux(fun, has_aux, what), tuple(args), kwargs)
    dyn = [i for i, k in enumerate(tr.kinds) if k != STATIC]
    n_out = len(tr.graph.outputs)
    n_primal = n_out
    if has_aux:
        first = optree.tree_unflatten(tr.out_tree, list(range(n_out)))[0]
        n_primal = optree.tree_structure(first, none_is_leaf=False).num_leaves
    return Sub(tr, leaves, dyn, n_primal, has_aux)


def splice(graph: Graph, ins: Sequence[Any], what: str = "a transformation") -> list[Tracer]:
    """Copy `graph` into the innermost active trace with its inputs bound to `ins` (tracers of
    any enclosing trace, arrays or scalars); return its outputs as tracers."""
    ctx = current_trace(what)
    vals = []
    for v, x in zip(graph.inputs, ins, strict=True):
        # a concrete value (a Python float, a closure's array) takes the input's dtype
        t = ctx.lift(x) if isinstance(x, Tracer) else ctx.lift(np.asarray(x, dtype=v.dtype))
        if t.type != v.type:
            raise TypeError(f"internal: {what} input typed {t.type} where {v.type} is expected")
        vals.append(t.value)
    return [Tracer(ctx, v) for v in copy_into(ctx.builder, graph, vals)]
