"""compiler.distributed without a cluster: argument checks (each error names the argument and
the fix) and results on Dask's local scheduler, the path taken when no Client exists."""

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


def test_layout_local_scheduler_matches_whole_dataset(f):
    X, y, Xd, yd = _data(chunks=(25, 0, 25, 10))  # an empty chunk is skipped
    w = R.standard_normal(3)
    X0 = X.copy()
    value, g = f(w, Xd, yd)
    r = X @ w - y
    np.testing.assert_allclose(value, np.mean(r * r), rtol=1e-13)
    np.testing.assert_allclose(g, 2 * X.T @ r / len(y), rtol=1e-12)
    np.testing.assert_array_equal(X, X0)


def test_layout_chunked_along_another_axis(f):
    X, y, _, yd = _data()
    with pytest.raises(ValueError, match=r"'X'.*chunked along axis 1.*X\.rechunk\(\{1: -1\}\)"):
        f(np.ones(3), da.from_array(X, chunks=(20, 2)), yd)


def test_layout_mismatched_chunks_name_both_arguments(f):
    X, y, Xd, _ = _data()
    with pytest.raises(ValueError, match=r"'X' and 'y' are chunked differently.*\(30, 30\)"):
        f(np.ones(3), Xd, da.from_array(y, chunks=30))
    with pytest.raises(ValueError, match=r"'X' .* and 'y' .* different lengths.*60 vs 59"):
        f(np.ones(3), Xd, da.from_array(y[:59], chunks=20))


def test_layout_unknown_chunk_sizes(f):
    X, y, Xd, yd = _data()
    Xm = Xd[Xd[:, 0] > -10]  # boolean indexing: chunk lengths unknown until computed
    with pytest.raises(ValueError, match=r"'X' has unknown chunk sizes.*compute_chunk_sizes"):
        f(np.ones(3), Xm, yd)


def test_layout_gradient_wrt_data_is_refused(f):
    _, _, Xd, yd = _data()
    g = cd.value_and_grad(sq, argnums=1)
    with pytest.raises(TypeError, match=r"argnums=1 points at 'X', a Dask array"):
        g(np.ones(3), Xd, yd)


def test_layout_needs_a_dask_array(f):
    X, y, _, _ = _data()
    with pytest.raises(TypeError, match="no argument is a Dask array"):
        f(np.ones(3), X, y)


def test_layout_dask_array_inside_params(f):
    _, _, Xd, yd = _data()
    with pytest.raises(TypeError, match=r"argument 'w' holds a dask.array.*inside a pytree"):
        cd.value_and_grad(lambda w, X, y: sq(w["a"], X, y))({"a": da.ones(3)}, Xd, yd)


def test_layout_bad_options():
    with pytest.raises(ValueError, match=r"reduce='avg'; choose 'sum'.*or 'mean'"):
        cd.value_and_grad(sq, reduce="avg")
    with pytest.raises(ValueError, match="split_every=1 must be an int >= 2"):
        cd.value_and_grad(sq, split_every=1)
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        cd.value_and_grad(sq, argnums="w")
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        cd.value_and_grad(sq, argnums=(0, True))
    with pytest.raises(TypeError, match="expects a callable"):
        cd.value_and_grad(3)
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        cd.value_and_grad(sq, backend="cuda")
    with pytest.raises(ValueError, match="memory='bogus'"):
        cd.value_and_grad(sq, memory="bogus")


def test_layout_unpicklable_closure_names_the_variable():
    import threading

    lock = threading.Lock()

    def guarded(w, X, y):
        assert lock is not None
        return sq(w, X, y)

    _, _, Xd, yd = _data()
    with pytest.raises(TypeError, match=r"cannot send the loss .*guarded.*closure variable 'lock'"):
        cd.value_and_grad(guarded)(np.ones(3), Xd, yd)


def test_layout_loss_errors_surface_from_the_chunk(f):
    # a shape error inside the loss is gradc's own message, raised where the chunk ran
    _, _, Xd, yd = _data()
    with pytest.raises(
        Exception, match=r"matmul: inner dimensions differ: f64\[20,3\] @ f64\[4,1\]"
    ):
        f(np.ones(4), Xd, yd)


def test_layout_sum_with_float32_data_keeps_float32():
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
