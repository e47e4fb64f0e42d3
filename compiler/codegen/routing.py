"""Which routable ops run as library calls on this host: the `route` pass's decisions.

`current_routing()` returns a `Routing`: the set of (op, dtype) pairs among the routable ops
(`calibrate.candidates`) that run as NumPy ufunc calls instead of inside fused loops.
`GRADC_ROUTE` picks where the decisions come from:

- `auto` (default): the host's calibration (`calibrate.py`) when this process has it or finds
  it on disk (its ties, where neither side is clearly faster, go as the prior says); until
  then the prior (below), and the calibration is queued on the background compile thread
  when the caller compiles with Numba (never on the caller's path, never with
  `compile="never"`), so later compiles use it;
- `calibrated`: the calibration, measured on the caller when none is stored (tests,
  benchmarks: the calibrated routing from the first call);
- `table`: the prior: the op records' `library` dtypes (measured on one host, docs/routing.md),
  and with SIMD on every op whose loop code vectorizes stays in the loop, except pow (the rule
  that held before calibration existed);
- `loop`: every routable op in loops; `library`: every routable op as a library call.

The decisions name the ops, not how they were reached, so `Routing.key` (which the stage cache
keys on, compiler/pipeline.py) is the same for a calibration and a table that agree.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from dataclasses import dataclass

import numpy as np

from compiler.codegen import calibrate, simd
from compiler.ir.graph import Node
from compiler.passes.route import wants_library
from compiler.primitives import OPS

log = logging.getLogger("gradc")

ENV_VAR = "GRADC_ROUTE"
MODES = ("auto", "calibrated", "table", "loop", "library")


@dataclass(frozen=True)
class Routing:
    """The (op, dtype name) pairs that run as library calls, and where that came from."""

    source: str  # "calibrated", "table", "loop" or "library"
    library: frozenset[tuple[str, str]]

    @property
    def key(self) -> str:
        """A digest of the decisions (the stage cache's key includes it)."""
        text = ";".join(f"{op}:{dt}" for op, dt in sorted(self.library))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def prefers(self, n: Node) -> bool:
        """Whether node `n` runs as a library call (ops outside the routable set: as their
        record says)."""
        if n.op in _candidate_set():
            return (n.op, np.dtype(n.out.dtype).name) in self.library
        return wants_library(n)


_lock = threading.Lock()
_memo: dict[str, calibrate.Calibration | None] = {}  # by key digest: loaded or measured
_queued: set[str] = set()
_wanted: set[str] = set()  # SIMD modes whose missing calibration is to be queued


@functools.cache
def _candidate_set() -> frozenset[str]:
    return frozenset(calibrate.candidates())


def route_mode() -> str:
    """`GRADC_ROUTE`, checked: one of MODES (unset: auto)."""
    value = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV_VAR}={os.environ[ENV_VAR]!r}: choose one of {', '.join(MODES)}")
    return value


# The rule before calibration: libmvec's pow measured far slower than NumPy's own SIMD kernel
# on an AVX-512 host (f64 37-55 ms vs 23 ms, f32 9-26 ms vs 3 ms per 2**22; docs/routing.md),
# so an op that calls it kept its record's routing; the calibration now measures it per host.
_ROUTE_AS_RECORDED = frozenset({"pow"})


def _vectorized(op: str, dtype: str, mode: str) -> bool:
    template = OPS[op].codegen.template
    if _ROUTE_AS_RECORDED.intersection(simd.call_names(template)):
        return False
    return simd.vectorizes(template, np.dtype(dtype), mode)


def prior(mode: str | None = None) -> Routing:
    """The decisions without a calibration (`table`): the records, and with SIMD mode `mode`
    (default: now) on, vectorized ops (but pow) in loops."""
    mode = simd.mode() if mode is None else mode
    return Routing(
        "table",
        frozenset(
            (op, dt)
            for op in _candidate_set()
            for dt in calibrate.DTYPES
            if OPS[op].prefers_library(np.dtype(dt)) and not _vectorized(op, dt, mode)
        ),
    )


def _digest(k: dict[str, str]) -> str:
    return calibrate.path_for(k).stem


def calibration(mode: str, *, measure: bool = False) -> calibrate.Calibration | None:
    """This host's calibration for SIMD mode `mode`: remembered, stored, or (`measure`)
    measured now and stored; None when there is none yet."""
    k = calibrate.key(mode)
    d = _digest(k)
    with _lock:
        if _memo.get(d) is not None:
            return _memo[d]
    cal = calibrate.load(k)
    if cal is None and measure:
        cal = calibrate.measure(mode)
        calibrate.store(cal)
        log.info("routing calibration measured in %.2f s:\n%s", cal.seconds, calibrate.table(cal))
    if cal is not None:
        with _lock:
            _memo[d] = cal
    return cal


def _queue(mode: str) -> None:
    """Measure the calibration on the background compile thread, once per process and key."""
    from runtime import background

    d = _digest(calibrate.key(mode))
    with _lock:
        if d in _queued:
            return
        _queued.add(d)

    def build(_sample: tuple):
        calibration(mode, measure=True)
        return lambda *a: None

    background.submit(
        background.Job("routing calibration", build, (), lambda fn: None, lambda err: None)
    )


def queue_wanted() -> None:
    """Queue the calibrations `current_routing(background=True)` found missing. The pipeline
    calls it from a stage's background compile (so the calibration runs after that stage's
    compile, not before it) or, compiling eagerly, right after the compile."""
    with _lock:
        modes = sorted(_wanted)
        _wanted.clear()
    for mode in modes:
        _queue(mode)


def current_routing(*, background: bool = False) -> Routing:
    """The routing now (`GRADC_ROUTE`, module doc). `background`: the caller compiles with
    Numba, so a missing calibration is wanted on the background thread (auto; `queue_wanted`
    queues it)."""
    route = route_mode()
    if route == "loop":
        return Routing("loop", frozenset())
    if route == "library":
        pairs = frozenset((op, dt) for op in _candidate_set() for dt in calibrate.DTYPES)
        return Routing("library", pairs)
    mode = simd.mode()
    if route == "table":
        return prior(mode)
    cal = calibration(mode, measure=route == "calibrated")
    if cal is not None:
        return Routing("calibrated", cal.library(prior(mode).library))
    if background:
        with _lock:
            _wanted.add(mode)
    return prior(mode)


def forget() -> None:
    """Drop what this process remembers (tests: a new cache folder, an injected file)."""
    with _lock:
        _memo.clear()
        _queued.clear()
        _wanted.clear()
