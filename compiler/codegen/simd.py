"""SIMD transcendentals in loop kernels, through glibc's libmvec (docs/routing.md, "SIMD").

Numba's loops call scalar libm, so a loop with `math.tanh` in it runs one element at a time.
glibc's libmvec exports vector variants named by the x86 vector-function ABI
(`_ZGVdN4v_tanh`: AVX2, 4 float64 lanes; `_ZGVeN16v_tanhf`: AVX-512, 16 float32 lanes). In
SIMD mode a loop kernel calls `_simd_<level>_<fn>(x)` instead of `math.<fn>(x)`: a Numba
intrinsic that calls the scalar libm function with the call-site attribute
`vector-function-abi-variant` naming the variants (declared in the module and kept alive
through `llvm.compiler.used`), so LLVM's loop vectorizer widens the call to them. A call the
vectorizer leaves scalar (a loop it cannot widen, the loop's tail) stays the libm call.

Modes: "avx512" (variants up to AVX-512, where the CPU has avx512f: elsewhere they raise
SIGILL), "avx2", or "off" (scalar libm). `GRADC_SIMD=0` switches it off, `GRADC_SIMD=avx2`
caps it at AVX2; anywhere without libmvec (not Linux/x86-64 glibc, or a glibc without the
variants) it is off. `setup()` must run before the process's first compile or cache load:
machine code that calls libmvec needs the library loaded to link. The disk cache keeps one
namespace per mode (`cache_mode`), since Numba's cache key does not include the mode.

No LLVM option is set: the llvmlite builds this was written against (LLVM 22) have no
`-vector-library` option at all, and an invalid option value makes LLVM exit the process, so
the intrinsic covers every function, including the ones that option would have widened.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.env import OFF, ON

ENV_VAR = "GRADC_SIMD"
# Bump when the generated calls change: it names the cache namespace (`cache_mode`).
_IMPL = 1

# libm functions with libmvec variants that the loop kernels call, by arity. Each is checked
# against NumPy at 0, -0, denormals, +-inf, NaN and the overflow thresholds in
# tests/codegen/test_simd.py (within 4 ulp; measured ulp in docs/routing.md).
UNARY = (
    "exp", "log", "log1p", "expm1", "tanh", "sin", "cos", "sinh", "cosh", "asin", "acos",
    "atan", "asinh", "acosh", "atanh", "log2", "log10", "erf", "erfc",
)  # fmt: skip
BINARY = ("pow", "atan2", "hypot")

# ISA letter of the x86 vector-function ABI -> register bits; the letters each level offers
_BITS = {"b": 128, "d": 256, "e": 512}
_LEVELS = {"avx2": ("b", "d"), "avx512": ("b", "d", "e")}
_ON = ("", "auto", *ON)  # runtime.env's spellings of on and off
_OFF = OFF


@dataclass(frozen=True)
class Platform:
    """What this host offers: the libmvec to load and the best level the CPU runs."""

    library: str | None  # the file to load (None: no usable libmvec)
    level: str  # "avx512", "avx2", or "off"
    funcs: frozenset[str]  # the functions with every variant of `level` exported
    reason: str  # why it is off, when it is


def _variant(fn: str, isa: str, dtype: np.dtype) -> tuple[int, str]:
    """(lanes, symbol) of `fn`'s unmasked variant for `isa` in `dtype`."""
    f32 = np.dtype(dtype) == np.float32
    lanes = _BITS[isa] // (32 if f32 else 64)
    arity = 2 if fn in BINARY else 1
    return lanes, f"_ZGV{isa}N{lanes}{'v' * arity}_{fn}{'f' if f32 else ''}"


@functools.cache
def cpuinfo() -> tuple[str, frozenset[str]] | None:
    """The CPU's model name and feature flags from the kernel (Linux /proc/cpuinfo), or None
    where there is no such file."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.M)
    return (model.group(1).strip() if model else ""), frozenset(
        flags.group(1).split() if flags else ()
    )


def _cpu_level() -> str:
    """The best level this CPU runs: the kernel's CPU flags (Linux), else LLVM's host view."""
    # /proc/cpuinfo, not llvmlite: importing llvmlite.binding (it loads LLVM) costs 20-40 ms,
    # paid by every first call, since the route pass asks; Numba is not needed until the
    # background compile. The kernel lists a feature only where the OS enabled its register
    # state, as LLVM's check does (tests/codegen/test_simd.py compares the two).
    info = cpuinfo()
    feats = set(info[1]) if info is not None and info[1] else _llvm_features()
    return _level_of(feats)


def _llvm_features() -> set[str]:
    """The features LLVM (what Numba targets) sees on this host."""
    import llvmlite.binding as llvm

    return {k for k, on in llvm.get_host_cpu_features().items() if on}


def _level_of(feats: set[str]) -> str:
    if {"avx512f", "avx2", "fma"} <= feats:
        return "avx512"
    if {"avx2", "fma"} <= feats:
        return "avx2"
    return "off"


@functools.cache
def host() -> Platform:
    """Detect libmvec and the CPU once per process (the platform check)."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return Platform(None, "off", frozenset(), f"not Linux/x86-64 ({sys.platform})")
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        return Platform(None, "off", frozenset(), "not glibc")
    # glibc's soname first: find_library runs `ldconfig -p` in a subprocess (2-17 ms of
    # every first call, since the route pass asks)
    try:
        name = "libmvec.so.1"
        lib = ctypes.CDLL(name)
    except OSError:
        name = ctypes.util.find_library("mvec")
        if name is None:
            return Platform(None, "off", frozenset(), "no libmvec")
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            return Platform(None, "off", frozenset(), f"libmvec does not load: {e}")
    level = _cpu_level()
    if level == "off":
        return Platform(None, "off", frozenset(), "CPU without AVX2/FMA")
    isas = _LEVELS[level]
    funcs = frozenset(
        fn
        for fn in UNARY + BINARY
        if all(
            hasattr(lib, _variant(fn, isa, dt)[1])
            for isa in isas
            for dt in (np.float32, np.float64)
        )
    )
    if not funcs:
        return Platform(None, "off", frozenset(), "libmvec without the variants (glibc < 2.35)")
    return Platform(name, level, funcs, "")


