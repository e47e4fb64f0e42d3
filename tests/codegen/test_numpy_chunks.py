"""The NumPy tier's loops run in chunks of rows (compiler/codegen/numpy_chunks.py): every
elementwise and reduction op, and the layouts chunking must get right, against the
interpreter, on one thread and on two (runtime/row_threads.py), which must agree bit for bit.
Chunks are forced small here; nothing compiles."""

from __future__ import annotations

import re

import numpy as np
import pytest

from compiler import value_and_grad
from compiler.codegen import numpy_chunks
from compiler.interpret import run_graph
from compiler.ir import Builder, Graph, TensorType
from compiler.pipeline import lower_graph
from compiler.primitives import OPS, Kind
from runtime import row_threads
from tests.codegen.util import assert_same, cache_dir  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    # 3 elements a chunk: several chunks, and a partial last one, on every sample's shape
    monkeypatch.setattr(numpy_chunks, "CHUNK_ELEMENTS", 3)
    monkeypatch.setattr(numpy_chunks, "CHUNK_MIN", 0)
    # and two chunks are enough to split between threads
    monkeypatch.setattr(row_threads, "MIN_CHUNKS_PER_THREAD", 1)


CHUNKED = re.compile(r"def t\d+_run\(")  # the chunk loop's function (numpy_chunks.py)


def _fused(name: str, args, attrs) -> Graph:
    """The op on -(-x) of each float input, then (if float and elementwise) its negation: one
    fused node, so the op reads temporaries (scratch) and writes an output."""
    inner = Builder()
    ins = [inner.add_input(TensorType(np.shape(a), np.asarray(a).dtype)) for a in args]
    pre = [
        inner.add("negative", [inner.add("negative", [v])]) if v.type.is_float else v for v in ins
    ]
    y = inner.add(name, pre, attrs)
    outs = [y]
    if OPS[name].kind is not Kind.REDUCE and y.type.is_float:
        outs.append(inner.add("negative", [y]))
    body = inner.build(outs)
    b = Builder()
    outer = [b.add_input(v.type) for v in ins]
    return b.build(b.add_node("fused", outer, {"body": body}, [v.type for v in body.outputs]))


def _check(g: Graph, args, chunked: bool | None = None) -> str:
    fn = lower_graph(g, stage="test", compile="never")
    if chunked is not None:
        assert bool(CHUNKED.search(fn.source)) == chunked, fn.source
    want = run_graph(g, list(args))
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv(row_threads.THREADS_ENV_VAR, "1")
        one = fn(*args)
        mp.setenv(row_threads.THREADS_ENV_VAR, "2")  # two, whatever the host's cores
        two = fn(*args)
    finally:
        mp.undo()
    for a, b, e in zip(one, two, want):
        assert_same(a, e)  # a sum over chunks adds in another order: rounding differs
        np.testing.assert_array_equal(a, b, strict=True)  # the split changes no bit
    return fn.source


@pytest.mark.parametrize(
    "name", sorted(n for n, d in OPS.items() if d.kind in (Kind.ELEMENTWISE, Kind.REDUCE))
)
def test_numpy_chunks_every_op_matches_interpreter(name):
    rng = np.random.default_rng(2)
    for s in OPS[name].samples(rng):
        _check(_fused(name, s.args, s.attrs), s.args)


def _graph(fun, *args) -> Graph:
    (low,) = value_and_grad(fun, compile="never").stages(*args).lowered
    return low.graph


@pytest.mark.parametrize("axis", [0, 1, (0, 1), None])
@pytest.mark.parametrize("red", ["sum", "max", "min"])
def test_numpy_chunks_reductions_over_and_across_rows(red, axis):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 5))
    col, row = rng.normal(size=(7, 1)), rng.normal(size=5)
    b = Builder()
    xs, cs, rs = (b.add_input(TensorType(a.shape, a.dtype)) for a in (x, col, row))
    inner = Builder()
    xi, ci, ri = (inner.add_input(v.type) for v in (xs, cs, rs))
    t = inner.add("tanh", [inner.add("add", [inner.add("multiply", [xi, ci]), ri])])
    axes = tuple(range(2)) if axis is None else (axis,) if isinstance(axis, int) else axis
    for keepdims in (False, True):
        body = inner.build([inner.add(red, [t], {"axis": axes, "keepdims": keepdims}), t])
        g = b.build(
            b.add_node("fused", [xs, cs, rs], {"body": body}, [v.type for v in body.outputs])
        )
        _check(g, (x, col, row), chunked=True)


def test_numpy_chunks_value_and_grad_of_a_chain():
    def loss(x, w):
        t = np.tanh(x * w)
        return np.sum(np.exp(-0.5 * x * x) * t + np.log1p(x * x) * np.sin(x) + t * t)

    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(11, 3)), rng.normal(size=3)
    src = _check(_graph(loss, x, w), (x, w), chunked=True)
    # scratch, not a new array per op and chunk: inside the chunk loops, no op allocates
    # (the scratch is allocated once per thread, before its loop over the chunks)
    lines = src.splitlines()
    inside = []
    for i, ln in enumerate(lines):
        if re.search(r"for t\d+_c in t\d+_cs:", ln):
            depth = len(ln) - len(ln.lstrip())
            for nxt in lines[i + 1 :]:
                if len(nxt) - len(nxt.lstrip()) <= depth:
                    break
                inside.append(nxt.strip())
    # (a reduction's partial result per chunk, `tN_rK[tN_c] = np.sum(...)`, is its one
    # value: small, and what joins the chunks in order)
    allocating = [ln for ln in inside if " = np." in ln and not re.match(r"t\d+_r\d+\[", ln)]
    assert inside and not allocating, src


def test_numpy_chunks_leave_small_loops_whole(monkeypatch):
    monkeypatch.setattr(numpy_chunks, "CHUNK_MIN", 1 << 17)
    x = np.linspace(-1.0, 1.0, 64)
    _check(_graph(lambda x: np.sum(np.tanh(x) * x), x), (x,), chunked=False)
