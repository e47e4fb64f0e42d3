"""The op records say how each op lowers; the tables other layers used to keep are read from
them. Checked against independent references: the ufuncs themselves, swapped operands,
codegen's renderers and the interpreter."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from compiler.codegen.lowering import LOWER
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType, verify
from compiler.passes.cse import COMMUTATIVE
from compiler.passes.fuse import fuse
from compiler.plan.liveness import VIEW_OPS
from compiler.primitives import OPS, REDUCE_OPS, Kind, Lowering, ScalarExpr
from compiler.trace.numpy_api import UFUNCS


def _samples(name: str):
    return OPS[name].samples(np.random.default_rng(zlib.crc32(name.encode())))


def test_every_op_names_a_lowering_codegen_can_render():
    # VIEW and CUSTOM ops each have a renderer in codegen (fused is rendered by the driver's
    # loop path, rowfused by codegen/rowloop.py); SCALAR ops a scalar expression; REDUCE ops
    # are the loop accumulators
    rendered = {n for n, d in OPS.items() if d.lowering in (Lowering.VIEW, Lowering.CUSTOM)}
    assert rendered - {"fused", "rowfused"} == set(LOWER)
    for name, d in OPS.items():
        assert isinstance(d.lowering, Lowering), name
        assert (d.lowering is Lowering.SCALAR) == isinstance(d.codegen, ScalarExpr), name
    assert REDUCE_OPS == {n for n, d in OPS.items() if d.kind is Kind.REDUCE}
    assert VIEW_OPS | {"reshape"} == {n for n, d in OPS.items() if d.lowering is Lowering.VIEW}


@pytest.mark.parametrize("name", sorted({n for n in UFUNCS.values()}))
def test_traced_ufunc_computes_what_the_record_does(name):
    # the ufunc the tracer maps onto the op, run by NumPy/SciPy, against the op's reference
    (ufunc,) = [u for u, n in UFUNCS.items() if n == name]
    assert OPS[name].ufunc is ufunc
    for s in _samples(name):
        with np.errstate(all="ignore"):
            want = np.asarray(ufunc(*s.args))
            got = np.asarray(OPS[name].impl(*s.args, **s.attrs))
        np.testing.assert_allclose(got, want.astype(got.dtype), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", sorted(COMMUTATIVE))
def test_commutative_ops_give_the_same_bits_with_operands_swapped(name):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 5))
    y = rng.standard_normal((4, 5))
    x[0, :2], y[1, :2] = np.nan, np.nan  # NaN from either side
    # (not signed zeros: NumPy's maximum(0.0, -0.0) is -0.0 and maximum(-0.0, 0.0) is 0.0;
    # see the note at cse.COMMUTATIVE)
    if OPS[name].shape_rule([TensorType((4, 5), np.float64)] * 2).dtype == np.bool_:
        x, y = x > 0, y > 0
    with np.errstate(all="ignore"):
        a = np.asarray(OPS[name].impl(x, y))
        b = np.asarray(OPS[name].impl(y, x))
    assert a.tobytes() == b.tobytes()


def test_fused_record_types_and_runs_its_body():
    b = Builder()
    x = b.add_input(TensorType((3, 4), np.float64))
    y = b.add_input(TensorType((4,), np.float64))
    t = b.add("tanh", [b.add("multiply", [x, y])])
    s = b.add("sum", [b.add("exp", [t])], {"axis": (1,), "keepdims": False})
    g = fuse(b.build([t, s]))
    (node,) = [n for n in g.nodes if n.op == "fused"]
    verify(g)
    body = node.attrs["body"]
    d = OPS["fused"]
    assert d.out_types([v.type for v in node.inputs], body=body) == [v.type for v in node.outputs]
    args = [np.random.default_rng(i).standard_normal(v.shape) for i, v in enumerate(node.inputs)]
    for got, want in zip(d.impl(*args, body=body), run_graph(body, args)):
        np.testing.assert_array_equal(got, want)
