"""Reductions and scans as user code calls them: values equal NumPy's, gradients equal finite
differences (interpreter backend; the records' compiled path is in the registry tests)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import grad, trace
from compiler.interpret import interpret
from tests.helpers import assert_tree_matches, check_value_and_grad

A = np.random.default_rng(41).normal(size=(3, 4))

CASES = {
    "var": lambda a: np.var(a),
    "var_ddof": lambda a: np.var(a, axis=1, ddof=1, keepdims=True),
    "std_method": lambda a: a.std(0),
    "std_ddof": lambda a: np.std(a, ddof=1),
    "prod": lambda a: np.prod(a, axis=0),
    "prod_method": lambda a: a.prod(),
    "cumsum": lambda a: np.cumsum(a, axis=1),
    "cumsum_flat": lambda a: np.cumsum(a),
    "cumprod": lambda a: a.cumprod(0),
    "diff": lambda a: np.diff(a),
    "diff_n": lambda a: np.diff(a, n=2, axis=0),
    "diff_prepend": lambda a: np.diff(a, prepend=0.0),
    "average_weights": lambda a: np.average(a, axis=1, weights=np.arange(1.0, 5.0)),
    "average": lambda a: np.average(a),
    "average_returned": lambda a: np.average(a, weights=a * a, axis=0, returned=True)[0],
    "ptp": lambda a: np.ptp(a, axis=1),
    "nansum": lambda a: np.nansum(a),
    "nanmean": lambda a: np.nanmean(a, axis=0),
    "logaddexp_reduce": lambda a: np.logaddexp.reduce(a, axis=1),
    "add_reduce": lambda a: np.add.reduce(a),
    "multiply_accumulate": lambda a: np.multiply.accumulate(a, axis=1),
    "maximum_reduce": lambda a: np.maximum.reduce(a, axis=1),
    "max_where": lambda a: np.max(a, axis=1, where=a > 0, initial=-1.0),
    "sum_where": lambda a: np.sum(a, where=a > 0),
    "mean_where": lambda a: np.mean(a, axis=0, where=np.arange(12).reshape(3, 4) % 3 != 0),
    "min_initial": lambda a: np.min(a, initial=0.5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reductions_value_and_gradient(name):
    f = CASES[name]
    check_value_and_grad(f, A)


def test_reductions_nan_variants_skip_nans_and_prod_is_exact_at_zeros():
    a = A.copy()
    a[0, 1] = np.nan
    for f in (np.nansum, lambda x: np.nanmean(x, 0)):
        assert_tree_matches(interpret(trace(f, a), a), f(a), rtol=1e-12)
    z = A.copy()
    z[1, :2] = 0.0  # two zeros in a row: the gradient is nonzero only where one factor is 0
    g = grad(lambda x: np.sum(np.prod(x, axis=1)), backend="interpret")(z)
    want = np.array([[np.prod(np.delete(r, j)) for j in range(4)] for r in z])
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-15)


def test_reductions_where_without_initial_is_numpys_error():
    with pytest.raises(ValueError, match="does not have an identity"):
        trace(lambda a: np.max(a, where=a > 0), A)
