"""Numba's cached machine code for a module's njit functions, loaded before their first call.

Numba loads a `cache=True` function's machine code on its first call, from inside that call.
For a stage that is inside the generated driver, whose frame holds one local per buffer (the
100-step integrator's: ~900), and CPython 3.11 keeps frames in 16 KiB chunks that it maps
when a call needs one and unmaps when the call returns: Numba's first load, a deep and loopy
call tree, then crossed a chunk boundary ~29,000 times in that process (29,000 mmap/munmap
pairs, 27,000 page faults, 0.3-0.5 s of system time; `strace -c -e trace=memory`), where the
same load under a smaller driver crossed it a few hundred times. `load_cached` makes the load
happen where the module is bound instead (compiler/codegen/compile.py), and `load_all` runs
it on a new thread, whose frame stack starts empty: where the chunk boundaries fall then
depends neither on the graph nor on how deep in the user's program the first call is (the
same load thrashed or not as the caller's stack was 0 or 3 frames deeper). The caller waits
for it (a compiled stage needs its kernels), so it costs only the thread's start.

Only what Numba's own index lists for this process is loaded: an index entry whose key (the
signature, this CPU and Numba's codegen, the function's bytecode) is the key Numba would look
up, so the load is a cache hit by construction and nothing compiles. Anything unexpected
(an index Numba cannot read, internals that moved) loads nothing: the first call then loads
as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("gradc")


def _cached(dispatcher: Any) -> bool:
    return getattr(getattr(dispatcher, "_cache", None), "_cache_file", None) is not None


def load_cached(dispatcher: Any) -> int:
    """Load every overload of njit function `dispatcher` that Numba's disk cache holds for
    this process, compiling nothing; return how many were loaded."""
    if not _cached(dispatcher):  # no disk cache (NUMBA_DISABLE_JIT: a plain function)
        return 0
    cache = dispatcher._cache
    index = cache._cache_file
    try:
        codegen = dispatcher.targetctx.codegen()
        sigs = [key[0] for key in index._load_index() if key == cache._index_key(key[0], codegen)]
        loaded = 0
        for sig in sigs:
            if tuple(sig) not in dispatcher.overloads:
                dispatcher.compile(sig)  # a cache hit: the index holds this very key
                loaded += 1
        return loaded
    except Exception as err:  # the first call loads (or compiles) as it always did
        log.debug("preload of %s skipped (%s: %s)", dispatcher, type(err).__name__, err)
        return 0


def load_all(dispatchers: Sequence[Any]) -> int:
    """`load_cached` each of `dispatchers` on a new thread (module doc), waiting for it;
    return how many overloads were loaded."""
    dispatchers = [d for d in dispatchers if _cached(d)]
    if not dispatchers:  # (NUMBA_DISABLE_JIT: plain functions; no thread for nothing)
        return 0
    loaded = [0]

    def run() -> None:
        loaded[0] = sum(load_cached(d) for d in dispatchers)

    thread = threading.Thread(target=run, name="gradc-load", daemon=True)
    thread.start()
    thread.join()
    return loaded[0]


__all__ = ["load_all", "load_cached"]
