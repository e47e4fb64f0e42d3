"""Bad input fails early with an error that says what, where and what to do instead."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from compiler import TracerError, trace
from tests.helpers import check_trace

X = np.random.default_rng(3).normal(size=(6, 4))
Y = np.random.default_rng(4).normal(size=(6, 3))


def _here(f, offset: int = 1) -> str:
    """`file:line` of the line `offset` lines below `def f` (where the bad call is)."""
    return f"{__file__}:{f.__code__.co_firstlineno + offset}"


# -- unsupported NumPy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "f,name",
    [
        (lambda a: np.linalg.eig(a[:4]), "np.linalg.eig"),
        (lambda a: np.fft.fft(a), "np.fft.fft"),
        (lambda a: np.unwrap(a), "np.unwrap"),
        (lambda a: np.spacing(a), "np.spacing"),
        (lambda a: np.subtract.reduce(a), "np.subtract.reduce"),
        (lambda a: a << 2, "lshift"),
        (lambda a: np.pad(a, 1, mode="edge"), "np.pad(mode='edge')"),
        (lambda a: np.var(a, where=a > 0), "np.var"),
        (lambda a: np.exp(a, where=a > 0), "np.exp"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_trace_unsupported_numpy_raises_not_implemented_naming_it(f, name):
    with pytest.raises(NotImplementedError) as info:
        trace(f, X)
    msg = str(info.value)
    assert name in msg and "not supported by gradc" in msg
    assert __file__ in msg  # and where the user called it


def test_trace_unsupported_linalg_message_is_exact():
    with pytest.raises(NotImplementedError, match=r"^np\.linalg\.eig is not supported by gradc"):
        trace(lambda a: np.linalg.eig(a[:4]), X)


# -- Python control flow on traced values ---------------------------------------------------------


def _if_on_array(a):
    if a.sum() > 0:
        return a
    return -a


def _while_on_array(a):
    while a.max() > 1:
        a = a / 2
    return a


@pytest.mark.parametrize(
    "f,what",
    [
        (_if_on_array, "bool(x)"),
        (_while_on_array, "bool(x)"),
        (lambda a: bool(a[0, 0]), "bool(x)"),
        (lambda a: a[0, 0] > 0 and a[0, 1] > 0, "bool(x)"),
        (lambda a: [1, 2, 3][a[0, 0]], "Python index"),
        (lambda a: range(a.shape[0])[a.sum()], "Python index"),
    ],
)
def test_trace_concrete_value_needed_raises_tracer_error_suggesting_where(f, what):
    with pytest.raises(TracerError) as info:
        trace(f, X)
    msg = str(info.value)
    assert what in msg
    assert "traced" in msg and "np.where" in msg
    assert __file__ in msg


@pytest.mark.parametrize(
    "f,what",
    [
        (lambda a: float(a[0, 0]), "float(x)"),
        (lambda a: math.exp(a[0, 0]), "math.exp"),
        (lambda a: int(a[0, 0]), "int(x)"),
        (lambda a: a[0, 0].item(), "x.item()"),
        (lambda a: a.tolist(), "x.tolist()"),
    ],
)
def test_trace_python_number_needed_gets_its_own_message(f, what):
    with pytest.raises(TracerError) as info:
        trace(f, X)
    msg = str(info.value)
    assert what in msg and "traced array" in msg and "concrete Python number" in msg
    assert "np.where" not in msg  # not the control-flow advice
    assert __file__ in msg


def test_tracer_error_is_a_type_error():
    assert issubclass(TracerError, TypeError)


def _asarray_inside(a):
    return np.asarray(a) * 2


@pytest.mark.parametrize("conv", [np.asarray, np.array, np.ascontiguousarray])
def test_trace_asarray_on_traced_value_works(conv):
    g = check_trace(lambda a: conv(a) * 2, X)
    assert [n.op for n in g.nodes if n.op not in ("const", "full")] == ["multiply"]
    check_trace(_asarray_inside, X)


class _Scaler:
    """An object built outside the traced function: its methods run with the real NumPy."""

    def scale(self, a):
        return np.asarray(a) * 2


_SCALER = _Scaler()


def _calls_method(a):
    return _SCALER.scale(a)


def test_trace_asarray_in_code_gradc_does_not_trace_names_the_call():
    with pytest.raises(TracerError) as info:
        trace(_calls_method, X)
    msg = str(info.value)
    assert "np.asarray" in msg and "traced array f64[6,4]" in msg
    assert _here(_Scaler.scale) in msg


def test_trace_ufunc_out_into_plain_array_is_rejected():
    buf = np.zeros((6, 4))
    with pytest.raises(TracerError, match="out="):
        trace(lambda a: np.add(a, 1.0, out=buf), X)
    np.testing.assert_array_equal(buf, 0.0)


def test_trace_boolean_mask_indexing_suggests_where():
    with pytest.raises(TracerError, match=r"np\.where\(mask, x, 0\)"):
        trace(lambda a: a[a > 0], X)


# -- shape mismatches name the op, the shapes and the user's line ---------------------------------


def _bad_add(a, b):
    return a + b


def _bad_matmul(a, b):
    return a @ b


def _bad_dot(a, b):
    return np.dot(a, b)


def _bad_concat(a, b):
    return np.concatenate([a, b], axis=0)


def _bad_reshape(a, b):
    return a.reshape(5, 5)


def _bad_reshape_minus_one(a, b):
    return a.reshape(5, -1)


def _bad_broadcast_to(a, b):
    return np.broadcast_to(b, (6, 4))


def _bad_where(a, b):
    return np.where(a > 0, a, b)


def _bad_stack(a, b):
    return np.stack([a, b])


def _bad_iadd(a, b):
    a += b
    return a


def _bad_setitem(a, b):
    a[:2] = b[:3]
    return a


@pytest.mark.parametrize(
    "f,op,shapes",
    [
        (_bad_add, "add", ["f64[6,4]", "f64[6,3]"]),
        (_bad_matmul, "matmul", ["f64[6,4]", "f64[6,3]"]),
        (_bad_dot, "dot", ["f64[6,4]", "f64[6,3]"]),
        (_bad_concat, "concatenate", ["f64[6,4]", "f64[6,3]"]),
        (_bad_reshape, "reshape", ["f64[6,4]", "(5, 5)"]),
        (_bad_reshape_minus_one, "reshape", ["f64[6,4]", "(5, -1)"]),
        (_bad_broadcast_to, "broadcast_to", ["f64[6,3]", "(6, 4)"]),
        (_bad_where, "where", ["f64[6,4]", "f64[6,3]"]),
        (_bad_stack, "stack", ["f64[6,4]", "f64[6,3]"]),
        (_bad_iadd, "add", ["f64[6,4]", "f64[6,3]"]),
        (_bad_setitem, "broadcast_to", ["f64[3,3]"]),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_trace_shape_mismatch_names_op_shapes_and_user_line(f, op, shapes):
    with pytest.raises(ValueError) as info:
        trace(f, X, Y)
    msg = str(info.value)
    assert re.match(rf"{op}\b", msg), msg
    for s in shapes:
        assert s in msg, f"{s!r} not in {msg!r}"
    assert _here(f) in msg, msg


def test_trace_index_out_of_bounds_raises_index_error():
    with pytest.raises(IndexError, match="out of bounds"):
        trace(lambda a: a[7], X)
    with pytest.raises(IndexError, match="out of bounds"):
        trace(lambda a: a[[0, 9]], X)
    with pytest.raises(IndexError, match="too many indices"):
        trace(lambda a: a[0, 0, 0], X)


def test_trace_bad_axis_raises_axis_error():
    with pytest.raises(np.exceptions.AxisError, match="out of bounds"):
        trace(lambda a: a.sum(axis=2), X)


def test_trace_unsupported_argument_type_is_rejected():
    with pytest.raises(TypeError, match="complex128"):
        trace(lambda a: a * 2, X.astype(np.complex128))


def test_trace_non_array_output_is_rejected():
    with pytest.raises(TracerError, match="returned a str"):
        trace(lambda a: "nope", X)
