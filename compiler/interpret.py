"""The reference interpreter: runs a graph on each op's NumPy implementation.

It is the oracle every compiled result is tested against, and `backend="interpret"`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optree

from compiler.ir.graph import Graph, Node
from compiler.primitives import OPS, Kind
from compiler.trace.draws import sample


def run_node(n: Node, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    if n.op in ("fused", "custom"):  # a sub-graph: a fusion group or a custom-rule call
        return run_graph(n.attrs["body"], args)
    attrs = n.attrs
    if OPS[n.op].kind in (Kind.LOOP, Kind.FUSED):  # one array per output (loops, rowfused)
        return OPS[n.op].impl(*args, **attrs)
    with np.errstate(all="ignore"):
        out = OPS[n.op].impl(*args, **attrs)
    out = np.asarray(out)
    t = n.out.type
    if out.dtype != t.dtype:
        out = out.astype(t.dtype)
    if out.shape != t.shape:
        raise AssertionError(f"{n.op}: reference gave shape {out.shape}, IR says {t}")
    return [out]


def run_graph(graph: Graph, args: Sequence[Any]) -> list[np.ndarray]:
    """Evaluate `graph` on flat input arrays; return the flat outputs."""
    if len(args) != len(graph.inputs):
        raise TypeError(f"graph takes {len(graph.inputs)} inputs, got {len(args)}")
    env = {}
    for v, a in zip(graph.inputs, args):
        a = np.asarray(a)
        if a.shape != v.shape:
            raise ValueError(f"input shaped {a.shape} where the graph expects {v.type}")
        env[v] = a.astype(v.dtype, copy=False)
    for n in graph.nodes:
        outs = run_node(n, [env[v] for v in n.inputs])
        env.update(zip(n.outputs, outs))
    # Fresh, writable arrays, as the compiled backend returns: an output may be an input (the
    # caller's array), a constant (read-only, shared by every call) or a view of another
    # output, and the caller must be free to write to it.
    return [np.array(env[v], order="C") for v in graph.outputs]


def interpret(graph: Graph, *args: Any, **kwargs: Any) -> Any:
    """Run a traced graph on the same arguments the traced function took.

    With a graph from `trace`, arguments are pytrees like the function's and the result has
    the function's output structure; for other graphs pass one array per graph input.
    """
    meta = graph.meta
    if "in_tree" in meta:
        leaves, tree = optree.tree_flatten((tuple(args), dict(kwargs)), none_is_leaf=False)
        if tree != meta["in_tree"]:
            raise TypeError("arguments do not have the structure the graph was traced with")
        flat = [x for x, k in zip(leaves, meta["kinds"]) if k != "static"]
        if "draws" in meta:  # random draws inside the function: made anew on each run
            flat += sample(meta["draws"])
    else:
        flat = list(args)
    outs = run_graph(graph, flat)
    if "out_tree" in meta:
        return optree.tree_unflatten(meta["out_tree"], outs)
    return outs[0] if len(outs) == 1 else tuple(outs)
