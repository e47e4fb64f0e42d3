"""`trace(fun, *args)`: run a plain-NumPy function on tracers and return its Graph."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optree

from compiler.ir.graph import Graph
from compiler.ir.types import TensorType
from compiler.trace import draws
from compiler.trace.creation import active_contexts, tracing
from compiler.trace.masking import Masked, data_dependent
from compiler.trace.namespace import View
from compiler.trace.tracer import TraceContext, Tracer, TracerError

ARRAY, FLOAT, STATIC = "array", "float", "static"


def leaf_kind(leaf: Any) -> str:
    """How an argument leaf is traced: arrays and numpy scalars are graph inputs, Python
    floats are weakly typed float64 inputs, everything else (int, bool, str...) is static."""
    if isinstance(leaf, Tracer):
        return ARRAY
    if isinstance(leaf, (np.ndarray, np.generic)):
        if leaf.dtype.kind not in "fiub":
            raise TypeError(f"gradc does not support {leaf.dtype} arrays")
        return ARRAY
    if isinstance(leaf, float):
        return FLOAT
    return STATIC


def flatten(tree: Any) -> tuple[list, Any]:
    return optree.tree_flatten(tree, none_is_leaf=False)


@dataclass
class Traced:
    graph: Graph
    kinds: list[str]  # per argument leaf
    in_tree: Any
    out_tree: Any
    captured: list[Tracer]  # outer-trace values this graph reads (extra trailing inputs)
    draws: list[draws.Draw]  # random draws, filled at each call (inputs after the captured)


def trace_tree(fun: Callable, args: tuple, kwargs: dict | None = None) -> Traced:
    """Trace `fun(*args, **kwargs)`; graph inputs are the non-static leaves, in order."""
    leaves, in_tree = flatten((tuple(args), dict(kwargs or {})))
    kinds = [leaf_kind(x) for x in leaves]
    ctx = TraceContext(depth=len(active_contexts()) + 1)
    boxed = []
    view = View(random_view=draws.view)
    for leaf, kind in zip(leaves, kinds):
        if kind == STATIC:
            boxed.append(view.of(leaf))  # a generator, a function passed in: traced views
            continue
        if isinstance(leaf, Tracer):
            t = leaf.type
        else:
            t = TensorType(np.shape(leaf), np.asarray(leaf).dtype)
        # np.float64 (np.generic) and Python float arguments are immutable scalars
        scalar = kind == FLOAT or isinstance(leaf, np.generic) or getattr(leaf, "scalar", False)
        boxed.append(Tracer(ctx, ctx.builder.add_input(t), weak=kind == FLOAT, scalar=scalar))
    a, kw = optree.tree_unflatten(in_tree, boxed)
    guard = draws.FreezeGuard(fun, leaves)
    with tracing(ctx):
        try:
            out = view.entry(fun)(*a, **kw)
        finally:
            view.close()
        guard.check()
        out_leaves, out_tree = flatten(out)
        out_vals = []
        for o in out_leaves:
            if isinstance(o, Tracer):
                out_vals.append(ctx.lift(o).value)
            elif isinstance(o, Masked):
                raise data_dependent("returning x[mask]")
            elif isinstance(o, (np.ndarray, np.generic, float, int, bool)):
                out_vals.append(ctx.lift(np.asarray(o)).value)
            else:
                raise TracerError(
                    f"the traced function returned a {type(o).__name__}; "
                    "outputs must be arrays or scalars (in lists/tuples/dicts)"
                )
    # inputs: the arguments' leaves, the captured values, then the draws
    drawn = [v for _, v in ctx.draws if v is not None]
    taken = set(drawn)
    ctx.builder.inputs = [v for v in ctx.builder.inputs if v not in taken] + drawn
    meta = {"out_tree": out_tree, **({"notes": tuple(ctx.notes)} if ctx.notes else {})}
    graph = ctx.builder.build(out_vals, meta=meta)
    return Traced(
        graph, kinds, in_tree, out_tree, [t for t, _ in ctx.captured], [d for d, _ in ctx.draws]
    )


def trace(fun: Callable, *args: Any, **kwargs: Any) -> Graph:
    """Trace a plain-NumPy function at these arguments into a Graph (see `interpret`)."""
    tr = trace_tree(fun, args, kwargs)
    if tr.captured:
        raise TracerError(
            "trace() cannot be called on a function that closes over values "
            "being traced by an enclosing transformation"
        )
    meta = {"in_tree": tr.in_tree, "kinds": tuple(tr.kinds)}
    if tr.draws:
        meta["draws"] = tuple(tr.draws)
    return tr.graph.with_meta(**meta)


def call_user(fun: Callable, args: tuple, kwargs: dict) -> Any:
    """Call `fun` inside the active trace the way `trace_tree` does: with the traced NumPy
    namespace (used by `jit` inlined into an enclosing trace)."""
    view = View(random_view=draws.view)
    try:
        return view.entry(fun)(*args, **kwargs)
    finally:
        view.close()
