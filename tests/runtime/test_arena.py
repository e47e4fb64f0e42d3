from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from runtime.arena import Arena

SPECS = [((4, 3), np.float64), ((5,), "float32"), ((), np.int64)]


def test_arena_acquire_allocates_each_slot():
    arena = Arena(SPECS)
    bufs = arena.acquire()
    assert [(b.shape, b.dtype) for b in bufs] == [
        ((4, 3), np.dtype("f8")),
        ((5,), np.dtype("f4")),
        ((), np.dtype("i8")),
    ]
    assert arena.nbytes == 12 * 8 + 5 * 4 + 8


def test_arena_reuses_one_set_across_sequential_calls():
    arena = Arena(SPECS)
    first = arena.acquire()
    arena.release(first)
    for _ in range(10):
        with arena.buffers() as bufs:
            assert all(a is b for a, b in zip(bufs, first))
    assert arena.num_sets == 1


def test_arena_gives_concurrent_callers_distinct_sets():
    arena = Arena(SPECS)
    a, b = arena.acquire(), arena.acquire()
    assert not any(np.shares_memory(x, y) for x in a for y in b)
    assert arena.num_sets == 2
    arena.release(a)
    assert arena.acquire() is a


def test_arena_threads_never_share_buffers():
    arena = Arena([((64,), np.float64)])
    clashes = []
    start = threading.Barrier(8)

    def worker(tid: int) -> None:
        start.wait()
        for _ in range(200):
            with arena.buffers() as (buf,):
                buf.fill(tid)
                time.sleep(0)  # let another thread run while this one holds the set
                if not (buf == tid).all():
                    clashes.append(tid)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clashes == []
    assert 1 <= arena.num_sets <= 8


def test_arena_release_twice_raises():
    arena = Arena(SPECS)
    bufs = arena.acquire()
    arena.release(bufs)
    with pytest.raises(ValueError, match="released twice"):
        arena.release(bufs)
    with pytest.raises(ValueError):
        arena.release([np.empty(3)])


def test_arena_context_manager_releases_on_error():
    arena = Arena(SPECS)
    with pytest.raises(RuntimeError), arena.buffers():
        raise RuntimeError("kernel failed")
    arena.acquire()
    assert arena.num_sets == 1


def test_arena_empty_specs_work():
    arena = Arena([])
    with arena.buffers() as bufs:
        assert bufs == []
    assert arena.nbytes == 0
