"""The native scalar call's IR (compiler/codegen/llscalar.py), op by op at the edges: where it
answers (every input and node output finite) it gives the Python scalar call's result bit for
bit and the interpreter's within a few ulp; everywhere else it hands the call to `miss`."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from compiler.codegen.llscalar import NAME, emit, lowerable
from compiler.codegen.pyscalar import _PYTHON, _SAME, compile_python_scalar
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType
from runtime import native_call
from tests.codegen.test_pyscalar import EDGES, PAIR_EDGES, ULPS, _arity
from tests.codegen.util import assert_ulp

F64, BOOL = np.dtype(np.float64), np.dtype(np.bool_)
BOOL_IN = {"where": 3, "logical_and": 3, "logical_or": 3, "logical_not": 2}
NOT_NATIVE = {"hypot"}  # Python's math.hypot is not libm's: the Python call keeps it


def _graph(name: str):
    """`name` on float inputs; bool inputs made by comparisons, a bool result made a float."""
    b = Builder()
    n = BOOL_IN.get(name) or (1 if name == "astype" else _arity(name))
    ins = [b.add_input(TensorType((), F64)) for _ in range(n)]
    if name == "where":
        args = [b.add("greater", [ins[0], ins[1]], {}), ins[1], ins[2]]
    elif name in BOOL_IN:  # x < y (and y < z)
        args = [b.add("less", [x, y], {}) for x, y in zip(ins, ins[1:])]
    else:
        args = ins
    attrs = {"dtype": BOOL} if name == "astype" else {}
    out = b.add(name, args, attrs)
    if out.dtype == BOOL:
        out = b.add("astype", [out], {"dtype": F64})
    return b.build([out])


def _inputs(g) -> list[tuple]:
    n = len(g.inputs)
    if n == 1:
        return [(x,) for x in EDGES]
    pool = PAIR_EDGES if n == 2 else [0.0, -0.0, 1.0, -2.5, 1e300, math.inf, math.nan]
    return list(itertools.product(pool, repeat=n))


MISS = object()


def _native(g):
    f = native_call.facts()
    assert f is not None, "this CPython's layout should have been recognised"

    def miss(obj, args, kwargs):
        return MISS

    params = [("float",)] * len(g.inputs)
    result = ("tuple", [("float", k) for k in range(len(g.outputs))])
    tracing = [0]
    text = emit(g, params, result, f, id(miss), id(tracing))
    return native_call.compile_ir(text, NAME, (miss, tracing))


@pytest.mark.parametrize("name", sorted((_SAME | set(_PYTHON)) - NOT_NATIVE))
def test_llscalar_op_matches_python_and_interpreter_at_the_edges(name):
    g = _graph(name)
    assert lowerable(g)
    native, python = _native(g), compile_python_scalar(g)
    hits = 0
    for args in _inputs(g):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values = run_graph(g, [np.asarray(a) for a in args])
            inner = run_graph(_graph_without_cast(g), [np.asarray(a) for a in args])
        got = native(None, args)
        try:
            want_python = python(*args)
        except (ArithmeticError, ValueError):
            want_python = MISS  # Python's math raised: the native call must miss too
        floats = [v for v in [*args, *inner] if np.asarray(v).dtype == F64]
        if want_python is MISS or not all(math.isfinite(float(v)) for v in floats):
            assert got is MISS, (name, args, got)
            continue
        assert got is not MISS, (name, args)
        hits += 1
        assert type(got) is tuple and all(type(x) is float for x in got)
        assert native_call.same(got, want_python), (name, args, got, want_python)
        for x, want in zip(got, values):
            assert_ulp(np.asarray(x), np.asarray(want, dtype=F64), ULPS)
    assert hits >= 2, name


def _graph_without_cast(g):
    """The op's own outputs (before the bool-to-float cast), for the finite check."""
    last = g.nodes[-1]
    if last.op == "astype" and len(g.nodes) > 1:
        b = Builder()
        ins = [b.add_input(v.type) for v in g.inputs]
        env = dict(zip(g.inputs, ins))
        for n in g.nodes[:-1]:
            env[n.out] = b.add(n.op, [env[v] for v in n.inputs], dict(n.attrs))
        return b.build([env[last.inputs[0]]])
    return g


def test_llscalar_refuses_ops_without_a_native_spelling():
    b = Builder()
    x, y = b.add_input(TensorType((), F64)), b.add_input(TensorType((), F64))
    assert not lowerable(b.build([b.add("hypot", [x, y], {})]))
    b = Builder()
    v = b.add_input(TensorType((3,), F64))
    assert not lowerable(b.build([b.add("exp", [v], {})]))
