"""Shared pieces of the planner tests: the deep residual net, random graphs, a slot runner."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

import compiler
from compiler.autodiff import vjp_graph
from compiler.interpret import run_graph, run_node
from compiler.ir import Builder, Graph, TensorType
from compiler.plan import Buffers
from compiler.trace import flatten

F64 = np.dtype("float64")


def deep(params, x, y):
    """A residual tanh net, h = h + tanh(h @ W_k + b_k), with an MSE loss."""
    h = x
    for W, b in params:
        h = h + np.tanh(h @ W + b)
    return np.mean((h - y) ** 2)


def deep_args(depth: int, width: int = 4, batch: int = 16, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    params = [
        (rng.normal(size=(width, width)) / width, rng.normal(size=width) / width)
        for _ in range(depth)
    ]
    return params, rng.normal(size=(batch, width)), rng.normal(size=(batch, width))


def flat_args(args: Sequence) -> list[np.ndarray]:
    leaves, _ = flatten(tuple(args))
    return [np.asarray(x) for x in leaves]


def joint_of(fun, *args, seeds: str = "ones") -> tuple[Graph, list[np.ndarray]]:
    """The joint graph of `fun` w.r.t. every input, and the flat inputs it takes."""
    g = compiler.trace(fun, *args)
    wrt = list(range(len(g.inputs)))
    return vjp_graph(g, wrt, seeds=seeds, ct_outputs=(0,)), flat_args(args)


def run_in_slots(graph: Graph, bufs: Buffers, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run `graph` with every buffer-owning value written into its slot's memory (views read
    through it), as generated code would: a slot reused too early corrupts the result."""
    mem = [np.full(s.size, np.nan, s.dtype) for s in bufs.slots]
    env = {v: np.asarray(a, v.dtype) for v, a in zip(graph.inputs, args)}
    for n in graph.nodes:
        outs = run_node(n, [env[v] for v in n.inputs])
        for v, o in zip(n.outputs, outs):
            if v in bufs.slot_of:
                dst = mem[bufs.slot_of[v]].reshape(v.shape)
                dst[...] = o
                env[v] = dst
            else:
                env[v] = o
                root = bufs.views.get(v)
                if root is not None and root in bufs.slot_of:
                    assert np.shares_memory(o, mem[bufs.slot_of[root]]) or o.size == 0
    return [np.array(env[v]) for v in graph.outputs]


def assert_same(a: Sequence[np.ndarray], b: Sequence[np.ndarray], tol: float = 1e-12) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def check_plan_runs(p, joint: Graph, args: Sequence[np.ndarray]) -> None:
    """The planned graph gives the joint's results, on the interpreter and in its slots."""
    compiler.verify(p.graph)
    want = run_graph(joint, args)
    assert_same(run_graph(p.graph, args), want)
    assert_same(run_in_slots(p.graph, p.buffers, args), want)


@st.composite
def random_graphs(draw, max_nodes: int = 24) -> Graph:
    """Random graphs of elementwise ops, views, copies, reductions and matmuls."""
    b = Builder()
    vals = [b.add_input(TensorType((3, 4), F64)) for _ in range(draw(st.integers(1, 3)))]
    for _ in range(draw(st.integers(1, max_nodes))):
        x = draw(st.sampled_from(vals))
        kind = draw(st.sampled_from(["unary", "binary", "binary", "view", "copy", "reduce"]))
        if kind == "unary":
            v = b.add(draw(st.sampled_from(["tanh", "negative", "square"])), [x])
        elif kind == "binary":
            same = [w for w in vals if w.shape == x.shape]
            y = draw(st.sampled_from(same))
            v = b.add(draw(st.sampled_from(["add", "multiply", "subtract"])), [x, y])
        elif kind == "view" and x.ndim == 2:
            v = _view(draw, b, x)
        elif kind == "copy" and x.ndim == 2:
            v = b.add("reshape", [x], {"shape": (x.shape[1], x.shape[0])})
        elif kind == "reduce" and x.ndim == 2:
            s = b.add("sum", [x], {"axis": (0,), "keepdims": False})
            v = b.add("broadcast_to", [s], {"shape": (2, x.shape[1])})
        else:
            mats = [w for w in vals if w.ndim == 2 and x.ndim == 2 and w.shape[0] == x.shape[1]]
            if not mats:
                continue
            v = b.add("matmul", [x, draw(st.sampled_from(mats))])
        vals.append(v)
    k = draw(st.integers(1, 3))
    outs = draw(st.lists(st.sampled_from(vals), min_size=k, max_size=k))
    return b.build(outs)


def _view(draw, b: Builder, x):
    op = draw(st.sampled_from(["transpose", "slice", "reshape2"]))
    if op == "transpose":
        return b.add("transpose", [x], {"axes": (1, 0)})
    if op == "slice":
        rows = (x.shape[0] + 1) // 2
        return b.add("slice", [x], {"index": ((0, 2, rows), (0, 1, x.shape[1]))})
    flat = b.add("reshape", [x], {"shape": (x.shape[0] * x.shape[1],)})
    return b.add("reshape", [flat], {"shape": x.shape})


def random_inputs(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=v.shape).astype(v.dtype) for v in graph.inputs]
