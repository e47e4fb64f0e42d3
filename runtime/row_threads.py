"""The NumPy tier's large loops on more than one core (docs/tiers.md), and the thread limit
gradc's threads share (the compiled row kernel's parts: runtime/row_parts.py).

A chunked loop (compiler/codegen/numpy_chunks.py) is a function `run(indices)` over the
chunks an iterator gives it: every chunk reads its own rows of the inputs and writes its own
rows of the outputs or its own slot of a reduction's partial results, with scratch of its
own (per call of `run`). So chunks can run at once, and NumPy releases the interpreter lock
inside each ufunc call (a chunk's ops are whole-array calls of thousands of elements), so
they do. `split` runs `run` on the calling thread and on a pool of worker threads, one per
usable core beyond the first (`os.sched_getaffinity`: the cores this process may run on, not
the host's), all drawing from one iterator, so each thread takes the next chunk when it is
done with its last. What the loop computes does not depend on which thread ran a chunk: the
partial results are joined in chunk order afterwards, by the caller (bitwise the same answer
on one thread or several).

`GRADC_THREADS` caps the threads (1: the calling thread only), here and in row_parts.py.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

THREADS_ENV_VAR = "GRADC_THREADS"
# A thread takes at least this many chunks: below it the hand-off (a wake-up, ~20-50 us)
# is a visible share of the loop.
MIN_CHUNKS_PER_THREAD = 4

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0  # the process that made `_pool`: a forked child must not use its parent's
_pool_lock = threading.Lock()
_in_worker = threading.local()


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def thread_limit() -> int:
    """Threads a loop may use: `GRADC_THREADS` if set, else the usable cores; a
    ValueError naming the variable when it is not a positive integer."""
    raw = os.environ.get(THREADS_ENV_VAR, "").strip()
    if not raw:
        return usable_cores()
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{THREADS_ENV_VAR}={raw!r}: expected a positive integer, e.g. 1")
    return n


def threads_for(chunks: int) -> int:
    """How many threads run a loop of `chunks` chunks."""
    if chunks < 2 * MIN_CHUNKS_PER_THREAD or getattr(_in_worker, "on", False):
        return 1
    return max(1, min(thread_limit(), chunks // MIN_CHUNKS_PER_THREAD))


def split(run: Callable[[Iterator[int]], None], chunks: int) -> None:
    """Run `run(indices)` on `threads_for(chunks)` threads that share one iterator over
    `range(chunks)`, so each takes the next chunk when it is done with its last (a thread
    that starts later or runs slower takes fewer), and return when all have ended. An
    exception from any thread is raised after every thread has ended (their writes land in
    the caller's buffers), the calling thread's first."""
    n = threads_for(chunks)
    indices = iter(range(chunks))  # one C-level `next` per chunk: atomic under the GIL
    if n == 1:
        run(indices)
        return
    pool = _get_pool(n - 1)
    # each worker runs in a copy of the caller's context: NumPy's error state (np.errstate)
    # is a context variable, so `all="raise"` or "ignore" around the call holds in it too
    futures: list[Future] = [
        pool.submit(contextvars.copy_context().run, _worker_run, run, indices) for _ in range(n - 1)
    ]
    errors: list[BaseException] = []
    try:
        run(indices)
    except BaseException as err:  # noqa: BLE001 - re-raised below, after the others end
        errors.append(err)
    for fut in futures:
        err = fut.exception()  # waits
        if err is not None:
            errors.append(err)
    if errors:
        raise errors[0]


def _worker_run(run: Callable[[Iterator[int]], None], indices: Iterator[int]) -> None:
    _in_worker.on = True  # a loop run from a worker stays on it: no pool waits on itself
    run(indices)


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size < workers:
            # a forked child's copy of the pool has no threads behind it (dropped, never
            # shut down: its queue is the parent's); a larger limit (GRADC_THREADS
            # raised) gets a larger pool, and the old one's threads end once idle
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="gradc-numpy")
            _pool_size, _pool_pid = workers, os.getpid()
        return _pool
