"""How the background compile thread keeps out of its caller's way (docs/tiers.md).

Two costs of a compile in the caller's process are not the compile's CPU time:

- **Full garbage collections.** Numba's import and its first compile leave ~150,000 long-lived
  objects; a full collection over them held the interpreter lock for 30-130 ms, the only calls
  over 50 ms in `benchmarks/tiers.py stalls`. `settle_heap` collects (so nothing unreachable is
  kept) and then freezes what survived (`gc.freeze`), so later full collections walk only the
  objects made since. The compile thread settles when its first job arrives (not at thread
  start, which made `Thread.start()`'s caller wait for the collection), after Numba's import
  and after each job. `GRADC_GC_FREEZE=0` turns it off.
- **The interpreter lock.** Numba's compiler is mostly Python, so the compile thread and a
  Python-bound caller alternated on the lock and the caller ran at half speed. `yield_to_caller`
  registers a Numba event listener that, at compiler pass boundaries on the compile thread,
  looks at how much CPU the process's other threads used over the last `WINDOW_S` or more: at
  least 20% of the wall time means the caller is working (Python, or NumPy and BLAS threads),
  and the compile thread sleeps until its own CPU time over the window and the sleep is
  `share` of the wall time, so the caller keeps about `1 - share`. Numba's own import is
  paced the same way, before each module it imports. Alone (or next to other processes,
  whom sleeping would not help) the compile runs at full speed.
  `GRADC_COMPILE_SHARE` sets the share (1 turns yielding off).
"""

from __future__ import annotations

import gc
import importlib.abc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from runtime.env import switch

GC_FREEZE_ENV_VAR = "GRADC_GC_FREEZE"
SHARE_ENV_VAR = "GRADC_COMPILE_SHARE"
DEFAULT_SHARE = 0.15
BUSY_ABOVE = 0.2  # the other threads' CPU over a window's wall time that counts as working
WINDOW_S = 0.002  # how much wall time the compile thread looks back on at a pass boundary


def settle_heap() -> bool:
    """Collect, then freeze the survivors out of later full collections; False (and nothing
    done) when GRADC_GC_FREEZE is 0/false/no/off."""
    if not switch(GC_FREEZE_ENV_VAR, True):
        return False
    gc.collect()  # nothing unreachable may be frozen: it would never be freed
    gc.freeze()
    return True


def compile_share() -> float:
    """GRADC_COMPILE_SHARE as a number in (0, 1], DEFAULT_SHARE when unset; a ValueError
    naming the variable when it is not one."""
    raw = os.environ.get(SHARE_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_SHARE
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0.0 < share <= 1.0:
        raise ValueError(f"{SHARE_ENV_VAR}={raw!r}: expected a number in (0, 1], e.g. 0.15")
    return share


def pause_for(wall: float, own_cpu: float, others_cpu: float, share: float) -> float:
    """Seconds to sleep after a window of `wall` seconds with `own_cpu` of this thread's
    CPU while the process's other threads used `others_cpu`: 0 when they were idle, else
    enough that this thread's CPU is `share` of the window and the sleep together."""
    if share >= 1.0 or wall <= 0.0 or others_cpu < BUSY_ABOVE * wall:
        return 0.0
    return max(0.0, own_cpu / share - wall)


def clocks() -> tuple[float, float, float]:
    """Wall time, this thread's CPU time, the whole process's CPU time."""
    return time.perf_counter(), time.thread_time(), time.process_time()


class Pacer:
    """Sleeps `thread_id` at the points it is asked to `look`, once `WINDOW_S` has passed since
    the last look, when the process's other threads were busy meanwhile (`pause_for`)."""

    def __init__(self, thread_id: int, share: float) -> None:
        self.thread_id = thread_id
        self.share = share  # read at every look: a benchmark may change it
        self.slept = 0.0
        self.looks = 0  # on the paced thread
        self.close: Callable[[], None] = lambda: None  # unregisters the Numba listener
        self._mark()

    def _mark(self) -> None:
        self.wall0, self.own0, self.all0 = clocks()

    def look(self) -> None:
        """A point where the paced thread may sleep (a no-op on any other thread)."""
        if threading.get_ident() != self.thread_id:
            return
        self.looks += 1
        wall, own, every = clocks()
        if wall - self.wall0 < WINDOW_S:
            return
        own -= self.own0
        pause = pause_for(wall - self.wall0, own, every - self.all0 - own, self.share)
        if pause:
            time.sleep(pause)
            self.slept += pause
        self._mark()


class _PacedImports(importlib.abc.MetaPathFinder):
    """A finder that finds nothing: it only lets the pacer look before each import."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        self.pacer.look()
        return None


def yield_to_caller(thread_id: int, share: float) -> Pacer | None:
    """Import Numba pacing `thread_id` between modules, then register a Numba listener that
    paces it at every compiler pass boundary and compile; returns the pacer, or None (and
    Numba imported without pacing) when `share` is 1."""
    from runtime.numba_import import import_numba

    if share >= 1.0:
        import_numba()
        return None
    pacer = Pacer(thread_id, share)
    finder = _PacedImports(pacer)
    sys.meta_path.insert(0, finder)
    try:
        import_numba()
    finally:
        sys.meta_path.remove(finder)
    from numba.core import event

    class _PassYield(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            pacer.look()

        def on_end(self, ev: event.Event) -> None:
            pacer.look()

    listener = _PassYield()
    kinds = ("numba:run_pass", "numba:compile")
    for kind in kinds:
        event.register(kind, listener)

    def close() -> None:
        for kind in kinds:
            event.unregister(kind, listener)

    pacer.close = close
    return pacer
