"""A compiled row kernel's parts on more than one core (docs/architecture-codegen.md, "Row loops").

A row kernel (compiler/codegen/rowloop.py) splits X's rows into parts fixed by the shape.
`run_parts` calls it on the calling thread and, through a queue, on `n - 1` part workers, all
with one shared counter array: each call claims parts inside the kernel (an atomic add, no
interpreter lock) until none are left. The caller's call then waits, spinning in the kernel,
for a part a worker may still be running; the thread that finishes the last part joins the
partial results in part order, so the answer is bitwise the same on any number of threads.
A worker that wakes after every part was claimed returns at once. After its parts a worker
spins in the kernel for up to `IDLE_SPINS` pauses (about 0.1 ms) waiting for the next call to
ring `_bell`, then blocks on the queue: calls in a loop find it awake. The caller's kernel
rings it once it runs, with the interpreter lock released, so the woken worker takes the
lock at once instead of sleeping on it.

A worker starts 30-50 us after it is posted (a wake-up, then the interpreter lock; measured
on the 2-core EPYC this was written on), so a thread that starts late finds fewer parts
left, and the caller never waits for a worker that has not claimed one. What can make two
threads slower than one is a core kept busy by another pool's threads (OpenBLAS's threads
spin for a while after each threaded BLAS call): a worker's claimed part then waits for the
core. A measured choice per call (one thread or several, re-measured now and then) was
tried and dropped: on this VM a thread count used only now and then measures slow (an idle
vCPU wakes slowly), so the choice stuck on one thread where two were 1.3-1.7x faster.
`GRADC_THREADS=1` (runtime/row_threads.py) turns the workers off; it also caps `n`.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

import numpy as np

from runtime.row_threads import thread_limit

# How long the caller's thread spins in the kernel (pause instructions) for a part a worker
# is still running before it yields its core once and spins again: a bound on a wait for a
# worker the OS has descheduled, not a tuning constant (a part is ~10-100 us).
SPINS = 1 << 14
# How long a part worker spins after its parts for the next call to ring `_bell` before it
# returns to the queue: 4096 pauses, about 0.1 ms (a pause is 60-140 cycles, by CPU). A call
# that rings a spinning worker has it running its parts sooner than a woken one (on the 2-core
# EPYC, logreg 10000 x 50 took 111 against 121 us per call, 2000 x 1000 290 against 305 us,
# interleaved in one process); an idle process spins for at most this long after a call.
IDLE_SPINS = 1 << 12
_bell = np.zeros(1, np.int64)  # rung (incremented) by the kernel of each call that posts parts
_parts: queue.SimpleQueue | None = None
_workers = 0
_pid = 0
_lock = threading.Lock()


def run_parts(kernel: Any, args: tuple, zshape: tuple, zdtype: Any, wshape: tuple) -> None:
    """Run a row kernel's parts (`args[-1]` is its part bounds) on the calling thread and up
    to `thread_limit() - 1` part workers (module doc). Returns once the results are joined."""
    ctr = np.zeros(4, np.int64)  # next part to claim, parts done, joined, this call's ring
    parts = len(args[-1]) - 1
    if parts > 1:  # (one part: nothing to share)
        n = min(thread_limit(), parts)
        if n > 1:
            q = _queue(n - 1)
            ctr[3] = _bell[0] + 1  # the kernel rings it, outside the interpreter lock
            for _ in range(n - 1):
                q.put((kernel, args, ctr, zshape, zdtype, wshape))
    zr, wg = np.empty(zshape, zdtype), np.empty(wshape, np.float64)
    try:
        while not kernel(*args, ctr, zr, wg, SPINS, _bell):
            time.sleep(0)  # a worker holds a part and is not running: give it the core
    except BaseException:  # KeyboardInterrupt in the sleep: a worker may still be writing
        while not kernel(*args, ctr, zr, wg, SPINS, _bell):  # into this call's outputs; the
            pass  # caller reuses them once this returns, so wait for the join first
        raise


def _worker(q: queue.SimpleQueue) -> None:
    while True:
        kernel, args, ctr, zshape, zdtype, wshape = q.get()
        try:
            # the scratch is allocated before the kernel claims anything: a part, once
            # claimed, is always finished (the kernel raises nothing)
            zr, wg = np.empty(zshape, zdtype), np.empty(wshape, np.float64)
            kernel(*args, ctr, zr, wg, -IDLE_SPINS, _bell)
        except BaseException:  # noqa: BLE001 - claimed nothing: the caller runs the parts
            pass
        del kernel, args, ctr  # hold no caller's arrays while blocked


def _queue(workers: int) -> queue.SimpleQueue:
    global _parts, _workers, _pid
    with _lock:
        if _parts is None or _pid != os.getpid():  # a forked child starts its own
            _parts, _workers, _pid = queue.SimpleQueue(), 0, os.getpid()
        while _workers < workers:
            threading.Thread(target=_worker, args=(_parts,), name="gradc-rows", daemon=True).start()
            _workers += 1
        return _parts
