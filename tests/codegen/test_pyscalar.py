"""The Python-float form of all-scalar graphs (compiler/codegen/pyscalar.py) against the
interpreter, op by op, at the edges: zeros of both signs, denormals, the overflow thresholds,
the domain boundaries, infinities and NaN. Where Python raises, the scalar call path falls back
to an exact tier, so only the results it does return are compared."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from compiler.codegen.pyscalar import _PYTHON, _SAME, compile_python_scalar, python_scalar
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType
from tests.codegen.util import assert_ulp

F64, BOOL = np.dtype(np.float64), np.dtype(np.bool_)
EDGES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    -2.5,
    3.0,
    1e-20,
    5e-324,  # the smallest denormal
    -1e-310,
    0.9999999999999999,
    1.0000000000000002,
    709.78,  # exp overflows just above
    710.0,
    -745.2,
    -750.0,
    1e300,
    -1e300,
    math.inf,
    -math.inf,
    math.nan,
]
PAIR_EDGES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -3.0,
    2.5,
    1e-310,
    1e300,
    -1e300,
    math.inf,
    -math.inf,
    math.nan,
]
# libm against NumPy's own loops (and, for erf/erfc/ndtr, SciPy's): a few ulp
ULPS = 4


def _graph(name: str, dtypes: list[np.dtype], attrs: dict):
    b = Builder()
    ins = [b.add_input(TensorType((), dt)) for dt in dtypes]
    return b.build([b.add(name, ins, attrs)])


def _cases(name: str):
    """(input dtypes, attrs, list of input tuples) for the op."""
    if name in ("logical_and", "logical_or"):
        bools = [(x, y) for x in (False, True) for y in (False, True)]
        yield [BOOL, BOOL], {}, bools
        return
    if name == "logical_not":
        yield [BOOL], {}, [(False,), (True,)]
        return
    if name == "where":
        yield [BOOL, F64, F64], {}, [(c, x, y) for c in (False, True) for x, y in [(1.0, -0.0)]]
        return
    if name == "astype":
        yield [F64], {"dtype": BOOL}, [(x,) for x in EDGES]
        yield [BOOL], {"dtype": F64}, [(False,), (True,)]
        return
    yield (
        ([F64], {}, [(x,) for x in EDGES])
        if _arity(name) == 1
        else (
            [F64, F64],
            {},
            list(itertools.product(PAIR_EDGES, PAIR_EDGES)),
        )
    )


def _arity(name: str) -> int:
    from compiler.primitives import OPS

    sample = OPS[name].samples(np.random.default_rng(0))[0]
    return len(sample.args)


@pytest.mark.parametrize("name", sorted(_SAME | set(_PYTHON)))
def test_pyscalar_op_matches_interpreter_at_the_edges(name):
    checked = 0
    for dtypes, attrs, inputs in _cases(name):
        g = _graph(name, dtypes, attrs)
        fn = compile_python_scalar(g)
        assert fn is not None, f"{name} has a Python spelling but refused its graph"
        for args in inputs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                (want,) = run_graph(g, [np.asarray(a, dtype=dt) for a, dt in zip(args, dtypes)])
            try:
                (got,) = fn(*args)
            except (ArithmeticError, ValueError):
                continue  # the call path runs the exact tier instead
            want = np.asarray(want)
            assert type(got) is (bool if want.dtype == BOOL else float), (name, args, got)
            got = np.asarray(got, dtype=want.dtype)
            assert_ulp(got, want, ULPS)
            if want.dtype == F64 and want == 0 and name not in ("maximum", "minimum"):
                # signed zeros: exact ops and libm agree; (maximum, minimum ties follow the
                # compiled tier's template, which picks the second operand)
                assert np.signbit(got) == np.signbit(want), (name, args, got, want)
            checked += 1
    assert checked >= 2, f"{name}: every edge case raised"


def test_pyscalar_python_raises_where_numpy_gives_inf_or_nan():
    # the cases the scalar call path must hand to an exact tier: each raises in Python
    b = Builder()
    x, y = b.add_input(TensorType((), F64)), b.add_input(TensorType((), F64))
    outs = [b.add("divide", [x, y]), b.add("exp", [x]), b.add("log", [y]), b.add("power", [y, x])]
    fn = compile_python_scalar(b.build(outs))
    for args in [(1.0, 0.0), (1000.0, 1.0), (1.0, -1.0), (0.5, -8.0), (-1.0, 0.0)]:
        with pytest.raises((ArithmeticError, ValueError)):
            fn(*args)
    assert fn(1.0, 2.0) == (0.5, math.exp(1.0), math.log(2.0), 2.0)


def test_pyscalar_refuses_what_it_cannot_spell():
    b = Builder()
    x = b.add_input(TensorType((), np.float32))  # float32 arithmetic is not Python's
    assert python_scalar(b.build([b.add("exp", [x])])) is None
    b = Builder()
    x = b.add_input(TensorType((3,), F64))  # not a scalar
    assert python_scalar(b.build([b.add("exp", [x])])) is None
    b = Builder()
    x = b.add_input(TensorType((), F64))
    y = b.add_input(TensorType((), F64))
    assert python_scalar(b.build([b.add("logaddexp", [x, y])])) is None  # no spelling


def test_pyscalar_constants_and_fused_bodies():
    inner = Builder()
    x = inner.add_input(TensorType((), F64))
    body = inner.build([inner.add("multiply", [x, x])])
    b = Builder()
    xs = b.add_input(TensorType((), F64))
    (sq,) = b.add_node("fused", [xs], {"body": body}, [TensorType((), F64)])
    inf = b.add("full", [], {"shape": (), "fill": math.inf, "dtype": F64})
    neg = b.add("full", [], {"shape": (), "fill": -0.0, "dtype": F64})
    g = b.build([sq, b.add("minimum", [sq, inf]), b.add("multiply", [sq, neg])])
    fn = compile_python_scalar(g)
    got = fn(3.0)
    want = run_graph(g, [np.float64(3.0)])
    assert got[:2] == (9.0, 9.0) and [float(w) for w in want[:2]] == [9.0, 9.0]
    assert got[2] == 0.0 and math.copysign(1.0, got[2]) == -1.0 and np.signbit(want[2])


def test_pyscalar_constant_exponents_follow_numpy():
    for exponent in (0.5, 3.0, -1.0, 2.0):
        b = Builder()
        x = b.add_input(TensorType((), F64))
        e = b.add("full", [], {"shape": (), "fill": exponent, "dtype": F64})
        g = b.build([b.add("power", [x, e])])
        fn = compile_python_scalar(g)
        assert "==" not in fn.source  # the exponent is known: no test at run time
        for v in (-0.0, 0.0, 2.0, 7.5, -3.0, math.inf):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                (want,) = run_graph(g, [np.float64(v)])
            try:
                (got,) = fn(v)
            except (ArithmeticError, ValueError):
                continue
            assert_ulp(np.asarray(got), np.asarray(want))
            assert np.signbit(got) == np.signbit(want)
