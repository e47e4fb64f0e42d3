"""The scalar call path (runtime/scalar_call.py): transformations of Python floats answer from
one generated `__call__` doing float arithmetic, with the general path's results and types,
NumPy's inf/nan where Python raises, and gradc's errors for anything else.

The references are independent: hand-written derivatives, central finite differences, and the
same transformation with `backend="interpret"` (which never takes this path)."""

from __future__ import annotations

import math
import pickle
import threading
import warnings

import numpy as np
import pytest

from compiler import grad, jit, value_and_grad
from compiler.api import _Transform
from compiler.trace.creation import TRACES_ACTIVE


def seed(params):
    w, x, b, y = params
    return (w * x + b - y) ** 2


def seed_reference(params):
    """L = r**2, r = w*x + b - y: dL/d(w, x, b, y) = 2r * (x, w, 1, -1)."""
    w, x, b, y = params
    r = w * x + b - y
    return r * r, (2 * r * x, 2 * r * w, 2 * r, -2 * r)


def smooth(x, y):
    return np.exp(x) / y + np.log(y) * np.tanh(x) - np.sqrt(y) ** 3


class Counting:
    """Wraps a transformation's dispatcher: counts the calls that took the general path."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, args, kwargs):
        self.calls += 1
        return self.inner(args, kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _counted(f):
    f._dispatch = Counting(f._dispatch)
    return f._dispatch


def _same(got, want):
    """Equal values (NaN equal to NaN, zeros' signs too) and exactly the same types."""
    assert type(got) is type(want), (got, want)
    if isinstance(got, (tuple, list)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            _same(a, b)
    elif isinstance(got, dict):
        assert list(got) == list(want)
        for k in got:
            _same(got[k], want[k])
    else:
        a, b = float(got), float(want)
        if math.isnan(b):
            assert math.isnan(a)
        else:
            assert a == pytest.approx(b, rel=4e-16, abs=0) and math.copysign(1, a) == math.copysign(
                1, b
            ), (got, want)


def test_scalar_call_seed_is_taken_and_matches_the_reference():
    f = value_and_grad(seed)
    p = (2.0, 3.0, 1.0, 4.0)
    first = f(p)  # the first call compiles on the general path
    assert f._scalar is not None and isinstance(f, _Transform)
    counter = _counted(f)
    for p in [(2.0, 3.0, 1.0, 4.0), (0.5, -1.25, 3.0, 7.5), (-0.0, 0.0, -0.0, 0.0)]:
        value, grads = f(p)
        ref_value, ref_grads = seed_reference(p)
        assert type(value) is np.float64 and value == ref_value
        assert type(grads) is tuple and all(type(g) is float for g in grads)
        assert grads == pytest.approx(ref_grads, rel=1e-15)
    assert counter.calls == 0
    _same(first, f((2.0, 3.0, 1.0, 4.0)))


CASES = [
    (lambda b: value_and_grad(smooth, argnums=(0, 1), backend=b), (0.3, 2.0)),
    (lambda b: grad(smooth, backend=b), (0.3, 2.0)),
    (
        lambda b: grad(lambda d, n: d["w"] ** n + d["b"] * d["w"], backend=b),
        ({"w": 1.5, "b": -2.0}, 3),
    ),
    (lambda b: grad(lambda ps: ps[0] * ps[1] - ps[1], backend=b), ([1.5, 2.5],)),
    (
        lambda b: value_and_grad(
            lambda x: (x * x, {"a": x + 1.0, "pos": x > 0}), has_aux=True, backend=b
        ),
        (3.0,),
    ),
    (lambda b: grad(lambda x: (x * x, (x - 1.0,)), has_aux=True, backend=b), (3.0,)),
    (lambda b: jit(lambda x, y: (x * y, {"lt": x < y, "q": x / y}), backend=b), (2.0, 3.0)),
    (
        lambda b: value_and_grad(lambda x, s, flag: x * len(s) if flag else x, backend=b),
        (2.0, "ab", True),
    ),
    (lambda b: value_and_grad(lambda x, nothing: 5.0 * x, backend=b), (2.0, None)),
    (lambda b: value_and_grad(lambda x: (x * x, 3.0), has_aux=True, backend=b), (2.0,)),
    (lambda b: jit(lambda x: (2.0, x), backend=b), (2.0,)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_scalar_call_results_and_types_equal_the_general_path(case):
    make, args = CASES[case]
    f = make(None)
    general = f(*args)  # the first call: the general path
    assert f._scalar is not None
    counter = _counted(f)
    fast = f(*args)
    assert counter.calls == 0
    _same(fast, general)
    _same(fast, make("interpret")(*args))  # the oracle


def test_scalar_call_gradients_match_finite_differences():
    f = grad(smooth, argnums=(0, 1))
    f(0.1, 1.0)
    counter = _counted(f)
    eps = 1e-6
    for x, y in [(0.3, 2.0), (-1.2, 0.7), (2.5, 5.0)]:
        gx, gy = f(x, y)
        fd_x = (smooth(x + eps, y) - smooth(x - eps, y)) / (2 * eps)
        fd_y = (smooth(x, y + eps) - smooth(x, y - eps)) / (2 * eps)
        assert gx == pytest.approx(fd_x, rel=1e-7) and gy == pytest.approx(fd_y, rel=1e-7)
    assert counter.calls == 0


@pytest.mark.parametrize(
    "args",
    [
        (1000.0, 2.0),  # exp overflows: OverflowError in Python, inf in NumPy
        (1.0, 0.0),  # division by zero and log(0)
        (1.0, -1.0),  # log and sqrt of a negative: nan
        (math.nan, 2.0),
        (math.inf, 2.0),
        (-math.inf, 2.0),
        (-0.0, 2.0),
        (5e-324, 1e-310),  # denormals
        (709.0, 1e300),
    ],
)
def test_scalar_call_inf_and_nan_are_numpys(args):
    f = value_and_grad(smooth, argnums=(0, 1))
    ref = value_and_grad(smooth, argnums=(0, 1), backend="interpret")
    f(0.5, 1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got, want = f(*args), ref(*args)
    value, grads = got
    assert type(value) is np.float64 and all(type(g) is float for g in grads)
    assert np.asarray(value) == pytest.approx(want[0], rel=1e-13, nan_ok=True)
    for g, w in zip(grads, want[1]):
        assert g == pytest.approx(w, rel=1e-13, nan_ok=True)
        if w == 0:
            assert math.copysign(1, g) == math.copysign(1, w)


def test_scalar_call_falls_back_where_python_raises():
    f = value_and_grad(lambda x: np.exp(x) + np.log(x))
    f(1.0)
    counter = _counted(f)
    f(2.0)
    assert counter.calls == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, g = f(-1.0)  # math.log(-1.0) raises; NumPy gives nan (the gradient is finite)
        assert math.isnan(value) and counter.calls == 1
        assert g == pytest.approx(math.exp(-1.0) - 1.0, rel=1e-15)
        value, g = f(800.0)  # math.exp(800.0) overflows; NumPy gives inf
        assert value == math.inf and g == math.inf and counter.calls == 2


def test_scalar_call_bad_input_gets_the_general_paths_errors():
    f = value_and_grad(seed)
    fresh = value_and_grad(seed)  # never called: no scalar path
    f((2.0, 3.0, 1.0, 4.0))
    bad = [
        ((2.0, 3.0, 1.0),),  # wrong length
        ((2.0, 3.0, 1.0, 4.0), 1.0),  # wrong arity
        ((2.0, 3.0, 1, 4.0),),  # an int where a float was seen
        ((2.0, 3.0, 1.0, np.ones(2)),),  # an array where a float was seen
        ("params",),
    ]
    for args in bad:
        with pytest.raises(Exception) as want:
            fresh(*args)
        with pytest.raises(type(want.value)) as got:
            f(*args)
        assert str(got.value) == str(want.value)


def test_scalar_call_other_signatures_take_the_general_path():
    f = value_and_grad(seed)
    f((2.0, 3.0, 1.0, 4.0))
    counter = _counted(f)
    np_args = (np.float64(2.0), 3.0, 1.0, 4.0)
    value, grads = f(np_args)  # a NumPy scalar leaf: its own signature, a NumPy scalar back
    assert type(grads[0]) is np.float64 and counter.calls == 1
    value, grads = f([2.0, 3.0, 1.0, 4.0])  # a list: gradients come back as a list
    assert type(grads) is list and counter.calls == 2

    two = grad(smooth)
    two(0.3, 2.0)
    counter = _counted(two)
    _same(two(0.3, y=2.0), two(0.3, 2.0))  # keywords: the general path
    assert counter.calls == 1

    h = grad(lambda x, n: x**n)
    assert h(2.0, 3) == pytest.approx(12.0)
    counter = _counted(h)
    assert h(2.0, 2) == pytest.approx(4.0) and counter.calls == 1  # another static value
    assert h(2.0, 3) == pytest.approx(12.0) and counter.calls == 1
    assert h(2.0, True) == pytest.approx(1.0) and counter.calls == 2  # True is not 3

    k = grad(lambda x, a0: x * a0)  # a keyword named like a generated parameter
    assert k(2.0, 3.0) == 3.0
    assert k(2.0, a0=5.0) == 5.0


def test_scalar_call_inside_a_trace_is_inlined():
    inner = value_and_grad(smooth)
    inner(0.3, 2.0)
    assert inner._scalar is not None

    def outer(x):
        value, g = inner(x, 2.0)  # traced x: inlined, differentiated through
        const, _ = inner(0.3, 2.0)  # constants inside a trace: inlined too
        return value + g + const

    d = grad(outer)
    eps, x = 1e-6, 0.4
    fd = (outer_np(x + eps) - outer_np(x - eps)) / (2 * eps)
    assert d(x) == pytest.approx(fd, rel=1e-6)
    assert TRACES_ACTIVE[0] == 0


def outer_np(x):
    """`outer` above, by hand: smooth(x, 2) + d smooth/dx (x, 2) + smooth(0.3, 2)."""

    def s(x, y):
        return math.exp(x) / y + math.log(y) * math.tanh(x) - math.sqrt(y) ** 3

    def ds(x, y):
        return math.exp(x) / y + math.log(y) * (1 - math.tanh(x) ** 2)

    return s(x, 2.0) + ds(x, 2.0) + s(0.3, 2.0)


def test_scalar_call_trace_counter_survives_errors_and_threads():
    def broken(x):
        raise RuntimeError("user error")

    with pytest.raises(RuntimeError):
        grad(broken)(1.0)
    assert TRACES_ACTIVE[0] == 0
    f = grad(lambda x: x * x)
    f(1.0)
    results = []

    def work():
        results.append([f(float(i)) for i in range(200)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == [2.0 * i for i in range(200)] for r in results)
    assert TRACES_ACTIVE[0] == 0


def test_scalar_call_transform_pickles_as_a_plain_transform():
    f = grad(seed)
    f((2.0, 3.0, 1.0, 4.0))
    assert type(f) is not _Transform
    g = pickle.loads(pickle.dumps(f))
    assert type(g) is _Transform and g._scalar is None
    assert g((2.0, 3.0, 1.0, 4.0)) == f((2.0, 3.0, 1.0, 4.0))


def test_scalar_call_not_with_the_interpreter_or_arrays():
    f = value_and_grad(seed, backend="interpret")
    f((2.0, 3.0, 1.0, 4.0))
    assert f._scalar is None and type(f) is _Transform
    g = value_and_grad(lambda x: np.sum(x**2))
    g(np.ones(3))
    assert g._scalar is None
