"""The NumPy tier's chunked loops on several threads (runtime/row_threads.py): every chunk runs
once, on the calling thread and the pool's, errors and NumPy's error state cross threads, and
the thread count follows the variable and the cores. (The generated loops' results, one
thread against two and the interpreter: tests/codegen/test_numpy_chunks.py.)"""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from runtime import row_threads


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "2")
    monkeypatch.setattr(row_threads, "MIN_CHUNKS_PER_THREAD", 1)


def _both_threads_run(chunks: int, on_chunk=lambda c: None):
    """A `run` under which the calling thread and one pool thread each take at least one
    chunk (the caller starts once the pool thread has its first, which waits for the
    caller's first); returns it and the record of (chunk, thread) it fills."""
    caller = threading.get_ident()
    worker_in, caller_in = threading.Event(), threading.Event()
    ran: list[tuple[int, int]] = []

    def run(indices):
        mine = threading.get_ident() == caller
        if mine:
            assert worker_in.wait(60), "no pool thread started"
        for i, c in enumerate(indices):
            ran.append((c, threading.get_ident()))
            if i == 0 and mine:
                caller_in.set()
            elif i == 0:
                worker_in.set()
                assert caller_in.wait(60), "the caller took no chunk"
            on_chunk(c)

    return run, ran


def test_every_chunk_runs_once_on_both_threads(two_threads):
    run, ran = _both_threads_run(40)
    row_threads.split(run, 40)
    assert sorted(c for c, _ in ran) == list(range(40))
    assert len({t for _, t in ran}) == 2


def test_one_thread_runs_everything_on_the_caller(monkeypatch):
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "1")
    seen: list[tuple[int, int]] = []
    row_threads.split(lambda ix: seen.extend((c, threading.get_ident()) for c in ix), 50)
    assert seen == [(c, threading.get_ident()) for c in range(50)]


def test_an_error_on_a_pool_thread_is_raised_after_every_chunk_ran(two_threads):
    done = []

    def on_chunk(c):
        done.append(c)
        if c == 5:
            raise ZeroDivisionError("chunk 5")

    run, ran = _both_threads_run(30, on_chunk)
    with pytest.raises(ZeroDivisionError, match="chunk 5"):
        row_threads.split(run, 30)
    # the thread that raised stopped; the other took every chunk left
    assert sorted(done) == sorted(set(done)) and len(done) == 30


def test_numpy_error_state_holds_on_pool_threads(two_threads):
    caller = threading.get_ident()
    zero = np.zeros(4)

    def on_chunk(c):
        if threading.get_ident() != caller:
            np.divide(1.0, zero)  # raises only if the caller's errstate reached this thread

    run, _ = _both_threads_run(20, on_chunk)
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            row_threads.split(run, 20)
    with np.errstate(divide="ignore"):
        run, _ = _both_threads_run(20, on_chunk)
        row_threads.split(run, 20)  # no warning either: ignore reached the pool thread


def test_thread_count_follows_the_variable_and_the_cores(monkeypatch):
    monkeypatch.delenv(row_threads.THREADS_ENV_VAR, raising=False)
    monkeypatch.setattr(row_threads, "usable_cores", lambda: 3)
    per = row_threads.MIN_CHUNKS_PER_THREAD
    assert row_threads.threads_for(100 * per) == 3
    assert row_threads.threads_for(2 * per) == 2  # each thread gets its minimum
    assert row_threads.threads_for(2 * per - 1) == 1
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, "1")
    assert row_threads.threads_for(100 * per) == 1


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_bad_thread_count_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(row_threads.THREADS_ENV_VAR, raw)
    with pytest.raises(ValueError, match=row_threads.THREADS_ENV_VAR):
        row_threads.thread_limit()


def test_usable_cores_is_the_affinity():
    assert 1 <= row_threads.usable_cores()
    if hasattr(__import__("os"), "sched_getaffinity"):
        assert row_threads.usable_cores() == len(__import__("os").sched_getaffinity(0))


def _split_in_child(q) -> None:
    out = []
    row_threads.split(lambda ix: out.extend(ix), 40)
    q.put(sorted(out))


# Python 3.12+ warns at any fork of a process with threads (this one has the pool's)
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_makes_its_own_pool(two_threads):
    run, _ = _both_threads_run(20)
    row_threads.split(run, 20)  # the parent's pool exists, with a thread behind it
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_split_in_child, args=(q,))
    p.start()
    p.join(120)  # the parent's pool copied into the child has no threads: it would hang
    assert p.exitcode == 0
    assert q.get(timeout=10) == list(range(40))
