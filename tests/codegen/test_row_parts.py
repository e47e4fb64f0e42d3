"""The row kernel's parts on several threads (codegen/rowloop.py, runtime/row_parts.py).

A `rowfused` kernel splits X's rows into parts fixed by the shape (`part_bounds`); the calling
thread and the part workers claim them with an atomic counter inside the kernel, and the thread
that finishes the last part joins the partial results in part order. Checked: the bounds
(whole blocks, every row once), the answer bitwise the same on one thread and on two (calls
repeated, so which thread runs which part varies) and equal to the interpreter, the NumPy tier
and central finite differences; a late worker (every part already claimed) returns without
writing; the waiting protocol of `run_parts` with a stand-in kernel (a worker that still
holds a part when the caller's spin ends, and an interrupt during the wait).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from compiler import value_and_grad
from compiler.codegen import rowloop
from compiler.codegen.rowloop import MAX_PARTS, PART_BYTES, block_rows, part_bounds
from runtime import row_parts, row_threads
from tests.codegen.test_rowfuse import _softplus_args as _args
from tests.codegen.test_rowfuse import softplus_nll
from tests.codegen.util import cache_dir  # noqa: F401  (fixture)
from tests.helpers import fd_grad

pytestmark = pytest.mark.compiled  # about compiled code: GRADC_COMPILE=eager


def loss_aux(w, b, X, y):
    """A per-row aux output (sigmoid(z)), written by whichever thread runs its part."""
    z = X @ w + b
    p = 1.0 / (1.0 + np.exp(-z))
    return np.mean(np.logaddexp(0.0, z) - y * z), p


def _rows_for(parts: int, d: int, itemsize: int = 8) -> int:
    """A row count whose X splits into `parts` parts, with a ragged last block."""
    return parts * PART_BYTES // (d * itemsize) + 7


@pytest.mark.parametrize(
    "n, d, itemsize",
    [(1, 3, 8), (100, 5, 8), (10000, 50, 8), (10000, 50, 4), (2000, 1000, 8), (2_000_000, 10, 8),
     (_rows_for(3, 20), 20, 8), (10**7, 4, 4)],
)  # fmt: skip
def test_part_bounds_cover_every_row_once_in_whole_blocks(n, d, itemsize):
    bounds = part_bounds(n, d, itemsize)
    parts, b = len(bounds) - 1, block_rows(n, d, itemsize)
    assert bounds.dtype == np.int64 and bounds[0] == 0 and bounds[-1] == n
    assert np.all(np.diff(bounds) > 0)  # no empty part
    assert all(int(x) % b == 0 for x in bounds[:-1])  # a part is whole blocks
    assert 1 <= parts <= MAX_PARTS
    assert parts == 1 or n * d * itemsize >= parts * PART_BYTES  # each about PART_BYTES
    if n * d * itemsize >= 2 * PART_BYTES and n >= 2 * b:
        assert parts >= 2


def test_logreg_benchmark_shape_has_several_parts():
    assert len(part_bounds(10000, 50, 8)) - 1 >= 4  # benchmarks/workloads.py logreg


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parts_give_the_same_bits_on_one_thread_and_two(dtype, monkeypatch):
    d = 20
    args = _args(_rows_for(3, d, np.dtype(dtype).itemsize), d, dtype, seed=1)
    vg = value_and_grad(softplus_nll, argnums=(0, 1), compile="eager")
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "1")
    value1, (gw1, gb1) = vg(*args)
    (stage,) = [e.fn for e in vg._dispatch.cache.values()]
    assert stage.driver_kind == "python" and "# rowfused" in stage.source
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "2")
    for _ in range(20):  # which thread claims which part differs from call to call
        value2, (gw2, gb2) = vg(*args)
        assert value2 == value1
        np.testing.assert_array_equal(gw2, gw1)
        np.testing.assert_array_equal(gb2, gb1)
    ref = value_and_grad(softplus_nll, argnums=(0, 1), backend="interpret")
    value_r, (gw_r, gb_r) = ref(*args)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(value1, value_r, rtol=rtol)
    np.testing.assert_allclose(gw1, gw_r, rtol=rtol, atol=rtol * np.abs(gw_r).max())
    np.testing.assert_allclose(gb1, gb_r, rtol=rtol)
    numpy_tier = value_and_grad(softplus_nll, argnums=(0, 1), compile="never")
    value_n, (gw_n, _gb_n) = numpy_tier(*args)
    np.testing.assert_allclose(gw1, gw_n, rtol=rtol, atol=rtol * np.abs(gw_n).max())


def test_parts_write_a_per_row_output_and_match_finite_differences(monkeypatch):
    d = 12
    args = _args(_rows_for(4, d), d, seed=2)
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "2")
    vg = value_and_grad(loss_aux, argnums=(0, 1), has_aux=True, compile="eager")
    (value, p), (gw, gb) = vg(*args)
    w, b, X, y = args
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-(X @ w + b))), rtol=1e-14)
    np.testing.assert_allclose(value, loss_aux(*args)[0], rtol=1e-13)
    value_of = lambda w, b, X, y: loss_aux(w, b, X, y)[0]  # noqa: E731
    np.testing.assert_allclose(gw, fd_grad(value_of, args, 0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gb, fd_grad(value_of, args, 1), rtol=1e-6, atol=1e-9)


def test_a_late_worker_returns_without_writing(monkeypatch, tmp_path):
    """A worker that wakes after the call has claimed (and joined) every part claims nothing
    and writes nothing, and its idle wait ends when the next call rings or after its pauses;
    the caller's call rings once: the real kernel, called with the counters of a finished
    call."""
    calls = []
    real = row_parts.run_parts

    def spy(kernel, args, zshape, zdtype, wshape):
        calls.append((kernel, args, zshape, zdtype, wshape))
        real(kernel, args, zshape, zdtype, wshape)

    monkeypatch.setenv("GRADC_CACHE_DIR", str(tmp_path))  # render afresh: the spy is bound
    monkeypatch.setattr(row_parts, "run_parts", spy)
    monkeypatch.setattr(rowloop, "run_parts", spy)
    d = 10
    args = _args(_rows_for(2, d), d, seed=3)
    value_and_grad(softplus_nll, argnums=(0, 1), compile="eager")(*args)
    kernel, kargs, zshape, zdtype, wshape = calls[-1]
    parts = len(kargs[-1]) - 1
    assert parts >= 2
    outs = [a for a in kargs if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    for a in outs:
        a[...] = 7.0  # includes X: nothing at all may be written
    before = [a.copy() for a in outs]
    done = np.array([parts + 1, parts, 1, 5], np.int64)  # claimed, finished, joined; ring 5
    zr, wg = np.empty(zshape, zdtype), np.empty(wshape)
    bell = np.array([6], np.int64)  # the next call has rung: no idle wait
    assert kernel(*kargs, done, zr, wg, -(1 << 28), bell) == 1
    bell[0] = 5  # no next call: the idle wait ends after its pauses
    assert kernel(*kargs, done, zr, wg, -1000, bell) == 1
    for a, b in zip(outs, before):
        np.testing.assert_array_equal(a, b)
    assert done[0] == parts + 3  # its claim attempts, and nothing else
    assert list(done[1:]) == [parts, 1, 5] and bell[0] == 5
    # the caller's call (spins > 0) rings the bell once, to the value in ctr[3]
    done[3] = 6
    for _ in range(2):
        assert kernel(*kargs, done, zr, wg, 1, bell) == 1
        assert bell[0] == 6


class _StandIn:
    """A Python stand-in for a row kernel with the same protocol: `__call__(*args, ctr, zr,
    wg, spins, bell)` claims parts from ctr[0], counts them in ctr[1], joins (ctr[2]) after the
    last; a part claimed by a worker is held until `release` is set. Returns ctr[2]."""

    def __init__(self, parts: int) -> None:
        self.parts = parts
        self.lock = threading.Lock()
        self.ran: dict[int, int] = {}
        self.release = threading.Event()
        self.worker_holds = threading.Event()
        self.waits = 0
        self.joined = False

    def __call__(self, *a):
        *_args, bounds, ctr, _zr, _wg, spins, _bell = a
        while True:
            with self.lock:
                k = int(ctr[0])
                ctr[0] += 1
            if k >= self.parts:
                break
            if spins <= 0 and not self.worker_holds.is_set():  # a worker's first part
                self.worker_holds.set()
                assert self.release.wait(60)
            with self.lock:
                self.ran[k] = threading.get_ident()
                ctr[1] += 1
                if ctr[1] == self.parts:
                    self.joined = True
                    ctr[2] = 1
        if spins > 0 and not ctr[2]:
            self.waits += 1
            if self.waits == 2:  # the caller's second spin ended unjoined: let the worker go
                self.release.set()
        return int(ctr[2])


def test_run_parts_waits_for_a_part_a_worker_still_holds(monkeypatch):
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "2")
    k = _StandIn(parts=6)
    bounds = np.arange(7, dtype=np.int64)

    def caller_waits_for_worker():
        # the caller starts once the worker holds its part, so the worker has one
        assert k.worker_holds.wait(60)
        return True

    orig_call = k.__call__
    started = []

    def kernel(*a):
        if a[-2] > 0 and not started:  # the caller's first call
            started.append(1)
            caller_waits_for_worker()
        return orig_call(*a)

    row_parts.run_parts(kernel, (np.zeros(3), bounds), (2, 4), np.float64, (2, 3))
    assert sorted(k.ran) == list(range(6))  # every part once
    assert len(set(k.ran.values())) == 2  # on two threads
    assert k.waits >= 2  # the caller came back to wait after its spin ran out


def test_run_parts_on_one_thread_posts_nothing(monkeypatch):
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "1")
    k = _StandIn(parts=5)
    k.worker_holds.set()  # no worker may hold anything: nothing would release it
    row_parts.run_parts(k, (np.arange(6, dtype=np.int64),), (2, 4), np.float64, (2, 3))
    assert sorted(k.ran) == list(range(5))
    assert set(k.ran.values()) == {threading.get_ident()}


def test_run_parts_finishes_the_wait_before_an_interrupt_propagates(monkeypatch):
    """An exception in the wait (a KeyboardInterrupt in `time.sleep(0)`) propagates only once
    the parts are joined: a worker may be writing into this call's output buffers."""
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "2")
    k = _StandIn(parts=4)
    calls = {"sleep": 0}

    def interrupted_sleep(_s):
        calls["sleep"] += 1
        k.release.set()  # the worker finishes only after the interrupt
        raise KeyboardInterrupt

    def kernel(*a):
        if a[-2] > 0:  # the caller: start once the worker holds a part
            assert k.worker_holds.wait(60)
        return k(*a)

    monkeypatch.setattr(row_parts.time, "sleep", interrupted_sleep)
    with pytest.raises(KeyboardInterrupt):
        row_parts.run_parts(kernel, (np.arange(5, dtype=np.int64),), (2, 4), np.float64, (2, 3))
    assert calls["sleep"] == 1
    assert k.joined and sorted(k.ran) == list(range(4))  # joined before it propagated
