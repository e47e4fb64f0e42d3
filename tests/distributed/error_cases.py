"""The raise sites of compiler.distributed as cases for tests/robustness/test_errors.py (every
error gradc raises, triggered, with its type and message checked). No cluster is needed: each
check fails before anything is sent."""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np

from compiler import distributed as cd
from compiler.distributed.shipping import Options, RemoteLoss

GRADIENT, LAYOUT, SHIPPING = (
    f"compiler/distributed/{m}.py" for m in ("gradient", "layout", "shipping")
)


def _loss(w, X, y):
    return np.sum((X @ w - y) ** 2)


def _call(*args, argnums=0):
    return lambda: cd.value_and_grad(_loss, argnums, backend="interpret")(*args)


def _xy(n=8, d=2, xchunks=(4, 2), ychunks=4):
    return da.ones((n, d), chunks=xchunks), da.ones(n, chunks=ychunks)


def _unpicklable():
    lock = threading.Lock()

    def guarded(w, X, y):
        assert lock is not None
        return _loss(w, X, y)

    return lambda: cd.value_and_grad(guarded)(np.ones(2), *_xy())


def distributed_cases(case: type) -> list:
    """`case(site, trigger, exc, match)` for every raise in compiler/distributed."""
    X, y = _xy()
    w = np.ones(2)
    bad_remote = RemoteLoss("bad", "f", b"not a pickle", Options(0, None, (), None, None))
    unknown = X[X[:, 0] > 0]
    return [
        case((GRADIENT, "expects a callable"), lambda: cd.value_and_grad(3), TypeError,
             "expects a callable, got int"),
        case((GRADIENT, "reduce={reduce!r}"), lambda: cd.value_and_grad(_loss, reduce="max"),
             ValueError, "reduce='max'; choose 'sum'"),
        case((GRADIENT, "split_every={split_every!r}"),
             lambda: cd.value_and_grad(_loss, split_every=0), ValueError, "split_every=0 must"),
        case((GRADIENT, "unknown compile="), lambda: cd.value_and_grad(_loss, compile="soon"),
             ValueError, "unknown compile='soon'; choose one of"),
        case((GRADIENT, "unknown backend"), lambda: cd.value_and_grad(_loss, backend="gpu"),
             ValueError, "unknown backend 'gpu'"),
        case((GRADIENT, "argnums must be an int"), lambda: cd.value_and_grad(_loss, argnums=1.5),
             TypeError, "argnums must be an int or a tuple of ints, got 1.5"),
        case((LAYOUT, "no argument is a Dask array"), _call(w, np.ones((8, 2)), np.ones(8)),
             TypeError, "no argument is a Dask array"),
        case((LAYOUT, "is out of range"), _call(w, X, y, argnums=5), ValueError,
             "argnums=5 is out of range for a call with 3"),
        case((LAYOUT, "points at"), _call(w, X, y, argnums=2), TypeError,
             "argnums=2 points at 'y', a Dask array"),
        case((LAYOUT, "has no rows"), _call(w, *_xy(0, 2, (0, 2), 0)), ValueError,
             "'X' has no rows"),
        case((LAYOUT, "data must be dask.array"), _call([w, da.ones(2)], X, y), TypeError,
             "argument 'w' holds a dask.array.core.Array inside a pytree"),
        case((LAYOUT, "is a 0-d Dask array"), _call(w, da.ones(()), y), ValueError,
             "'X' is a 0-d Dask array"),
        case((LAYOUT, "unknown chunk sizes"), _call(w, unknown, y), ValueError,
             "'X' has unknown chunk sizes.*compute_chunk_sizes"),
        case((LAYOUT, 'f"chunked along axis {axis}'), _call(w, *_xy(xchunks=(4, 1))),
             ValueError,
             r"'X' \(shape \(8, 2\)\) is chunked along axis 1 \(chunks \(1, 1\)\)"),
        case((LAYOUT, "different lengths"), _call(w, X, da.ones(7, chunks=4)), ValueError,
             r"'X' \(shape \(8, 2\)\) and 'y' \(shape \(7,\)\) have different lengths"),
        case((LAYOUT, "chunked differently"), _call(w, *_xy(ychunks=2)), ValueError,
             r"chunked differently .*X: \(4, 4\), y: \(2, 2, 2, 2\)"),
        case((SHIPPING, "could not be loaded on"), bad_remote.transform, RuntimeError,
             "loss 'f' could not be loaded on a worker"),
        case((SHIPPING, "cannot send the loss"), _unpicklable(), TypeError,
             "closure variable 'lock' .*cannot be pickled"),
    ]  # fmt: skip
