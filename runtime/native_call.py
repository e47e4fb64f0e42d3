"""The native scalar call: the scalar call path (runtime/scalar_call.py) as machine code,
installed as the C `tp_call` of the transformation's own class (docs/tiers.md).

The generated Python `__call__` of an all-float signature costs ~0.4 us, of which the float
arithmetic is a few nanoseconds: CPython's `slot_tp_call` (finding `__call__` on the class and
calling it, ~70 ns), the frame with its `*rest, **kwargs` parameters, the guard's bytecodes and
`np.float64(value)` take the rest. The native call does the same work in one C function: the
caller's `vg(p)` reaches it straight from `_PyObject_MakeTpCall`, it checks the arguments by
type pointer and size, reads each float's `ob_fval`, runs the lowered graph's float ops
(compiler/codegen/llscalar.py emits the LLVM IR), and builds the result with the C API (the
value through `np.float64`'s own `tp_alloc`, as NumPy's `PyArray_Scalar` makes it). Every other
call -- another structure, another type, keywords, a trace being active, a value or result that
is not finite -- calls the Python scalar `__call__` with the original arguments, which answers
it or hands it to the general path.

This module is the plumbing: the layout facts the IR is built on, decided and checked at run
time (`facts()`: None on a debug, free-threaded or unknown build, or where a probe disagrees);
the compile (llvmlite's MCJIT, under Numba's compiler lock, since LLVM's global context is not
thread-safe); the check against the Python path; and the install (one store into `tp_call`).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import operator
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.background import Job, submit
from runtime.env import switch

log = logging.getLogger("gradc")

ENV_VAR = "GRADC_NATIVE_CALL"  # "0": keep the Python scalar call path
TP_CALL = 16  # PyTypeObject's tp_call, in pointer-sized words (checked in `_type_slots_ok`)
TP_ALLOC = 38
_API = ("PyFloat_FromDouble", "PyTuple_New", "PyObject_Call", "Py_IncRef", "Py_DecRef")


@dataclass(frozen=True)
class Facts:
    """Object layout and addresses the IR is built on, all checked in this process."""

    type_off: int  # ob_type
    size_off: int  # ob_size of a variable-size object
    fval_off: int  # PyFloatObject.ob_fval (np.float64's obval too)
    items_off: int  # PyTupleObject.ob_item[0]; PyListObject.ob_item (the pointer)
    float_type: int
    tuple_type: int
    list_type: int
    none: int
    zero: int  # the cached small int 0
    f64_type: int
    f64_alloc: int  # np.float64's tp_alloc
    api: dict[str, int] = field(default_factory=dict)  # C API function addresses
    libm: Callable[[str], int] | None = None  # libm function name -> address


def enabled() -> bool:
    """False when GRADC_NATIVE_CALL is off (runtime/env.py's spellings); on by default."""
    return switch(ENV_VAR, True)


@functools.cache
def facts() -> Facts | None:
    """This process's layout facts, or None (logged) when the native call must not be used."""
    try:
        reason = _refusal()
        if reason is None:
            return _facts()
    except Exception as err:  # any probe that cannot even run: no native call
        reason = f"{type(err).__name__}: {err}"
    log.info("native scalar call off: %s", reason)
    return None


def _refusal() -> str | None:
    import sysconfig  # here, not at import: ~1.6 ms

    if sys.implementation.name != "cpython" or not sys.platform.startswith("linux"):
        return f"{sys.implementation.name} on {sys.platform}"
    if hasattr(sys, "gettotalrefcount"):
        return "a debug build of CPython"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "a free-threaded build of CPython"
    if sys.maxsize != 2**63 - 1 or sys.byteorder != "little" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return "not a 64-bit little-endian build"
    sizes = (object.__basicsize__, float.__basicsize__, tuple.__basicsize__, tuple.__itemsize__)
    if sizes != (16, 24, 24, 8) or list.__basicsize__ != 40 or np.float64.__basicsize__ != 24:
        return f"unexpected object sizes {sizes}"
    return None


def _word(addr: int) -> int:
    return ctypes.c_ssize_t.from_address(addr).value


def _slots(t: type) -> Any:
    return (ctypes.c_ssize_t * (TP_ALLOC + 2)).from_address(id(t))


def _type_slots_ok(t: type) -> bool:
    """PyTypeObject's fields where this module counts them: the ones Python also shows."""
    s = _slots(t)
    base = id(t.__base__) if t.__base__ is not None else 0
    return (s[1], s[4], s[5], s[21], s[26], s[32], s[36]) == (
        id(type(t)),
        t.__basicsize__,
        t.__itemsize__,
        t.__flags__,
        t.__weakrefoffset__,
        base,
        t.__dictoffset__,
    )


def _facts() -> Facts | None:
    x, y = float("1.5"), float("-2.25")  # fresh objects, not constants, alive while read
    pair, single, scalar = (x, y), [y], np.float64(x)
    probes = [
        _word(id(x) + 8) == id(float),
        ctypes.c_double.from_address(id(x) + 16).value == 1.5,
        _word(id(pair) + 8) == id(tuple) and _word(id(pair) + 16) == 2,
        (_word(id(pair) + 24), _word(id(pair) + 32)) == (id(x), id(y)),
        _word(id(single) + 8) == id(list) and _word(id(single) + 16) == 1,
        _word(_word(id(single) + 24)) == id(y),
        ctypes.c_double.from_address(id(scalar) + 16).value == 1.5,
        operator.is_(int("0"), 0),  # the small-int cache, which the tracing check relies on
    ]
    if not all(probes):
        raise RuntimeError(f"layout probes failed: {probes}")

    class Callable_:
        def __call__(self) -> None: ...

    class Plain: ...

    types = (float, tuple, list, np.float64, Callable_, Plain)
    if not all(_type_slots_ok(t) for t in types):
        raise RuntimeError("PyTypeObject's fields are not where expected")
    if _slots(Callable_)[TP_CALL] == 0 or _slots(Plain)[TP_CALL] != 0:
        raise RuntimeError("tp_call is not where expected")
    api = {n: ctypes.cast(getattr(ctypes.pythonapi, n), ctypes.c_void_p).value for n in _API}
    f = Facts(8, 16, 16, 24, id(float), id(tuple), id(list), id(None), id(0), id(np.float64),
              _slots(np.float64)[TP_ALLOC], api, _libm)  # fmt: skip
    # np.float64 made as the native call makes it: its tp_alloc, then the value stored
    alloc = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object, ctypes.c_ssize_t)(f.f64_alloc)
    made = alloc(np.float64, 0)
    ctypes.c_double.from_address(id(made) + f.fval_off).value = -0.75
    if type(made) is not np.float64 or made != np.float64(-0.75) or made + 1 != 0.25:
        raise RuntimeError("np.float64 made by its tp_alloc is not np.float64(value)")
    return f