def mode() -> str:
    """The SIMD mode now: "avx512", "avx2" or "off" (`GRADC_SIMD` and the platform check)."""
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env in _OFF:
        return "off"
    if env not in _ON and env not in _LEVELS:
        raise ValueError(
            f"{ENV_VAR}={os.environ[ENV_VAR]!r}: expected 0 (off), 1 (the best this host "
            "runs), avx2 or avx512"
        )
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return "off"  # kernels run as plain Python, where an intrinsic cannot be called
    best = host().level
    if best == "off" or env != "avx2":
        return best  # avx512 asked of an AVX2-only host gets what it runs: AVX2
    return "avx2"


_setup_lock = threading.Lock()
_loaded = False


def setup() -> str:
    """Make this process ready for the current mode, before Numba compiles or loads gradc code
    (libmvec loaded for the JIT linker); return the mode. Cheap after the first call."""
    global _loaded
    m = mode()
    if m != "off" and not _loaded:
        with _setup_lock:
            if not _loaded:
                import llvmlite.binding as llvm

                llvm.load_library_permanently(host().library)
                _loaded = True
    return m


def cache_mode(m: str | None = None) -> str:
    """The disk-cache namespace of mode `m` (default: now): "numba" when off."""
    m = mode() if m is None else m
    return "numba" if m == "off" else f"numba-libmvec{_IMPL}-{m}"


# -- rendering --------------------------------------------------------------------------------

_CALL = re.compile(r"\bmath\.([a-z0-9]+)\(")
_POW = "({0} ** {1})"


def call_names(template: str) -> list[str]:
    """The libm functions `template` calls (`x ** y` is pow)."""
    calls = _CALL.findall(template)
    return calls + ["pow"] if _POW in template else calls


def vectorizes(template: str, dtype: np.dtype, m: str | None = None) -> bool:
    """Whether a loop computing `template` in `dtype` calls only SIMD variants in mode `m`
    (default: now), and calls at least one (what `route` keeps in loops)."""
    m = mode() if m is None else m
    if m == "off" or np.dtype(dtype) not in (np.float32, np.float64):
        return False
    names = call_names(template)
    return bool(names) and all(fn in host().funcs for fn in names)


def render(template: str, dtype: np.dtype, m: str | None = None) -> tuple[str, list[str]]:
    """`template` with each libm call that has SIMD variants in mode `m` (default: now)
    replaced by its intrinsic, and the module lines that bind those intrinsics."""
    m = mode() if m is None else m
    if m == "off" or np.dtype(dtype) not in (np.float32, np.float64):
        return template, []
    funcs = host().funcs
    if "pow" in funcs:
        template = template.replace(_POW, "math.pow({0}, {1})")
    used: list[str] = []

    def sub(mt: re.Match) -> str:
        fn = mt.group(1)
        if fn not in funcs:
            return mt.group(0)
        if fn not in used:
            used.append(fn)
        return f"_simd_{m}_{fn}("

    out = _CALL.sub(sub, template)
    lines = [f'_simd_{m}_{fn} = _simd_fn("{fn}", "{m}")' for fn in used]
    if lines:
        lines.insert(0, "from compiler.codegen.simd import intrinsic as _simd_fn")
    return out, lines


@functools.cache
def intrinsic(fn: str, m: str) -> Any:
    """The Numba intrinsic `fn(x[, y])` for mode `m`: the scalar libm call, widened by LLVM's
    loop vectorizer to the libmvec variants of `m` (see the module doc)."""
    from compiler.codegen.simd_ir import make_intrinsic

    if fn not in host().funcs or m not in _LEVELS:
        raise ValueError(f"no SIMD variant of {fn!r} in mode {m!r} on this host")
    isas = _LEVELS[m]
    variants = {
        dt: [_variant(fn, isa, dt) for isa in isas] for dt in (np.dtype("f4"), np.dtype("f8"))
    }
    return make_intrinsic(fn, 2 if fn in BINARY else 1, variants)
