"""The per-host routing calibration: a compiled loop against NumPy's ufunc, measured once.

For each routable op (`candidates`: an elementwise op with a libm call in its loop template and
a NumPy ufunc as its reference) and each float dtype, `measure` times one loop
`o[i] = f(a[i])`, rendered from the op's template exactly as a loop kernel renders it (same
`@numba.njit` flags, SIMD intrinsics in the current SIMD mode), against `np.f(a, out=o)`, on
`SIZE` elements of the op's own sample values (its record's `samples`, so every op gets inputs
in its domain). One module holds one njit function per dtype whose first argument selects the
op: two compiles per host, cached by Numba like every kernel.

The rule: routing an op out of its fused loop saves the loop's time for it and costs the
ufunc's, plus the pass over memory the split adds (the value written out and read back: ~2 ms
per 2**22 float64 on the host of docs/routing.md), where `pass` is measured too (an
out-of-cache copy, per element of the dtype). The verdict is "library" when
`loop > MARGIN * (ufunc + pass)`, "loop" when `ufunc + pass > MARGIN * loop`, and a tie (None)
in between, where the measurement is within the run-to-run noise of a shared host and the
prior decides (the op records' table and the SIMD rule, routing.py). The same rule holds with
SIMD on and off: with libmvec the loop is within a fraction of a nanosecond of the ufunc, so
those ops are ties or loops, while pow's slow variant (or a CPU whose NumPy kernels are far
ahead) is a clear library call.

Noise: each timing is a block of calls long enough (`BLOCK_S`) for the timer, after a warm-up
call; each repeat times every (op, dtype) once, loop block then ufunc block, so a burst of load
spoils one repeat of a few pairs rather than every repeat of one. Each side's time is its
fastest block over `REPEATS` repeats: other processes only ever add time to a block (on a
shared 2-core machine at load 5, the median of 9 paired repeats still flipped tanh and power
in SIMD mode, while the fastest block was steady across runs, docs/routing.md).

The result is a JSON file under the gradc cache folder, named by a digest of its key (`key`:
the CPU model and flags, the SIMD mode, Python, NumPy, Numba and llvmlite versions, gradc's
build id, and the measurement's own parameters), which it also holds: a file whose key is not
this process's (another host's, another build's) or that does not parse is ignored with a
warning, and the next calibration writes over it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler.codegen import simd
from compiler.codegen.source import FASTMATH, NJIT, ctor
from compiler.primitives import OPS, Kind
from compiler.primitives.registry import ScalarExpr
from runtime.cache import _write_atomic, cache_root
from runtime.version import VERSION, build_id, dist_version

log = logging.getLogger("gradc")

FORMAT = 1  # bump when the file's layout or the measurement's meaning changes
DTYPES = ("float64", "float32")
SIZE = 1 << 16  # elements: in L2 on common hosts, so the op's compute is what is compared
REPEATS = 15
BLOCK_S = 2e-4  # each timed block runs at least this long: short, so few are preempted
PASS_SIZE = 1 << 22  # float64 elements copied to time a pass over memory: 32 MiB, past L3
# a verdict needs one side MARGIN times faster (see the module doc): single timings on a shared
# 2-core host move by 10-20% between runs, and by up to 2x under sustained load
MARGIN = 1.25

_LIBM = re.compile(r"\bmath\.[a-z0-9]+\(|\*\*")


@functools.cache
def candidates() -> tuple[str, ...]:
    """The routable ops: elementwise, a NumPy ufunc as reference, a libm call in the loop."""
    return tuple(
        sorted(
            name
            for name, d in OPS.items()
            if d.kind is Kind.ELEMENTWISE
            and isinstance(d.codegen, ScalarExpr)
            and isinstance(d.impl, np.ufunc)
            and _LIBM.search(d.codegen.template)
        )
    )


@dataclass(frozen=True)
class Entry:
    """One (op, dtype) measured: per-element times (ns, fastest block), the loop/ufunc ratio,
    the pass over memory, and the verdict: True (library), False (loop), None (a tie)."""

    op: str
    dtype: str
    loop_ns: float
    ufunc_ns: float
    ratio: float
    pass_ns: float  # the pass over memory a split adds, per element of `dtype`
    library: bool | None


@dataclass(frozen=True)
class Calibration:
    """A host's measurements under one key."""

    key: dict[str, str]
    entries: tuple[Entry, ...]
    seconds: float  # how long the measurement took (compile included)

    def library(self, prior: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        """The (op, dtype) pairs that run as library calls: the clear verdicts, and for ties
        what `prior` (the pairs the prior routes out) says."""
        return frozenset(
            (e.op, e.dtype)
            for e in self.entries
            if e.library or (e.library is None and (e.op, e.dtype) in prior)
        )


def _version(dist: str) -> str:
    return dist_version(dist) or "absent"


def _cpu() -> tuple[str, str]:
    """The CPU's model name and a digest of its feature flags (Linux: /proc/cpuinfo)."""
    info = simd.cpuinfo()
    if info is None:
        return platform.processor() or platform.machine() or "unknown", ""
    model, flags = info
    feats = " ".join(sorted(flags))
    return model or platform.processor() or "unknown", hashlib.sha256(feats.encode()).hexdigest()[
        :16
    ]


def key(mode: str) -> dict[str, str]:
    """What a calibration's answer depends on, for SIMD mode `mode`."""
    cpu, flags = _cpu()
    return {
        "format": str(FORMAT),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_flags": flags,
        "numba_cpu_name": os.environ.get("NUMBA_CPU_NAME", ""),
        "simd": mode,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": _version("numba"),
        "llvmlite": _version("llvmlite"),
        "gradc": VERSION,
        "build": build_id(),
        "size": str(SIZE),
        "margin": str(MARGIN),
        "ops": ",".join(candidates()),
    }


def path_for(k: dict[str, str]) -> Path:
    """The file of the calibration keyed `k` (named so that `gradc cache clear` removes it)."""
    digest = hashlib.sha256(json.dumps(k, sort_keys=True).encode()).hexdigest()[:24]
    return cache_root() / "routing" / f"calibration{FORMAT}" / f"calibration_{digest}.json"


def load(k: dict[str, str]) -> Calibration | None:
    """The stored calibration keyed `k`, or None: absent, or unusable (warns, see the doc)."""
    path = path_for(k)
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        data = json.loads(text)
        if data.get("key") != k:
            raise ValueError("its key is another host's or another build's")
        entries = tuple(Entry(**e) for e in data["entries"])
        want = {(op, dt) for op in candidates() for dt in DTYPES}
        if {(e.op, e.dtype) for e in entries} != want or not all(
            e.library in (True, False, None) and e.dtype in DTYPES for e in entries
        ):
            raise ValueError("its entries are not one per routable op and dtype")
        return Calibration(k, entries, float(data["seconds"]))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        log.warning("routing calibration %s ignored (%s); it is measured again", path, err)
        return None


def store(cal: Calibration) -> bool:
    """Write `cal` (atomically); False when the cache folder is not writable."""
    path = path_for(cal.key)
    data = {"key": cal.key, "entries": [asdict(e) for e in cal.entries], "seconds": cal.seconds}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, (json.dumps(data, indent=1) + "\n").encode())
    except OSError as err:
        log.debug("routing calibration not stored (%s: %s)", type(err).__name__, err)
        return False
    return True


