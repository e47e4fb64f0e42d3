"""Sorting and selection as user code calls them: values equal NumPy's, gradients flow through
the permutation (finite differences), integer results index arrays, traced scalars too."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import jit, trace
from compiler.interpret import interpret
from tests.helpers import check_value_and_grad

A = np.random.default_rng(71).normal(size=(3, 4))


def _put(a):
    z = np.zeros((3, 4))
    np.put_along_axis(z, np.argsort(a, 1)[:, :2], a[:, :2] * 2, axis=1)
    return z


def _sort_method(a):
    a = a.copy()
    a.sort(axis=0)
    return a


CASES = {
    "sort": np.sort,
    "sort_axis0": lambda a: np.sort(a, axis=0),
    "sort_flat": lambda a: np.sort(a, axis=None),
    "sort_method": _sort_method,
    "take_along_axis": lambda a: np.take_along_axis(a, np.argsort(a, 0), 0),
    "take_along_keepdims": lambda a: np.take_along_axis(
        a, np.argmax(a, axis=1, keepdims=True), axis=1
    ),
    "traced_scalar_index": lambda a: a[np.argmax(a[0])],
    "traced_scalar_indices": lambda a: a[0, np.argmin(a[1])] * a[np.argmax(a[:, 0]), 1],
    "put_along_axis": _put,
    "searchsorted": lambda a: a[1, np.searchsorted(np.sort(a[0]), a[2, :2])],
    "trimmed_mean": lambda a: np.mean(np.sort(a.ravel())[2:-2]),
    "argsort_as_data": lambda a: np.argsort(a) * 1.0 + a,
    "arg_methods": lambda a: (a.argmax() + a.argmin(axis=0)) * a,
    "max_where": lambda a: np.max(a, where=a > 0, initial=0.0, axis=0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sort_value_and_gradient(name):
    f = CASES[name]
    check_value_and_grad(f, A)


def test_sort_partition_puts_every_element_on_the_right_side():
    out = interpret(trace(lambda a: np.partition(a, 2, axis=1), A), A)
    np.testing.assert_array_equal(np.sort(out, 1), np.sort(A, 1))
    assert np.all(out[:, :2].max(1) <= out[:, 2]) and np.all(out[:, 3:].min(1) >= out[:, 2])
    idx = interpret(trace(lambda a: np.argpartition(a, 1, axis=0), A), A)
    np.testing.assert_array_equal(np.sort(np.take_along_axis(A, idx, 0), 0), np.sort(A, 0))


def test_sort_compiled_matches_numpy():
    def f(a):
        return np.sort(a, axis=1)[:, ::-1] * a[np.argmax(a[0])]

    np.testing.assert_allclose(jit(f, backend="numba")(A), f(A), rtol=1e-12)
