"""Atomic counters for kernels that several threads run at once (the row kernel's parts).

A threaded row kernel (rowloop.py) is called once per thread with the same counter array
`ctr` (int64): each call claims parts with `atomic_add(ctr, 0, 1)` until none are left,
counts each finished part with `atomic_add(ctr, 1, 1)`, and the thread that finishes the last
part joins the parts' partial results and sets `ctr[2]`. Numba has no atomics of its own, and
a plain load of `ctr[2]` in a loop may be hoisted out of it by LLVM, so these intrinsics emit
LLVM's atomic instructions: `atomicrmw add` and `load atomic` (sequentially consistent and
acquire), which also order the parts' plain stores before the count that publishes them.
`pause` is the x86 spin-wait hint (nothing elsewhere).

Generated kernel modules import them by name (rowloop.py `_ATOMICS`; this module imports
Numba, so nothing else imports it):
Numba's disk cache stores the intrinsics' machine code with the kernel, like simd.py's.
"""

from __future__ import annotations

import platform
from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _item(context: Any, builder: Any, aryty: Any, ary: Any, idx: Any) -> Any:
    arr = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, arr, [idx])


def _int64_array(arr: Any) -> None:
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        raise TypeError(f"atomics: expected a 1-d int64 array, got {arr}")


@intrinsic
def atomic_add(typingctx: Any, arr: Any, idx: Any, val: Any) -> Any:
    """`arr[idx] += val` atomically; returns the value before the add."""
    _int64_array(arr)
    sig = types.int64(arr, types.intp, types.int64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ptr = _item(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx: Any, arr: Any, idx: Any) -> Any:
    """`arr[idx]`, loaded atomically with acquire ordering (never hoisted out of a loop)."""
    _int64_array(arr)
    sig = types.int64(arr, types.intp)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ptr = _item(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def pause(typingctx: Any) -> Any:
    """The spin-wait hint (`pause` on x86; nothing elsewhere)."""
    sig = types.void()

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        if _X86:
            fnty = ir.FunctionType(ir.VoidType(), [])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen
