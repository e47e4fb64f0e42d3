"""Graphs for the codegen and fusion tests: traced losses and random elementwise graphs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from compiler import trace
from compiler.autodiff import vjp_graph
from compiler.ir import Builder, Graph, TensorType
from compiler.passes import run_passes
from tests.strategies import mutually_broadcastable_shapes

UNFUSED = ("simplify", "fold", "cse", "dce")


def deep_loss(params, x, target):
    h = x
    for w, b in params:
        h = h + np.tanh(h @ w + b)
    return np.mean((h - target) ** 2)


def deep_args(depth: int, width: int, batch: int, dtype=np.float64, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = [
        (
            (0.5 / np.sqrt(width) * rng.standard_normal((width, width))).astype(dtype),
            (0.01 * rng.standard_normal(width)).astype(dtype),
        )
        for _ in range(depth)
    ]
    x = rng.standard_normal((batch, width)).astype(dtype)
    target = rng.standard_normal((batch, width)).astype(dtype)
    flat = [a for wb in params for a in wb] + [x, target]
    return (params, x, target), flat


def joint(fn, args, wrt: int, fuse: bool = True) -> Graph:
    """The value-and-gradient graph of `fn` w.r.t. its first `wrt` flat inputs, optimised."""
    g = vjp_graph(trace(fn, *args), list(range(wrt)))
    return run_passes(g, UNFUSED + (("fuse",) if fuse else ()), check=True)


def deep_joint(depth: int, width: int, batch: int, dtype=np.float64, fuse: bool = True):
    args, flat = deep_args(depth, width, batch, dtype)
    return joint(deep_loss, args, 2 * depth, fuse), flat


_UNARY = ("negative", "tanh", "sin", "cos", "square", "abs", "exp", "sign")
_BINARY = ("add", "subtract", "multiply", "maximum", "minimum", "divide")


@st.composite
def elementwise_graphs(draw, max_nodes: int = 8, dtype=np.float64):
    """Random graphs of elementwise ops with broadcasting, scalar constants, `broadcast_to`
    and trailing reductions, and random float inputs for them."""
    n_in = draw(st.integers(1, 3))
    shapes = draw(mutually_broadcastable_shapes(num_shapes=n_in, max_dims=3, max_side=4))
    b = Builder()
    vals = [b.add_input(TensorType(s, dtype)) for s in shapes]
    for _ in range(draw(st.integers(1, max_nodes))):
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "bcast", "const"]))
        x = draw(st.sampled_from(vals))
        if kind == "unary":
            vals.append(b.add(draw(st.sampled_from(_UNARY)), [x]))
        elif kind == "binary":
            y = draw(st.sampled_from(vals))
            try:
                np.broadcast_shapes(x.shape, y.shape)
            except ValueError:
                continue
            op = draw(st.sampled_from(_BINARY + ("where",)))
            if op == "where":
                vals.append(b.add("where", [b.add("greater", [x, y]), x, y]))
            else:
                vals.append(b.add(op, [x, y]))
        elif kind == "reduce" and x.ndim:
            axes = draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, unique=True))
            op = draw(st.sampled_from(["sum", "max", "min"]))
            vals.append(
                b.add(op, [x], {"axis": tuple(sorted(axes)), "keepdims": draw(st.booleans())})
            )
        elif kind == "bcast":
            vals.append(b.add("broadcast_to", [x], {"shape": (2, *x.shape)}))
        elif kind == "const":
            c = b.const(np.asarray(draw(st.sampled_from([0.5, -1.5, 2.0])), dtype=dtype))
            vals.append(b.add("multiply", [c, x]))
    extra = draw(st.lists(st.sampled_from(vals), max_size=2))
    g = b.build([vals[-1], *extra])
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    args = [rng.uniform(-2, 2, size=v.shape).astype(dtype) for v in g.inputs]
    return g, args


def logreg_shape_graph(n: int) -> Graph:
    """logreg's shape: one group makes z, relu(z) and -|z|; relu is read only with z (the
    case `pushdown` exists for)."""
    b = Builder()
    x = b.add_input(TensorType((n,), np.float64))
    c = b.add_input(TensorType((1,), np.float64))
    y = b.add_input(TensorType((n,), np.float64))
    z = b.add("add", [x, c])
    relu = b.add("maximum", [z, b.const(np.float64(0.0))])
    e = b.add("exp", [b.add("negative", [b.add("abs", [z])])])
    terms = b.add("subtract", [b.add("add", [relu, e]), b.add("multiply", [y, z])])
    loss = b.add("sum", [terms], {"axis": (0,), "keepdims": False})
    return b.build([loss, b.add("multiply", [z, e])])
