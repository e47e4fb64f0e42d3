"""`jvp` and `vjp` of a function, applied inside a trace (the building blocks of every public
transformation and of their nesting).

Each traces the function as a sub-graph, runs the graph transform (`jvp_graph`,
`vjp_graph`) on it and splices the result into the innermost active trace. The public API
compiles these by tracing them under `jit`, so a transformation called at top level and one
nested inside another are the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree

from compiler.autodiff.inline import Sub, arg_names, differentiable_leaves, splice, trace_sub
from compiler.autodiff.jvp import jvp_graph
from compiler.autodiff.partition import split_joint
from compiler.autodiff.vjp import vjp_graph
from compiler.trace import Tracer


def _leaf_type(x: Any) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(x, Tracer):
        return x.shape, x.dtype
    return np.shape(x), np.asarray(x).dtype


def check_tangents(fun: Callable, primals: Any, tangents: Any, what: str = "jvp") -> None:
    """Tangents must mirror the primals: same structure, and each leaf the same shape and (for
    float leaves) the same dtype; errors name the argument and both shapes."""
    for name, v in (("primals", primals), ("tangents", tangents)):
        if not isinstance(v, (tuple, list)):
            raise TypeError(
                f"{what}: {name} must be a tuple or list with one entry per positional "
                f"argument of the function; got a {type(v).__name__}"
            )
    if len(primals) != len(tangents):
        raise ValueError(
            f"{what}: {len(primals)} primals but {len(tangents)} tangents; give one tangent "
            "per primal"
        )
    for k, (p, t) in enumerate(zip(primals, tangents)):
        name = _LazyName(fun, len(primals), k)  # inspect.signature only when raising
        p_leaves, p_tree = optree.tree_flatten(p, none_is_leaf=False)
        t_leaves, t_tree = optree.tree_flatten(t, none_is_leaf=False)
        if p_tree != t_tree:
            raise TypeError(
                f"{what}: the tangent for argument {name!r} has structure {t_tree}, but the "
                f"primal has structure {p_tree}"
            )
        for pl, tl in zip(p_leaves, t_leaves):
            (ps, pd), (ts, td) = _leaf_type(pl), _leaf_type(tl)
            if ps != ts:
                raise ValueError(
                    f"{what}: the tangent for argument {name!r} has shape {ts}, but the primal "
                    f"has shape {ps}"
                )
            py_scalar = isinstance(tl, (float, int)) and not isinstance(tl, bool)
            if pd.kind == "f" and td != pd and not py_scalar:
                raise TypeError(
                    f"{what}: the tangent for argument {name!r} has dtype {td} (shape {ts}), "
                    f"but the primal has dtype {pd} (shape {ps}); tangents take their primal's "
                    "dtype"
                )


class _LazyName:
    """`arg_names(fun, n)[k]`, looked up when formatted (an error), not on every call."""

    def __init__(self, fun: Callable, n: int, k: int) -> None:
        self.fun, self.n, self.k = fun, n, k

    def __repr__(self) -> str:
        return repr(arg_names(self.fun, self.n)[self.k])


def float_inputs(sub: Sub) -> list[int]:
    """Graph-input positions of the float argument leaves (the ones with a tangent space)."""
    return [k for k, i in enumerate(sub.dyn) if _leaf_type(sub.leaves[i])[1].kind == "f"]


def jvp_in_trace(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool):
    """`(out, tangent_out)` (then `aux`) of `fun` at `primals` along `tangents`."""
    check_tangents(fun, primals, tangents)
    sub = trace_sub(fun, tuple(primals), {}, has_aux, "jvp")
    t_leaves, _ = optree.tree_flatten(tuple(tangents), none_is_leaf=False)
    wrt = float_inputs(sub)
    graph = jvp_graph(sub.graph, wrt)
    outs = splice(graph, sub.inputs() + [t_leaves[sub.dyn[k]] for k in wrt], "jvp")
    n = len(sub.graph.outputs)
    out, aux = sub.split_outputs(outs[:n])
    tan = optree.tree_unflatten(sub.primal_tree(), outs[n : n + sub.n_primal])
    return (out, tan, aux) if has_aux else (out, tan)


def linearize_in_trace(fun: Callable, primals: Sequence[Any], has_aux: bool):
    """`(out, f_jvp, aux, residuals, linear, wrt)`: the primal part of `fun`'s JVP graph
    spliced now, and `f_jvp(*tangents)` splicing its linear part (`linear`: residuals, then
    the tangents of graph inputs `wrt` -> output tangents) on the stored residuals."""
    sub = trace_sub(fun, tuple(primals), {}, has_aux, "linearize")
    wrt = float_inputs(sub)
    n = len(sub.graph.outputs)
    split = split_joint(jvp_graph(sub.graph, wrt), len(sub.graph.inputs), n)
    fwd = splice(split.forward, sub.inputs(), "linearize")
    out, aux = sub.split_outputs(fwd[:n])
    res = fwd[n:]
    tree = sub.primal_tree()

    def f_jvp(*tangents: Any) -> Any:
        check_tangents(fun, primals, tangents, "linearize")
        t_leaves, _ = optree.tree_flatten(tuple(tangents), none_is_leaf=False)
        tans = splice(split.backward, res + [t_leaves[sub.dyn[k]] for k in wrt], "linearize")
        return optree.tree_unflatten(tree, tans[: sub.n_primal])

    return out, f_jvp, aux, res, split.backward, wrt


def vjp_in_trace(fun: Callable, primals: Sequence[Any], has_aux: bool, what: str = "vjp"):
    """`(out, pullback)` (then `aux`) of `fun` at `primals`; `pullback(ct)` splices the
    backward graph into whichever trace is innermost when it is called."""
    sub = trace_sub(fun, tuple(primals), {}, has_aux, what)
    wrt_leaves = differentiable_leaves(
        fun, tuple(primals), range(len(primals)), sub.traced.kinds, what
    )
    wrt = [sub.position(i) for i in wrt_leaves]
    ins = sub.inputs()
    n = len(sub.graph.outputs)
    outs = splice(sub.graph, ins, what)
    out, aux = sub.split_outputs(outs)
    ct_tree = sub.primal_tree()
    ct_types = [(o.shape, o.dtype) for o in outs[: sub.n_primal]]
    joint = vjp_graph(sub.graph, wrt, seeds="input", ct_outputs=tuple(range(sub.n_primal)))
    arg_trees = [optree.tree_structure(p, none_is_leaf=False) for p in primals]

    def pullback(ct: Any) -> tuple:
        cts = check_cotangent(ct, ct_tree, ct_types, f"{what} pullback")
        grads = splice(joint, ins + cts, f"{what} pullback")[n:]
        res, pos = [], 0
        for t in arg_trees:
            res.append(optree.tree_unflatten(t, grads[pos : pos + t.num_leaves]))
            pos += t.num_leaves
        return tuple(res)

    return (out, pullback, aux) if has_aux else (out, pullback)


def check_cotangent(ct: Any, tree: Any, types: Sequence[tuple], what: str) -> list[Any]:
    """The cotangent's leaves, checked against the output's structure and leaf shapes."""
    leaves, got = optree.tree_flatten(ct, none_is_leaf=False)
    if got != tree:
        raise TypeError(f"{what}: the cotangent must have the output's structure {tree}, got {got}")
    out = []
    for c, (shape, dt) in zip(leaves, types):
        cs, _ = _leaf_type(c)
        if tuple(cs) != tuple(shape):
            raise ValueError(f"{what}: cotangent shaped {tuple(cs)} for an output shaped {shape}")
        out.append(c if isinstance(c, Tracer) else np.asarray(c, dtype=dt))
    return out
