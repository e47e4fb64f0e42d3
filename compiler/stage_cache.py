"""The compiled-stages cache: a warm process traces, then skips the rest of the pipeline.

`cached_stages(traced, what, options, keep, build)` is the pipeline's one hook. Its key is
the sha256 of

- the traced graph, exactly (`compiler.ir.digest.exact_digest`: every constant's bytes, every
  float exactly, source locations);
- `what` the pipeline makes of it: the transformation, the differentiated inputs, and the
  routing decisions (`Routing.key`, compiler/codegen/routing.py: a calibration that lands
  later never loads stages lowered under another routing);
- the options the stages depend on (`disable`, `memory`, `memory_budget`), and the GRADC_*
  environment (but the log, cache folder and compile mode) and NUMBA_DISABLE_JIT, so a mode
  chosen by the environment never reads stages another mode made;
- the build: gradc's version, every source file of `compiler/` and `runtime/` (path, size,
  modification time: an edited checkout never reuses stages its old code made), NumPy's
  version and Python's.

A hit unpickles the `Stages` (with the garbage collector paused: unpickling makes many small
objects, and a collection in the middle costs more than the load). A miss runs `build` (also
with the collector paused: the passes allocate much and free by reference counting) and
stores the result: at once, or, for a tiered stage, on the background compile thread before
its compile (`defer`, so a cold first call does not pickle and write). A process whose
registries changed since import (`pristine`) compiles without the cache. Stages that do not
pickle (a custom rule's Python function inside) and traced graphs without an exact digest
are simply not cached. `keep` (gradc ir's pass dumps)
bypasses the cache, since it must see every pass run. GRADC_STAGE_CACHE=0 switches it off.

Each lowered graph of cached stages carries `key` (the entry's key and its stage), under
which codegen keeps the module text it renders (`compiler/codegen/rendered.py`); the module
cache (`runtime/cache.py`, with each module's bytecode) and Numba's own cache load the
compiled kernels: nothing compiles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Iterator
from typing import Any

from compiler.ir.digest import exact_digest
from compiler.ir.graph import OUT_TYPES_RULES, SHAPE_RULES, Graph
from compiler.passes import PASSES
from compiler.primitives import OPS
from compiler.stages import CachedStages
from runtime.artifacts import load_artifact, store_artifact
from runtime.env import switch
from runtime.version import build_id

log = logging.getLogger("gradc")

ENV_VAR = "GRADC_STAGE_CACHE"
# GRADC_* variables that cannot change what the passes decide (every other one is in the key:
# a mode chosen by the environment, say a code-generation mode, may change the routing)
_ENV_IGNORED = frozenset(
    {
        "GRADC_LOG",
        "GRADC_CACHE_DIR",
        "GRADC_STAGE_CACHE",
        "GRADC_COMPILE",
        "GRADC_COMPILE_IN",
        "GRADC_COMPILE_SHARE",
        "GRADC_GC_FREEZE",
        "GRADC_NATIVE_CALL",
        "GRADC_THREADS",  # read at each call (runtime/row_threads.py, row_parts.py)
    }
)


# The registries as the import left them. The key names the code by its files, not the
# objects in memory: a process that replaced an op record, a pass or a shape rule since (a
# test's monkeypatch, a user's plugin) compiles without the cache, so it never reads stages
# the real code made, nor stores stages its own code made.
_REGISTRIES = (OPS, PASSES, SHAPE_RULES, OUT_TYPES_RULES)
_AS_IMPORTED = tuple(dict(r) for r in _REGISTRIES)


def pristine() -> bool:
    """Whether every registry still holds exactly what the import registered."""
    for now, then in zip(_REGISTRIES, _AS_IMPORTED):
        if len(now) != len(then) or any(then.get(k) is not v for k, v in now.items()):
            return False
    return True


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (on again after, if it was on)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def enabled() -> bool:
    """Whether the cache is on: GRADC_STAGE_CACHE unset, or on (runtime.env.switch)."""
    return switch(ENV_VAR, True)


def stage_key(traced: Graph, what: tuple, options: Any) -> str | None:
    """The cache key (module doc), or None when the traced graph has no exact digest."""
    digest = exact_digest(traced)
    if digest is None:
        return None
    opts = (tuple(options.disable), options.memory, options.memory_budget)
    env = sorted(
        (k, v)
        for k, v in os.environ.items()
        if (k.startswith("GRADC_") and k not in _ENV_IGNORED) or k == "NUMBA_DISABLE_JIT"
    )
    text = f"{build_id()}|{digest}|{what!r}|{opts!r}|{env!r}"
    return hashlib.sha256(text.encode()).hexdigest()


def cached_stages(
    traced: Graph,
    what: tuple,
    options: Any,
    keep: Any,
    build: Callable[[], Any],
    defer: Callable[[Callable[[], None]], None] | None = None,
) -> Any:
    """The pipeline's stages for `traced`: from the cache, or `build()` (then stored).

    `defer(store)`, when given, runs the store later instead of now (the pipeline hands it
    to the background compile thread, after the first call: pickling and writing the stages
    was 1-30 ms of a cold first call, for later processes only)."""
    if keep is not None or not enabled() or not pristine():
        return build()
    key = stage_key(traced, what, options)
    if key is None:
        with gc_paused():
            return build()
    data = load_artifact(key)
    if data is not None:
        try:
            with gc_paused():
                lowered, n_residuals, cold = pickle.loads(data)
        except Exception as err:  # written by this build, so only a damaged file gets here
            log.warning("stage cache: entry %s unreadable (%s); rebuilding", key[:24], err)
        else:
            log.info("stage cache: %s stages loaded (%d bytes)", what[0], len(data))
            return CachedStages.make(traced, _keyed(lowered, key), n_residuals, cold)
    with gc_paused():
        stages = build()

    def store() -> bool:
        try:  # the traced graph is the caller's: not stored
            cold = pickle.dumps(
                (stages.grad, stages.passes, stages.plan), protocol=pickle.HIGHEST_PROTOCOL
            )
            hot = (stages.lowered, stages.n_residuals, cold)
            payload = pickle.dumps(hot, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as err:
            log.debug("stage cache: %s stages not picklable (%s); not stored", what[0], err)
            return False
        store_artifact(key, payload)  # False (an unwritable folder) is not the stages' fault
        return True

    if defer is not None:
        # the store's outcome is not known yet: the lowered graphs are keyed regardless (a
        # render kept under a key whose stages were never stored is still that graph's)
        defer(store)
    else:
        with gc_paused():
            if not store():
                return stages
    return dataclasses.replace(stages, lowered=_keyed(stages.lowered, key))


def _keyed(lowered: tuple, key: str) -> tuple:
    # each lowered graph is named by the key and its stage, so what codegen renders from it
    # is cached too (compiler/codegen/rendered.py): the key determines the graph exactly
    return tuple(dataclasses.replace(low, key=f"{key}:{low.name}") for low in lowered)


__all__ = ["ENV_VAR", "build_id", "cached_stages", "enabled", "gc_paused", "stage_key"]
