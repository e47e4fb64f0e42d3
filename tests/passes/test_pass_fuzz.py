"""Random graphs full of fills, identities and view chains: every pass keeps them correct."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.ir import Builder, Graph, TensorType, Value, verify
from compiler.passes import PASSES, run_passes
from tests.passes.cases import assert_same_outputs

F64 = np.dtype("float64")
INPUT_SHAPES = [(2, 3), (3,), ()]
FILLS = [0.0, 1.0, -1.0, 2.0]


def _broadcasts(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _pick(data: st.DataObject, pool: list[Value], like: Value | None = None) -> Value:
    """A value from `pool` (one that broadcasts with `like`, when given)."""
    if like is not None:
        pool = [v for v in pool if _broadcasts(v.shape, like.shape) is not None]
    return pool[data.draw(st.integers(0, len(pool) - 1))]


def _step(data: st.DataObject, b: Builder, pool: list[Value]) -> Value:
    """One random node over values in `pool` (bounded values: no Inf, so no NaN from 0 * x)."""
    kind = data.draw(
        st.sampled_from(["unary", "binary", "fill", "view", "sum", "where", "divide", "logexp"])
    )
    x = _pick(data, pool)
    if kind == "unary":
        return b.add(data.draw(st.sampled_from(["negative", "tanh", "sin", "square"])), [x])
    if kind == "binary":
        op = data.draw(st.sampled_from(["add", "subtract", "multiply", "maximum"]))
        y = _pick(data, pool, like=x)
        if data.draw(st.booleans()):
            y = b.add(op, [y, y]) if data.draw(st.booleans()) else y
        return b.add(op, [x, y] if data.draw(st.booleans()) else [y, x])
    if kind == "fill":
        shape = data.draw(
            st.sampled_from([s for s in INPUT_SHAPES if _broadcasts(s, x.shape) is not None])
        )
        fill = b.add(
            "full", [], {"shape": shape, "dtype": F64, "fill": data.draw(st.sampled_from(FILLS))}
        )
        return b.add(data.draw(st.sampled_from(["add", "multiply", "subtract"])), [x, fill])
    if kind == "view":
        if x.ndim == 2 and data.draw(st.booleans()):
            t = b.add("transpose", [x], {"axes": (1, 0)})
            return b.add("transpose", [t], {"axes": (1, 0)}) if data.draw(st.booleans()) else t
        if _broadcasts(x.shape, (2, 3)) == (2, 3) and data.draw(st.booleans()):
            return b.add("broadcast_to", [x], {"shape": (2, 3)})
        r = b.add("reshape", [x], {"shape": (x.type.size,)})
        return b.add("reshape", [r], {"shape": (1,) + x.shape})
    if kind == "sum":
        axes = tuple(a for a in range(x.ndim) if data.draw(st.booleans()))
        src = x
        if data.draw(st.booleans()) and _broadcasts(x.shape, (2, 3)) == (2, 3):
            src = b.add("broadcast_to", [x], {"shape": (2, 3)})
            axes = tuple(a for a in range(2) if data.draw(st.booleans()))
        return b.add("sum", [src], {"axis": axes, "keepdims": data.draw(st.booleans())})
    if kind == "where":
        zero = b.add("full", [], {"shape": (), "dtype": F64, "fill": 0.0})
        c = b.add("greater", [x, zero])
        y = _pick(data, pool, like=x)
        return b.add(
            "where",
            [c, y, _pick(data, [v for v in pool if _broadcasts(v.shape, x.shape, y.shape)])],
        )
    if kind == "divide":
        den = b.add("exp", [b.add("tanh", [_pick(data, pool, like=x)])])
        return b.add("divide", [x, den])
    return b.add("log", [b.add("exp", [b.add("tanh", [x])])])


@st.composite
def graphs(draw) -> Graph:
    data = draw(st.data())
    b = Builder()
    pool = [b.add_input(TensorType(s, F64)) for s in INPUT_SHAPES]
    for _ in range(draw(st.integers(1, 12))):
        pool.append(_step(data, b, pool))
    n_out = draw(st.integers(1, 3))
    return b.build(pool[-n_out:])


def _inputs(g: Graph, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=v.shape) for v in g.inputs]


@settings(deadline=None, max_examples=400)
@given(g=graphs(), seed=st.integers(0, 2**16))
def test_fuzz_every_pass_is_correct_and_idempotent(g, seed):
    args = _inputs(g, seed)
    for name in ("simplify", "fold", "batch", "cse", "dce"):
        once = verify(PASSES[name](g))
        assert_same_outputs(g, once, args)
        assert PASSES[name](once) is once, name
    out = run_passes(g, disable=("fuse",), check=True)  # fuse is fuzzed in its own tests
    assert_same_outputs(g, out, args)
