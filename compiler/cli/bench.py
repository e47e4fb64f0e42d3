"""`gradc bench`: first-call (trace + compile) time, per-call time and peak memory per backend."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from compiler.cli.stages import transform
from compiler.cli.target import Target
from compiler.logging_setup import slow

CACHE_ENV = "GRADC_CACHE_DIR"


@dataclass
class BenchResult:
    name: str
    first_s: float  # the first call: trace, passes, codegen, compile
    call_s: float  # median of the later calls
    calls: int
    peak_bytes: int  # tracemalloc peak during one call
    error: str | None = None


@contextlib.contextmanager
def _cold_cache(cold: bool) -> Iterator[None]:
    """Point the disk cache at an empty temporary folder, so the first call compiles."""
    if not cold:
        yield
        return
    old = os.environ.get(CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="gradc-bench-") as tmp:
        os.environ[CACHE_ENV] = tmp
        try:
            from runtime.cache import clear_memory_cache

            clear_memory_cache()
        except ImportError:
            pass
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = old


def _caller(
    target: Target, mode: str, backend: str, disable: Sequence[str], compile: str = "eager"
) -> Callable[[], object]:
    t = transform(target, mode, disable, backend, compile=compile)
    args = target.args
    if mode != "vjp":
        return lambda: t(*args)

    def fwd_bwd() -> object:
        out, pullback = t(*args)
        return pullback(np.ones_like(out) if np.ndim(out) else 1.0)

    return fwd_bwd


def measure(fn: Callable[[], object], budget_s: float, max_calls: int) -> tuple[float, int, int]:
    """(median seconds per call, calls timed, tracemalloc peak bytes of one call)."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_calls and (len(times) < 5 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return statistics.median(times), len(times), peak


def bench(
    target: Target,
    mode: str = "value_and_grad",
    backends: Sequence[str] = ("numba", "interpret"),
    disable: Sequence[str] = (),
    budget_s: float = 1.0,
    max_calls: int = 10_000,
    cold: bool = True,
    compile: str = "eager",
) -> list[BenchResult]:
    """Benchmark each backend (plus NumPy's own forward run as a reference)."""
    results = []
    for backend in backends:
        try:
            with _cold_cache(cold and backend == "numba"):
                fn = _caller(target, mode, backend, disable, compile)
                t0 = time.perf_counter()
                with slow(f"bench: first call on {backend} (trace + compile)"):
                    fn()
                first = time.perf_counter() - t0
                med, n, peak = measure(fn, budget_s, max_calls)
            results.append(BenchResult(backend, first, med, n, peak))
        except ImportError as exc:
            results.append(BenchResult(backend, 0, 0, 0, 0, error=f"unavailable ({exc})"))
    fwd = target.fun
    args = target.args
    med, n, peak = measure(lambda: fwd(*args), budget_s, max_calls)
    results.append(BenchResult("numpy forward", 0.0, med, n, peak))
    return results


def _time(s: float) -> str:
    if s >= 1.0:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} us"


def _mib(b: int) -> str:
    return f"{b / 2**20:.3f} MiB"


def format_results(results: list[BenchResult]) -> str:
    """A table: one row per backend."""
    head = f"{'':<16}{'first call':>14}{'per call (median)':>20}{'calls':>8}{'peak memory':>14}"
    lines = [head]
    for r in results:
        if r.error:
            lines.append(f"{r.name:<16}  {r.error}")
            continue
        first = _time(r.first_s) if r.first_s else "-"
        lines.append(
            f"{r.name:<16}{first:>14}{_time(r.call_s):>20}{r.calls:>8}{_mib(r.peak_bytes):>14}"
        )
    lines.append(
        "first call = trace + passes + codegen + compile (numba: with an empty disk "
        "cache); peak memory = tracemalloc peak of one call (NumPy and Python "
        "allocations)"
    )
    return "\n".join(lines)
