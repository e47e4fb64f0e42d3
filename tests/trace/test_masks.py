"""Boolean masks: constant masks index like NumPy; traced masks work in reductions and in
assignments, and every other use names the line and the np.where rewrite."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import TracerError, jit, trace
from tests.helpers import check_value_and_grad

A = np.random.default_rng(81).normal(size=(3, 4))
COLS, ROWS = A[0] > 0, np.array([True, False, True])
# halfway between the two smallest values of column 0: the mask drops one row, robustly
THR = float(np.mean(np.sort(A[:, 0])[:2]))


def _clip_high(a):
    a = a.copy()
    a[a > 0.5] = 0.5
    return a


def _scale_negatives(a):
    a = a.copy()
    a[a < 0] += 2.0 * a[a < 0]
    return a


def _named_mask(a):
    a = a.copy()
    m = a < 0
    a[m] += 2.0 * a[m]
    a[m] *= 3
    return a


def _constant_masks(a):
    b = a * 1.0
    b[ROWS] = 7.0
    b[:, COLS] = -1.0
    return b


CASES = {
    "sum_of_squares": lambda a: np.sum(a[a > 0] ** 2),
    "mean": lambda a: np.mean(a[a > 0]),
    "max": lambda a: np.max(a[a < 0.3]),
    "methods": lambda a: a[a > 0].sum() + a[a > 0].min() + (a[a > 0] * 2).prod(),
    "row_mask": lambda a: np.sum(a[a[:, 0] > -5]),
    "row_mask_axis0": lambda a: np.mean(a[a[:, 0] > THR], axis=0) + a[a[:, 0] > THR].max(0),
    "keepdims": lambda a: (
        np.sum(a[a > 0] * 2, keepdims=True) + a[a[:, 0] > -5].min(0, keepdims=True)
    ),
    "assign_scalar": _clip_high,
    "add_assign": _scale_negatives,
    "named_mask": _named_mask,
    "constant_masks": _constant_masks,
    "constant_mask_read": lambda a: a[ROWS] + a[:, COLS].sum(),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_masks_value_and_gradient(name):
    f = CASES[name]
    check_value_and_grad(f, A)


def test_masks_compiled_matches_numpy():
    def f(a):
        b = a.copy()
        b[b < 0] *= 0.1
        return np.sum(b[b > 0.2] ** 2) + b

    np.testing.assert_allclose(jit(f, backend="numba")(A), f(A.copy()), rtol=1e-12)


def _bad_len(a):
    return len(a[a > 0]) * a


@pytest.mark.parametrize(
    "f,what",
    [
        (lambda a: a[a > 0], "returning x[mask]"),
        (lambda a: a[a > 0] + a, "combining x[mask] with a full array"),
        (_bad_len, "len(x[mask])"),
        (lambda a: np.sort(a[a > 0]), "np.sort(x[mask])"),
        (lambda a: np.sum(a[a[:, 0] > 0], axis=1), "axis=..."),
        (lambda a: a[a > 0] * a[a < 0], "y[other_mask]"),
        (lambda a: a[a > 0][0], "indexing x[mask]"),
    ],
)
def test_masks_data_dependent_shapes_name_the_line_and_the_rewrite(f, what):
    with pytest.raises(TracerError) as info:
        trace(f, A)
    msg = str(info.value)
    assert what in msg and "np.where(mask, x, 0)" in msg and __file__ in msg