# -- measuring --------------------------------------------------------------------------------


def source(ops: tuple[str, ...], mode: str) -> str:
    """The module: `calibrate_<dtype>(sel, a0, a1, o0)` runs op `ops[sel]`'s loop."""
    head = ["import math", "", "import numba", "import numpy as np", "", f"_FASTMATH = {FASTMATH}"]
    funcs: list[str] = []
    for dt in DTYPES:
        funcs += ["", NJIT, f"def calibrate_{dt}(sel, a0, a1, o0):", "    n0 = o0.shape[0]"]
        for k, op in enumerate(ops):
            # rendered as loops.py renders a kernel's statement (SIMD intrinsics included)
            tmpl, lines = simd.render(OPS[op].codegen.template, np.dtype(dt), mode)
            head += [ln for ln in lines if ln not in head]
            expr = tmpl.format("a0[i0]", "a1[i0]", T=ctor(np.dtype(dt)))
            funcs += [
                f"    {'if' if k == 0 else 'elif'} sel == {k}:",
                "        for i0 in range(n0):",
                f"            o0[i0] = {expr}",
            ]
    return "\n".join(head + funcs) + "\n"


def _inputs(op: str, dtype: np.dtype, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`size` values for each operand from the op record's first array sample (its domain)."""
    rng = np.random.default_rng(0)
    for s in OPS[op].samples(rng):
        if all(np.ndim(a) >= 1 for a in s.args):
            args = [np.resize(np.asarray(a, dtype).ravel(), size) for a in s.args]
            return args[0], args[-1]
    raise ValueError(f"calibration: op {op} has no array sample to measure on")


def _block(call: Any, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        call()
    return time.perf_counter() - t0


@dataclass
class _Pair:
    """One (op, dtype)'s two calls, their block lengths, and the samples taken so far."""

    op: str
    dtype: str
    loop: Any
    ufunc: Any
    pass_ns: float
    reps: tuple[int, int] = (1, 1)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (loop, ufunc) ns/elem

    def warm_up(self) -> None:
        self.loop(), self.ufunc()  # the loop's compile happened on the dtype's first call
        t_l = max(_block(self.loop, 1), 1e-7)
        t_u = max(_block(self.ufunc, 1), 1e-7)
        self.reps = (max(1, int(BLOCK_S / t_l)), max(1, int(BLOCK_S / t_u)))

    def sample(self, size: int) -> None:
        ns = 1e9 / size
        a = _block(self.loop, self.reps[0]) / self.reps[0] * ns
        b = _block(self.ufunc, self.reps[1]) / self.reps[1] * ns
        self.samples.append((a, b))

    def entry(self) -> Entry:
        """The fastest block of each side, and the verdict on them (see the module doc)."""
        loop = min(a for a, _ in self.samples)
        uf = min(b for _, b in self.samples)
        cost = uf + self.pass_ns  # of running it as a library call
        lib = True if loop > MARGIN * cost else False if cost > MARGIN * loop else None
        nums = (round(x, 3) for x in (loop, uf, loop / uf, self.pass_ns))
        return Entry(self.op, self.dtype, *nums, lib)


def pass_ns_per_byte(repeats: int = 5) -> float:
    """What one pass over memory costs per byte: an out-of-cache copy (fastest of `repeats`)."""
    a = np.ones(PASS_SIZE)
    b = np.empty_like(a)
    np.copyto(b, a)  # touches the pages
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        times.append(time.perf_counter() - t0)
    return min(times) * 1e9 / a.nbytes


def measure(mode: str, size: int = SIZE, repeats: int = REPEATS) -> Calibration:
    """Measure every routable op in both dtypes in SIMD mode `mode` (compiles two functions)."""
    from runtime.cache import load_module

    t0 = time.perf_counter()
    if simd.setup() != mode:
        raise RuntimeError(f"calibration: SIMD mode is {simd.mode()}, not {mode}")
    ops = candidates()
    module = load_module(source(ops, mode), prefix="calib", mode=simd.cache_mode(mode))
    per_byte = pass_ns_per_byte()
    pairs = []
    for dt in DTYPES:
        fn = getattr(module, f"calibrate_{dt}")
        o = np.empty(size, dt)
        for k, op in enumerate(ops):
            a0, a1 = _inputs(op, np.dtype(dt), size)
            uf = OPS[op].impl
            args = (a0, a1) if uf.nin == 2 else (a0,)
            loop = functools.partial(fn, k, a0, a1, o)
            ufunc = functools.partial(uf, *args, out=o)
            pairs.append(_Pair(op, dt, loop, ufunc, per_byte * o.itemsize))
    for p in pairs:  # the first call of each dtype's function compiles it
        p.warm_up()
    # each repeat visits every pair, so a burst of load on a shared machine spoils one
    # repeat of several pairs (whose other blocks hold the minimum), not every repeat of one
    for _ in range(repeats):
        for p in pairs:
            p.sample(size)
    entries = tuple(p.entry() for p in pairs)
    return Calibration(key(mode), entries, round(time.perf_counter() - t0, 3))


def table(cal: Calibration) -> str:
    """`cal` as a text table (for docs and logs)."""
    rows = [
        f"{'op':<9} {'dtype':<8} {'loop ns':>8} {'ufunc ns':>9} {'ratio':>6} {'pass ns':>8}  route"
    ]
    for e in sorted(cal.entries, key=lambda e: (e.dtype, e.op)):
        rows.append(
            f"{e.op:<9} {e.dtype:<8} {e.loop_ns:>8.2f} {e.ufunc_ns:>9.2f} {e.ratio:>6.2f} "
            f"{e.pass_ns:>8.2f}  "
            f"{ {True: 'library', False: 'loop', None: 'tie'}[e.library] }"
        )
    return "\n".join(rows)
