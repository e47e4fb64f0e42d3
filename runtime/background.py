"""The background compiler: one daemon thread that builds compiled stages while their callers
run on the NumPy tier (docs/tiers.md).

A `Job` builds a stage's compiled callable (generate, load through the disk cache, which is
where Numba is first imported) and calls it once on a copy of the first call's inputs, so
every kernel the stage calls is compiled before the stage switches to it. Jobs run one at a
time, in submission order: on two cores a second compiling thread would take the caller's
core. A job that fails (a Numba error, a full disk, anything it raises) leaves its stage on
the NumPy tier and logs one warning naming the stage and the reason; no result is lost,
since the caller never waited for it.

`GRADC_LOG=info` logs each job's start and end with what it compiled and how long it took.
The thread keeps out of the caller's way (runtime/yielding.py): it freezes long-lived objects
out of full garbage collections and yields the interpreter lock after contended compiler
passes.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime import yielding

log = logging.getLogger("gradc")

# While a job runs, the caller's thread waits at most this long for the interpreter lock each
# time it wants it back from the compiling thread (Python's default is 5 ms, which made a
# 50 us call take up to 5 ms; docs/tiers.md has the measurement).
SWITCH_INTERVAL_S = 0.0005


@dataclass
class Job:
    """Build `name`'s compiled stage (`build(sample)`), warm it up on `sample`, then
    `ready(fn)` or `failed(err)`. A callable `sample` is called here, in the job, for the
    tuple (zeros are made off the caller's thread: runtime/tier.py `zeros_sample`)."""

    name: str
    build: Callable[[tuple], Callable[..., Any]]
    sample: tuple | Callable[[], tuple]
    ready: Callable[[Callable[..., Any]], None]
    failed: Callable[[BaseException], None]
    detail: str = ""  # what it compiles, for the log (e.g. "14 nodes")


_queue: queue.SimpleQueue[Job | Callable[[], None]] = queue.SimpleQueue()
_lock = threading.Lock()
_worker_pid = 0  # the process whose compile thread is running (0: none; a fork has none)
_idle = threading.Condition(_lock)
_pending = 0
_stats = {"submitted": 0, "compiled": 0, "failed": 0}
yielder: Any = None  # the compile thread's Numba pass listener (runtime/yielding.py), if any


_later: list[Callable[[], None]] = []


def before_next_job(task: Callable[[], None]) -> None:
    """Run `task` on the background thread just before the next job submitted: work the
    caller's answer does not need (the stage cache's store for later processes), kept off
    its first call. A task that raises is logged and dropped."""
    with _lock:
        _later.append(task)


def submit(job: Job) -> None:
    """Queue `job` for the background thread (started on first use), after the tasks
    `before_next_job` holds."""
    global _worker_pid, _pending
    with _lock:
        tasks, _later[:] = list(_later), []
        _pending += 1 + len(tasks)
        _stats["submitted"] += 1
        if _worker_pid != os.getpid():
            _worker_pid = os.getpid()
            # `_thread`, not `threading.Thread.start()`, which blocks until the OS has run
            # the new thread: 0.4 ms on an idle machine, 5-20 ms on a loaded one, and the
            # caller is in its first call. The thread names itself and, like a daemon
            # thread, does not hold up the interpreter's exit.
            _thread.start_new_thread(_run_forever, ())
    for task in tasks:
        _queue.put(task)
    _queue.put(job)


def wait_idle(timeout: float | None = None) -> bool:
    """Block until every submitted job has ended (or `timeout`); True when none is left."""
    with _idle:
        return _idle.wait_for(lambda: _pending == 0, timeout)


def stats() -> dict[str, int]:
    """Jobs submitted, compiled and failed in this process, and how many are still pending."""
    with _lock:
        return {**_stats, "pending": _pending}


def _prepare() -> None:
    """Once per thread: settle the program's heap, import Numba, make its passes yield, and
    settle Numba's own objects."""
    global yielder
    try:
        share = yielding.compile_share()
        yielding.settle_heap()
        yielder = yielding.yield_to_caller(threading.get_ident(), share)
        yielding.settle_heap()
    except Exception as err:  # never fatal: a job that needs what failed says so itself
        log.warning("background compiler: %s: %s", type(err).__name__, err)


def _run_forever() -> None:
    global _pending, _worker_pid
    threading.current_thread().name = "gradc-compile"
    prepared = False
    while True:
        job = _queue.get()
        if not prepared:
            # Only now, not at thread start: a full collection (it never releases the
            # interpreter lock: 9 ms in a bare process, 130 ms with JAX's objects) right
            # after `Thread.start()` was its caller's wait, in the middle of its first call.
            # Now the job has been queued and the caller is returning from that call.
            prepared = True
            with _short_switch():
                _prepare()
        try:
            if isinstance(job, Job):
                _run(job)
                yielding.settle_heap()  # the job's garbage collected, Numba's new caches frozen
            else:
                _run_task(job)
        except BaseException:  # a job re-raised it (SystemExit, ...): this thread ends
            with _lock:  # before the count drops, so a submit that sees none pending
                _worker_pid = 0  # also sees no thread, and starts one
            raise
        finally:
            with _idle:
                _pending -= 1
                _idle.notify_all()


def _run_task(task: Callable[[], None]) -> None:
    try:
        task()
    except Exception as err:  # a cache store that failed: later processes rebuild
        log.warning("background task %r failed (%s: %s)", task, type(err).__name__, err)


@contextlib.contextmanager
def _short_switch() -> Iterator[None]:
    """The interpreter's switch interval at most `SWITCH_INTERVAL_S` for the block."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(min(old, SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _run(job: Job) -> None:
    log.info("background compile of %s: started%s", job.name, f" ({job.detail})" * bool(job.detail))
    t0 = time.perf_counter()
    with _short_switch():
        _build_and_warm(job, t0)


def _build_and_warm(job: Job, t0: float) -> None:
    try:
        sample = job.sample() if callable(job.sample) else job.sample
        fn = job.build(sample)
        t_build = time.perf_counter() - t0
        # compiles every kernel the stage calls, for these argument types; NumPy's warnings
        # off (thread-local): the caller already saw its own, and a zeros sample's 0/0 is noise
        with np.errstate(all="ignore"):
            fn(*sample)
    except BaseException as err:  # the caller stays on the NumPy tier, whatever happened
        with _lock:
            _stats["failed"] += 1
        log.warning(
            "background compile of %s failed (%s: %s); it keeps running on the NumPy tier",
            job.name,
            type(err).__name__,
            err,
        )
        job.failed(err)
        if not isinstance(err, Exception):
            raise
        return
    total = time.perf_counter() - t0
    with _lock:
        _stats["compiled"] += 1
    log.info(
        "background compile of %s: ready in %.2f s (%s; codegen and load %.2f s, kernels "
        "%.2f s); switching from the NumPy tier",
        job.name,
        total,
        _describe(fn),
        t_build,
        total - t_build,
    )
    job.ready(fn)


def _describe(fn: Any) -> str:
    module = getattr(fn, "module", None)
    kind = getattr(fn, "driver_kind", "compiled")
    kernels = getattr(fn, "kernel_count", "?")
    where = f", module {module.__name__}" if module is not None else ""
    return f"{kind} driver, {kernels} njit functions{where}"
