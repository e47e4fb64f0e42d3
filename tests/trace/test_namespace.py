"""The traced NumPy namespace: only the user's code sees traced functions, and it sees them
through every spelling (np.*, `from numpy import`, local imports, helpers, closures)."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from numpy import zeros as _zeros_by_name

from compiler import grad, trace
from tests.helpers import check_trace, fd_grad

X = np.random.default_rng(11).normal(size=(3,))
_REAL_ZEROS = np.zeros
_REAL_ZEROS_ID = id(np.zeros)  # an int: user code sees it as it is
_COUNTER = 0


@pytest.mark.parametrize(
    "f",
    [
        lambda x: np.array([x[0], x[0] * 1.0, x[1] + 2.5]),
        lambda x: np.array([[x[0], x[1]], [x[2], 1.0]]),
        lambda x: np.asarray([x, x * 2.0]),
        lambda x: np.mean([x, x + 2.0]),
        lambda x: np.sum((x[0], x[1])),
        lambda x: np.array([x[0], 2], dtype=np.float32) * 3,
        lambda x: np.concatenate([x, [x[0], 1.0]]),
        lambda x: np.exp([x[0], x[1]]),
        lambda x: np.stack([x, np.array([1.0, x[1], x[2]])], axis=1),
        lambda x: np.array(x) + np.asarray(x, dtype=np.float32),
    ],
)
def test_namespace_arrays_built_from_traced_values_match_numpy(f):
    check_trace(f, X)


def _uses_name_imported_from_numpy(x):
    z = _zeros_by_name(4)
    z[1:] = x
    return z


def _local_import(x):
    import numpy as onp
    from numpy import ones

    return onp.zeros(2) + ones(2) * x[0]


def _helper(x):
    z = np.zeros(3)
    z[0] = x[1]
    return z


def _calls_helper(x):
    return _helper(x) * x


def _recursive(x, n):
    if n == 0:
        return np.zeros(3) + x
    return _recursive(x, n - 1) * 2.0


def test_namespace_every_spelling_sees_traced_creation_functions():
    check_trace(_uses_name_imported_from_numpy, X)
    check_trace(_local_import, X)
    check_trace(_calls_helper, X)
    check_trace(lambda x: _recursive(x, 3), X)


def _make_closure():
    def inner(x):
        z = np.ones(3)
        z[2] = x[0]
        return z

    def rec(x, n):
        return np.zeros(3) + x if n == 0 else rec(x, n - 1) + 1.0

    def loss(x):
        return np.sum(inner(x) * rec(x, 2))

    return loss


def test_namespace_closures_and_nested_recursion_are_traced_and_differentiated():
    loss = _make_closure()
    g = grad(loss, backend="interpret")(X)
    np.testing.assert_allclose(g, fd_grad(loss, [X], 0), rtol=1e-6, atol=1e-8)


def _module_state_during_trace(x):
    real = sys.modules["numpy"]
    assert id(real.zeros) == _REAL_ZEROS_ID  # the module other code uses is untouched
    assert type(real.zeros(2)) is np.ndarray
    seen = []
    t = threading.Thread(target=lambda: seen.append(type(np.ones(2)) is np.ndarray))
    t.start()
    t.join()
    assert seen == [True]
    return np.zeros(3) + x


def test_namespace_tracing_never_changes_a_module_other_code_uses():
    check_trace(_module_state_during_trace, X)
    assert np.zeros is _REAL_ZEROS
    assert type(np.zeros(2)) is np.ndarray


def _bumps_global(x):
    global _COUNTER
    _COUNTER += 1
    return x * _COUNTER


def test_namespace_global_and_nonlocal_writes_reach_the_real_variables():
    before = _COUNTER
    trace(_bumps_global, X)
    assert _COUNTER == before + 1
    calls = 0

    def f(x):
        nonlocal calls
        calls += 1
        return np.zeros(3) + x

    trace(f, X)
    assert calls == 1


def test_namespace_static_function_argument_is_traced_too():
    def apply(x, fn):
        return fn(x)

    check_trace(apply, X, _helper)
    check_trace(apply, X, np.tanh)


def _reads_globals_dict(x):
    g = globals()
    assert "_COUNTER" in g and g.get("_COUNTER") == _COUNTER and g.get("_nope", 3) == 3
    return g.get("np").zeros(3) + x  # the traced namespace, through the dict too


def test_namespace_globals_dict_reads_see_the_module():
    check_trace(_reads_globals_dict, X)