@functools.cache
def _libm_lib() -> ctypes.CDLL:
    import ctypes.util  # here, not at import: ~16 ms (it imports subprocess and shutil)

    return ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")


def _libm(name: str) -> int:
    return ctypes.cast(getattr(_libm_lib(), name), ctypes.c_void_p).value


class NativeCall:
    """A compiled call: keeps its machine code and every object its IR points at alive."""

    def __init__(self, engine: Any, address: int, keep: Sequence[Any], source: str) -> None:
        self.engine, self.address, self.keep, self.source = engine, address, tuple(keep), source
        sig = ctypes.PYFUNCTYPE(
            ctypes.py_object, ctypes.py_object, ctypes.py_object, ctypes.c_void_p
        )
        self._probe = sig(address)

    def __call__(self, obj: Any, args: tuple) -> Any:
        """Run the machine code as `tp_call(obj, args, NULL)` (tests, the check)."""
        return self._probe(obj, args, None)


_compile_lock = threading.Lock()


def compile_ir(text: str, name: str, keep: Sequence[Any]) -> NativeCall:
    """LLVM IR `text` compiled to machine code; `name` is its tp_call function."""
    import llvmlite.binding as llvm

    from runtime.numba_import import import_numba

    import_numba()  # Numba owns LLVM's setup in this process, and its compiler lock
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock, _compile_lock:
        llvm.initialize_native_target()  # idempotent; Numba's codegen does it too
        llvm.initialize_native_asmprinter()
        mod = llvm.parse_assembly(text)
        mod.verify()
        target = llvm.Target.from_default_triple().create_target_machine(opt=2)
        engine = llvm.create_mcjit_compiler(mod, target)
        engine.finalize_object()
        address = engine.get_function_address(name)
    return NativeCall(engine, address, keep, text)


def same(a: Any, b: Any) -> bool:
    """The same result: the same types all through and the same float bits (NaN equal)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (float, np.floating)):
        x, y = float(a), float(b)
        return (math.isnan(x) and math.isnan(y)) or (
            x == y and math.copysign(1, x) == math.copysign(1, y)
        )
    return bool(a == b)


def install(cls: type, native: NativeCall) -> None:
    """Make `native` the `tp_call` of `cls`, whose `__call__` is the Python scalar call."""
    slots = _slots(cls)
    if slots[TP_CALL] != _slots(cls.__base__)[TP_CALL] or not _type_slots_ok(cls):
        raise RuntimeError(f"{cls.__name__}'s tp_call is not the inherited slot_tp_call")
    type.__setattr__(cls, "_native", native)  # the class keeps the machine code alive
    slots[TP_CALL] = native.address  # one aligned store: a call in flight ends where it began


def schedule(
    name: str,
    cls: type,
    build: Callable[[], NativeCall | None],
    check: Callable[[NativeCall], None],
    eager: bool,
) -> None:
    """Build `cls`'s native call and install it once `check` passed: now when `eager`, else as
    a job of the background compiler, while the Python scalar call answers. `build` returns
    None for a graph it has no native form of: the Python scalar call stays, quietly."""

    def built(_: tuple) -> Callable[[], NativeCall | None]:
        native = build()
        if native is not None:
            check(native)
        return lambda: native  # the job's warm-up call: nothing left to warm

    def ready(warm: Callable[[], NativeCall | None]) -> None:
        native = warm()
        if native is None:
            return
        try:
            install(cls, native)
        except Exception as err:  # never into the compile thread
            log.warning("native call of %s not installed (%s: %s)", name, type(err).__name__, err)

    if not eager:
        submit(Job(f"native call of {name}", built, (), ready, lambda err: None, "scalar call"))
        return
    try:
        ready(built(()))
    except Exception as err:  # the Python scalar call stays
        log.warning("native call of %s not built (%s: %s)", name, type(err).__name__, err)
