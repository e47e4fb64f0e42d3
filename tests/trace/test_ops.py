"""`interpret(trace(f, *a), *a)` equals NumPy's `f(*a)`: shape, dtype and values, for every
NumPy spelling the tracer supports."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import strategies as gst
from tests.helpers import check_jit, check_trace

R = np.random.default_rng(7)
X = R.normal(size=(3, 4))
Y = R.normal(size=(3, 4))
V = R.normal(size=(4,))
W = R.normal(size=(4, 5))
P = R.uniform(0.3, 2.0, size=(3, 4))  # positive: log, sqrt, fractional powers
A3 = R.normal(size=(2, 3, 4))
B3 = R.normal(size=(2, 4, 5))
M6 = R.normal(size=(6, 5))
I64 = np.arange(-3, 5)
S = R.normal(size=())

CASES = {
    # arithmetic, arrays and Python scalars on either side
    "add": (lambda a, b: a + b, X, Y),
    "add_row": (lambda a, b: a + b, X, V),
    "add_scalar_right": (lambda a: a + 2.0, X),
    "add_scalar_left": (lambda a: 2.0 + a, X),
    "sub": (lambda a, b: a - b, X, Y),
    "sub_scalar_left": (lambda a: 3 - a, X),
    "sub_scalar_right": (lambda a: a - 3, X),
    "mul": (lambda a, b: a * b, X, Y),
    "mul_scalar_left": (lambda a: 2 * a, X),
    "div": (lambda a, b: a / b, X, P),
    "div_scalar_left": (lambda a: 1.0 / a, P),
    "div_scalar_right": (lambda a: a / 2, X),
    "pow": (lambda a, b: a**b, P, X),
    "pow_two": (lambda a: a**2, X),
    "pow_three": (lambda a: a**3, X),
    "pow_half": (lambda a: a**0.5, P),
    "pow_negative": (lambda a: a**-1.5, P),
    "pow_scalar_base": (lambda a: 2.0**a, X),
    "neg": (lambda a: -a, X),
    "pos": (lambda a: +a, X),
    "pow_two_promotes_int": (lambda a: a**2.0, I64),
    "pow_two_float32_by_numpy_float64": (lambda a: a ** np.float64(2.0), X.astype(np.float32)),
    "pow_two_float32_by_0d_array": (lambda a: a ** np.array(2.0), X.astype(np.float32)),
    "int_add": (lambda a: a + 1, I64),
    "int_square": (lambda a: a**2, I64),
    "int_true_divide": (lambda a: a / 2, I64),
    "int_plus_float": (lambda a: a + 0.5, I64),
    "int_abs_sign": (lambda a: np.abs(a) * np.sign(a), I64),
    "zero_d": (lambda a: a * 2 + 1, S),
    "np_scalar": (lambda a: a * np.float64(3.0), X),
    # matrix products
    "matmul_1d_1d": (lambda a, b: a @ b, V, V),
    "matmul_1d_2d": (lambda a, b: a @ b, V, W),
    "matmul_2d_1d": (lambda a, b: a @ b, X, V),
    "matmul_2d_2d": (lambda a, b: a @ b, X, W),
    "matmul_3d_3d": (lambda a, b: a @ b, A3, B3),
    "matmul_3d_2d": (lambda a, b: a @ b, A3, W),
    "matmul_2d_3d": (lambda a, b: a @ b, X, B3),
    "matmul_1d_3d": (lambda a, b: a @ b, V, B3),
    "matmul_3d_1d": (lambda a, b: a @ b, A3, V),
    "matmul_batch_broadcast": (
        lambda a, b: a @ b,
        R.normal(size=(2, 1, 3, 4)),
        R.normal(size=(3, 4, 2)),
    ),
    "np_matmul": (lambda a, b: np.matmul(a, b), X, W),
    "np_dot_1d": (lambda a, b: np.dot(a, b), V, V),
    "np_dot_2d_1d": (lambda a, b: np.dot(a, b), X, V),
    "np_dot_2d_2d": (lambda a, b: np.dot(a, b), X, W),
    "np_dot_scalar": (lambda a: np.dot(a, 2.0), X),
    "method_dot": (lambda a, b: a.dot(b), X, W),
    # unary math
    "exp": (np.exp, X),
    "log": (np.log, P),
    "log1p": (np.log1p, P),
    "expm1": (np.expm1, X),
    "tanh": (np.tanh, X),
    "sin": (np.sin, X),
    "cos": (np.cos, X),
    "sqrt": (np.sqrt, P),
    "square": (np.square, X),
    "abs": (np.abs, X),
    "builtin_abs": (lambda a: abs(a), X),
    "sign": (np.sign, X),
    "reciprocal": (np.reciprocal, P),
    "exp_of_int": (np.exp, I64),
    # binary selection
    "maximum": (np.maximum, X, Y),
    "maximum_scalar": (lambda a: np.maximum(a, 0.0), X),
    "minimum": (np.minimum, X, V),
    "where": (lambda a, b: np.where(a > b, a, b), X, Y),
    "where_scalar_branch": (lambda a: np.where(a > 0, a, 0.0), X),
    "where_int_condition": (lambda a: np.where(np.arange(4), a, 1.0), X),
    "clip": (lambda a: np.clip(a, -0.5, 0.5), X),
    "clip_method": (lambda a: a.clip(-0.5, 0.5), X),
    "clip_array_bounds": (lambda a, b: np.clip(a, b - 1.0, b + 0.1), X, V),
    "logaddexp": (np.logaddexp, X, V),
    # reductions (hypothesis covers axes and keepdims below)
    "sum": (np.sum, X),
    "sum_axis_tuple_keepdims": (lambda a: a.sum(axis=(0, 2), keepdims=True), A3),
    "mean_negative_axis": (lambda a: a.mean(axis=-1), X),
    "max_axis": (lambda a: np.max(a, axis=0), X),
    "amax": (np.amax, X),
    "min_keepdims": (lambda a: a.min(axis=1, keepdims=True), X),
    "sum_int": (lambda a: a.sum(), I64.astype(np.int32)),
    "mean_int": (lambda a: a.mean(), I64),
    "sum_of_mask": (lambda a: (a > 0).sum(), X),
    # shape ops
    "reshape_flat": (lambda a: a.reshape(-1), X),
    "reshape_tuple": (lambda a: np.reshape(a, (4, -1)), X),
    "reshape_args": (lambda a: a.reshape(2, 6), X),
    "reshape_from_shape": (lambda a: a.reshape(a.shape[1], a.shape[0]), X),
    "ravel": (lambda a: a.ravel(), X),
    "flatten": (lambda a: a.flatten(), X),
    "T": (lambda a: a.T, X),
    "T_3d": (lambda a: a.T, A3),
    "mT": (lambda a: a.mT, A3),
    "transpose_axes": (lambda a: np.transpose(a, (1, 0, 2)), A3),
    "transpose_method": (lambda a: a.transpose(2, 0, 1), A3),
    "swapaxes": (lambda a: a.swapaxes(0, 2), A3),
    "np_swapaxes": (lambda a: np.swapaxes(a, -1, 0), A3),
    "expand_dims": (lambda a: np.expand_dims(a, (0, -1)), X),
    "squeeze": (np.squeeze, R.normal(size=(1, 3, 1))),
    "squeeze_axis": (lambda a: a.squeeze(axis=0), R.normal(size=(1, 3, 1))),
    "broadcast_to": (lambda a: np.broadcast_to(a, (2, 3, 4)), V),
    "concatenate": (lambda a, b: np.concatenate([a, b], axis=0), X, Y),
    "concatenate_axis1": (lambda a, b: np.concatenate([a, b[:, :2]], axis=1), X, Y),
    "concatenate_none": (lambda a, b: np.concatenate([a, b], axis=None), X, V),
    "concatenate_with_constant": (lambda a: np.concatenate([a, np.ones((1, 4))]), X),
    "stack": (lambda a, b: np.stack([a, b], axis=1), X, Y),
    "stack_negative_axis": (lambda a, b: np.stack([a, b], axis=-1), X, Y),
    "vstack": (lambda a, b: np.vstack([a, b]), V, V),
    "hstack": (lambda a, b: np.hstack([a, b]), V, V),
    # indexing
    "slice_2d_step": (lambda a: a[1:5, ::2], M6),
    "newaxis": (lambda a: a[:, None], X),
    "newaxis_and_int": (lambda a: a[None, :, None, 1], X),
    "negative_step": (lambda a: a[::-1, 3:0:-2], X),
    "negative_step_1d": (lambda a: a[5:1:-2], I64),
    "ellipsis": (lambda a: a[..., 0], A3),
    "negative_int": (lambda a: a[-1], X),
    "empty_slice": (lambda a: a[2:2], X),
    "gather_repeated": (lambda a: a[[0, 2, 2, -1]], X),
    "gather_axis1": (lambda a: a[:, [3, 0, 0]], X),
    "gather_2d_index": (lambda a: a[np.array([[0, 1], [2, 2]])], X),
    "gather_int_then_array": (lambda a: a[1, [3, 0]], X),
    "gather_two_arrays": (lambda a: a[[1, 2], [3, 0]], X),
    "np_take_axis": (lambda a: np.take(a, [1, 1, 0], axis=1), X),
    "np_take_flat": (lambda a: np.take(a, [1, 5, 11]), X),
    "iterate_rows": (lambda a: sum(r for r in a), X),
    # masks, casts, *_like
    "comparisons": (lambda a, b: (a < b, a <= b, a > b, a >= b, a == b, a != b), X, Y),
    "mask_times_array": (lambda a: (a > 0) * a, X),
    "mask_logic": (lambda a, b: ((a > 0) & (b > 0)) | ~(a > b), X, Y),
    "mask_astype": (lambda a: (a > 0).astype(float), X),
    "astype_f32": (lambda a: a.astype(np.float32), X),
    "astype_int": (lambda a: a.astype(np.int64), X),
    "int_astype_float": (lambda a: a.astype(np.float64) * 0.5, I64),
    "zeros_like": (lambda a: np.zeros_like(a) + a, X),
    "ones_like": (np.ones_like, X),
    "full_like": (lambda a: np.full_like(a, 3.5), X),
    "full_like_int_fill": (lambda a: np.full_like(a, 3), X),
    "empty_like_overwritten": (lambda a: np.empty_like(a) * 0 + a, X),
    "shape_queries": (lambda a: a * (np.shape(a)[0] + np.ndim(a) + np.size(a) + len(a)), X),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_trace_op_matches_numpy(name):
    f, *args = CASES[name]
    check_trace(f, *args)


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_op_matches_numpy(name, backend):
    f, *args = CASES[name]
    check_jit(backend, f, *args)


# -- float32 next to Python scalars (NEP 50: the scalar is weak) ----------------------------------

X32 = X.astype(np.float32)

F32_CASES = {
    "mul_add": lambda a: a * 2.0 + 1,
    "scalar_left": lambda a: 3.0 - a,
    "div": lambda a: a / 3,
    "rpow": lambda a: 2.0**a,
    "pow": lambda a: a**3.0,
    "exp_half": lambda a: np.exp(a) * 0.5,
    "mean": lambda a: a.mean(axis=0),
    "where_scalar": lambda a: np.where(a > 0, a, 0.0),
    "maximum_scalar": lambda a: np.maximum(a, 0.5),
    "clip": lambda a: np.clip(a, -1, 1),
    "full_like": lambda a: np.full_like(a, 2.5) * a,
    "zeros_write": lambda a: a + np.zeros_like(a),
}


@pytest.mark.parametrize("name", sorted(F32_CASES))
def test_trace_float32_stays_float32_next_to_python_scalars(name):
    graph = check_trace(F32_CASES[name], X32)
    assert all(v.dtype == np.float32 for v in graph.outputs)


@pytest.mark.parametrize("name", sorted(F32_CASES))
def test_jit_float32_stays_float32_next_to_python_scalars(name, backend):
    check_jit(backend, F32_CASES[name], X32)  # the dtypes are NumPy's, leaf by leaf


def test_trace_float32_with_float64_array_promotes_like_numpy():
    check_trace(lambda a, b: a + b, X32, X)
    check_trace(lambda a: a + np.float64(1.0), X32)  # a NumPy scalar is not weak


# -- hypothesis: broadcasting, axes, keepdims, slicing --------------------------------------------

BINARY = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": lambda a, b: a / (np.abs(b) + 0.5),
    "power": lambda a, b: (np.abs(a) + 0.5) ** b,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "logaddexp": np.logaddexp,
    "greater": np.greater,
    "where": lambda a, b: np.where(a > b, a, b),
}


@gst.INTERP
@given(
    name=st.sampled_from(sorted(BINARY)),
    shapes=gst.mutually_broadcastable_shapes(2),
    dtype=st.sampled_from([np.float64, np.float32]),
    data=st.data(),
)
def test_trace_binary_broadcasting_matches_numpy(name, shapes, dtype, data):
    a = data.draw(gst.arrays(shapes[0], dtype), label="a")
    b = data.draw(gst.arrays(shapes[1], dtype), label="b")
    check_trace(BINARY[name], a, b, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_jit_binary_broadcasting_matches_numpy(backend):
    @gst.given_on(
        backend,
        name=st.sampled_from(sorted(BINARY)),
        shapes=gst.mutually_broadcastable_shapes(2),
        dtype=st.sampled_from([np.float64, np.float32]),
        data=st.data(),
    )
    def check(name, shapes, dtype, data):
        a = data.draw(gst.arrays(shapes[0], dtype), label="a")
        b = data.draw(gst.arrays(shapes[1], dtype), label="b")
        check_jit(backend, BINARY[name], a, b, rtol=1e-5 if dtype == np.float32 else 1e-12)

    check()


@gst.INTERP
@given(
    shapes=gst.mutually_broadcastable_shapes(3, max_dims=3),
    data=st.data(),
)
def test_trace_where_three_way_broadcasting_matches_numpy(shapes, data):
    c, a, b = (data.draw(gst.arrays(s)) for s in shapes)
    check_trace(lambda c, a, b: np.where(c > 0, a, b), c, a, b)


@gst.INTERP
@given(
    case=gst.shape_and_axes(),
    red=st.sampled_from(["sum", "mean", "max", "min"]),
    method=st.booleans(),
    data=st.data(),
)
def test_trace_reduction_axes_keepdims_match_numpy(case, red, method, data):
    shape, axis, keepdims = case
    x = data.draw(gst.arrays(shape))
    if method:
        f = lambda a: getattr(a, red)(axis=axis, keepdims=keepdims)  # noqa: E731
    else:
        f = lambda a: getattr(np, red)(a, axis=axis, keepdims=keepdims)  # noqa: E731
    check_trace(f, x)


def test_jit_reduction_axes_keepdims_match_numpy(backend):
    @gst.given_on(
        backend,
        case=gst.shape_and_axes(),
        red=st.sampled_from(["sum", "mean", "max", "min"]),
        dtype=st.sampled_from([np.float64, np.float32]),
        data=st.data(),
    )
    def check(case, red, dtype, data):
        shape, axis, keepdims = case
        x = data.draw(gst.arrays(shape, dtype))
        f = lambda a: getattr(a, red)(axis=axis, keepdims=keepdims)  # noqa: E731
        check_jit(backend, f, x, rtol=1e-5 if dtype == np.float32 else 1e-12)

    check()


@gst.INTERP
@given(shape=gst.shapes(1, 4), data=st.data())
def test_trace_transpose_expand_squeeze_match_numpy(shape, data):
    x = data.draw(gst.arrays(shape))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    ax = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check_trace(lambda a: np.transpose(a, perm), x)
    check_trace(lambda a: np.expand_dims(a, ax), x)
    check_trace(lambda a: np.squeeze(np.expand_dims(a, ax), axis=ax), x)


@gst.INTERP
@given(shape=gst.shapes(1, 3, min_side=0, max_side=6), data=st.data())
def test_trace_basic_slicing_matches_numpy(shape, data):
    x = data.draw(gst.arrays(shape))
    key = tuple(data.draw(st.slices(d)) for d in shape)
    check_trace(lambda a: a[key], x)
    check_trace(lambda a: a[key][None] * 2.0, x)


@gst.INTERP
@given(
    shape=gst.shapes(1, 3, max_side=5),
    data=st.data(),
)
def test_trace_integer_array_gather_matches_numpy(shape, data):
    x = data.draw(gst.arrays(shape))
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6)))
    key = (slice(None),) * axis + (idx,)
    check_trace(lambda a: a[key], x)


@gst.INTERP
@given(
    k=st.integers(1, 4),
    m=st.integers(1, 4),
    n=st.integers(1, 4),
    batch=gst.mutually_broadcastable_shapes(2, max_dims=2, max_side=3),
    data=st.data(),
)
def test_trace_batched_matmul_matches_numpy(k, m, n, batch, data):
    a = data.draw(gst.arrays(batch[0] + (m, k)))
    b = data.draw(gst.arrays(batch[1] + (k, n)))
    check_trace(lambda a, b: a @ b, a, b, rtol=1e-10)


@gst.INTERP
@given(
    shape=gst.shapes(1, 3),
    parts=st.integers(1, 3),
    data=st.data(),
)
def test_trace_concatenate_and_stack_match_numpy(shape, parts, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    xs = []
    for _ in range(parts):
        s = list(shape)
        s[axis] = data.draw(st.integers(1, 3))
        xs.append(data.draw(gst.arrays(tuple(s))))
    check_trace(lambda *a: np.concatenate(a, axis=axis), *xs)
    same = [data.draw(gst.arrays(shape)) for _ in range(parts)]
    check_trace(lambda *a: np.stack(a, axis=axis), *same)
