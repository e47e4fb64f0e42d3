"""compiler.distributed without a cluster: results on Dask's local scheduler, the path taken
when no Client exists. (Every error it raises is a case in tests/robustness/test_errors.py,
from tests/distributed/error_cases.py.)"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import compiler
from compiler import distributed as cd

R = np.random.default_rng(3)


def sq(w, X, y):
    return np.mean((X @ w - y) ** 2)


def _data(n=60, d=3, chunks=20):
    X, y = R.standard_normal((n, d)), R.standard_normal(n)
    return X, y, da.from_array(X, chunks=(chunks, d)), da.from_array(y, chunks=chunks)


@pytest.fixture
def f():
    return cd.value_and_grad(sq, reduce="mean", backend="interpret")


def test_local_scheduler_matches_whole_dataset(f):
    X, y, Xd, yd = _data(chunks=(25, 0, 25, 10))  # an empty chunk is skipped
    w = R.standard_normal(3)
    X0 = X.copy()
    value, g = f(w, Xd, yd)
    r = X @ w - y
    np.testing.assert_allclose(value, np.mean(r * r), rtol=1e-13)
    np.testing.assert_allclose(g, 2 * X.T @ r / len(y), rtol=1e-12)
    np.testing.assert_array_equal(X, X0)


def test_local_loss_errors_surface_from_the_chunk(f):
    # a shape error inside the loss is gradc's own message, raised where the chunk ran
    _, _, Xd, yd = _data()
    with pytest.raises(
        ValueError, match=r"matmul: inner dimensions differ: f64\[20,3\] @ f64\[4,1\]"
    ):
        f(np.ones(4), Xd, yd)


def test_local_sum_with_float32_data_keeps_float32():
    X, y, Xd, yd = _data()
    Xd, yd = Xd.astype(np.float32), yd.astype(np.float32)
    w = np.ones(3, np.float32)
    loss = lambda w, X, y: np.sum((X @ w - y) ** 2)  # noqa: E731
    value, g = cd.value_and_grad(loss, backend="interpret")(w, Xd, yd)
    want_v, want_g = compiler.value_and_grad(loss, backend="interpret")(
        w, X.astype(np.float32), y.astype(np.float32)
    )
    assert g.dtype == np.float32 and np.asarray(value).dtype == np.float32
    np.testing.assert_allclose(value, want_v, rtol=1e-5)
    np.testing.assert_allclose(g, want_g, rtol=1e-4, atol=1e-4)
