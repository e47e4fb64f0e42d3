"""Constant folding: constant-only subgraphs become one constant (within a size cap)."""

from __future__ import annotations

import numpy as np

from compiler import trace
from compiler.ir import Builder, Const, TensorType, verify
from compiler.passes.dce import dce
from compiler.passes.fold import MAX_FOLD_ELEMENTS, fold
from tests.passes.cases import assert_same_outputs

F64 = np.dtype("float64")


def _ops(g):
    return [n.op for n in g.nodes]


def test_fold_scalar_arithmetic_to_const():
    g = trace(lambda x: x * (np.ones_like(x)[0] * 3.0 + 1.0), np.ones(3))
    out = dce(verify(fold(g)))
    assert _ops(out) == ["const", "multiply"]
    assert out.nodes[0].attrs["value"] == Const(np.float64(4.0))


def test_fold_const_arrays_with_reference_impl():
    def f(x):
        c = np.arange(3.0) + np.zeros_like(x)  # traced: const + full
        return x + np.exp(c * 0.5) + (c.reshape(1, 3) @ np.ones((3, 3))).reshape(3) * x

    g = trace(f, np.ones(3))
    out = dce(verify(fold(g)))
    assert _ops(out) == ["const", "add", "full", "multiply", "add"]
    assert_same_outputs(g, out, [np.random.default_rng(0).normal(size=3)])


def test_fold_uniform_result_becomes_full_at_any_size():
    b = Builder()
    x = b.add_input(TensorType((1000, 1000), F64))
    one = b.add("full", [], {"shape": (1000, 1000), "dtype": F64, "fill": 1.0})
    two = b.add("add", [one, one])
    g = b.build([b.add("multiply", [x, two])])
    out = dce(verify(fold(g)))
    assert _ops(out) == ["full", "multiply"]
    assert out.nodes[0].attrs["fill"] == 2.0


def test_fold_caps_materialised_constants():
    n = MAX_FOLD_ELEMENTS + 1
    b = Builder()
    c = b.const(np.arange(float(n)))
    g = b.build([b.add("exp", [c])])
    assert fold(g) is g  # non-uniform and over the cap: left to run time
    b = Builder()
    c = b.const(np.arange(float(MAX_FOLD_ELEMENTS)))
    g = b.build([b.add("negative", [c])])
    assert _ops(dce(fold(g))) == ["const"]


def test_fold_comparisons_and_casts_keep_dtypes():
    g = trace(lambda x: np.where(np.arange(3.0) > 1.0, x, 0.0).astype(np.float32), np.ones(3))
    out = dce(verify(fold(g)))
    assert "greater" not in _ops(out)
    assert out.outputs[0].dtype == np.float32


def test_fold_leaves_input_dependent_graphs_alone():
    g = trace(lambda x: np.tanh(x) * 2.0, np.ones(3))
    assert fold(g) is g
