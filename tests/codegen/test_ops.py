"""Every registry op through Numba codegen, alone and inside a fused node, vs the interpreter."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.interpret import run_graph
from compiler.ir import Builder, Graph, TensorType
from compiler.pipeline import lower_graph
from compiler.primitives import OPS, Kind
from tests.codegen.util import assert_same, cache_dir  # noqa: F401  (fixture)


def one_node(name: str, args, attrs) -> Graph:
    b = Builder()
    ins = [b.add_input(TensorType(np.shape(a), np.asarray(a).dtype)) for a in args]
    return b.build([b.add(name, ins, attrs)])


def wrapped(name: str, args, attrs) -> Graph:
    """`op` then a follow-up elementwise op, both inside one fused node."""
    inner = Builder()
    ins = [inner.add_input(TensorType(np.shape(a), np.asarray(a).dtype)) for a in args]
    y = inner.add(name, ins, attrs)
    z = inner.add("logical_not" if y.dtype == np.bool_ else "negative", [y])
    body = inner.build([y, z])
    b = Builder()
    outer = [b.add_input(v.type) for v in ins]
    outs = b.add_node("fused", outer, {"body": body}, [v.type for v in body.outputs])
    return b.build(outs)


def _check(g: Graph, args) -> None:
    # the samples are small, so by default their loops run as NumPy calls (the small-loop
    # fallback): run them once that way and once through the compiled kernels
    want = run_graph(g, list(args))
    for eager in (False, True):
        fn = lower_graph(g, stage="test", eager=eager)
        got = fn(*args)
        assert len(got) == len(want)
        for a, e in zip(got, want):
            assert_same(a, e)


# loop ops and fusion groups have no samples (a body graph): tests/loops/ compiles loops
# against the interpreter, and every fused test here compiles fusion groups
@pytest.mark.parametrize(
    "name", sorted(n for n, d in OPS.items() if d.kind not in (Kind.LOOP, Kind.FUSED))
)
def test_codegen_op_matches_interpreter(name):
    rng = np.random.default_rng(0)
    for s in OPS[name].samples(rng):
        _check(one_node(name, s.args, s.attrs), s.args)


@pytest.mark.parametrize(
    "name", sorted(n for n, d in OPS.items() if d.kind in (Kind.ELEMENTWISE, Kind.REDUCE))
)
def test_codegen_op_inside_fused_node_matches_interpreter(name):
    rng = np.random.default_rng(1)
    for s in OPS[name].samples(rng):
        g = one_node(name, s.args, s.attrs)
        if OPS[name].kind is Kind.REDUCE:
            # a reduction ends its group: fuse an elementwise producer in front instead
            inner = Builder()
            x = inner.add_input(g.inputs[0].type)
            y = inner.add(name, [inner.add("exp", [x])], s.attrs)
            body = inner.build([y])
            b = Builder()
            xs = b.add_input(x.type)
            g = b.build(b.add_node("fused", [xs], {"body": body}, [y.type]))
        else:
            g = wrapped(name, s.args, s.attrs)
        _check(g, s.args)


def test_codegen_scalar_inputs_may_be_python_floats_or_0d_arrays():
    b = Builder()
    x = b.add_input(TensorType((), np.float64))
    y = b.add_input(TensorType((), np.float64))
    g = b.build([b.add("multiply", [x, y])])
    fn = lower_graph(g)
    assert fn.driver_kind == "njit"
    assert fn(2.0, 3.0)[0] == 6.0
    assert fn(np.array(2.0), 3)[0] == 6.0
    out = fn(2.0, 3.0)[0]
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float64


def test_codegen_outputs_are_fresh_and_never_alias():
    b = Builder()
    x = b.add_input(TensorType((3, 4), np.float64))
    t = b.add("transpose", [x], {"axes": (1, 0)})
    r = b.add("reshape", [x], {"shape": (4, 3)})
    e = b.add("exp", [x])
    g = b.build([x, t, r, e, e, b.add("broadcast_to", [e], {"shape": (2, 3, 4)})])
    fn = lower_graph(g)
    xv = np.arange(12.0).reshape(3, 4)
    outs = fn(xv)
    for i, o in enumerate(outs):
        assert o.flags.c_contiguous and o.flags.writeable
        assert not np.shares_memory(o, xv)
        for p in outs[i + 1 :]:
            assert not np.shares_memory(o, p)
    again = fn(xv)
    assert not any(np.shares_memory(a, c) for a in outs for c in again)
    for a, e2 in zip(outs, run_graph(g, [xv])):
        assert_same(a, e2)


def test_codegen_take_rejects_out_of_range_indices():
    x = np.arange(5.0)
    g = one_node("take", (x, np.array([0, 7])), {"axis": 0})
    with pytest.raises(IndexError):
        lower_graph(g)(x, np.array([0, 7]))
