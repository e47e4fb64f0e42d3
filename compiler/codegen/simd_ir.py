"""The LLVM side of `simd`: a Numba intrinsic that calls scalar libm and names its vector
variants for LLVM's loop vectorizer. Imported only when a kernel that uses one compiles."""

from __future__ import annotations

from typing import Any

import llvmlite
import numpy as np
from llvmlite import ir
from llvmlite.ir.instructions import CallInstrAttributes
from numba.core import types
from numba.extending import intrinsic

_ATTR = "vector-function-abi-variant"


class _CallAttrs(CallInstrAttributes):
    """Call-site attributes that also take LLVM string attributes (`"key"="value"`), which
    llvmlite's fixed list of known attributes refuses."""

    def add(self, name: str) -> None:
        set.add(self, name)


def _ptr_to(fn: ir.Function) -> ir.Constant:
    if getattr(llvmlite, "ir_layer_typed_pointers_enabled", True):
        return fn.bitcast(ir.IntType(8).as_pointer())
    return fn  # opaque pointers: a function is already a `ptr`


def _keep_alive(module: ir.Module, fns: list[ir.Function]) -> None:
    """Add `fns` to the module's `llvm.compiler.used`: otherwise the optimizer drops the unused
    variant declarations before the loop vectorizer looks for them."""
    gv = module.globals.get("llvm.compiler.used")
    old = list(gv.initializer.constant) if gv is not None else []
    have = {getattr(c, "name", None) for c in old}
    have |= {getattr(getattr(c, "operands", [None])[0], "name", None) for c in old}
    vals = old + [_ptr_to(f) for f in fns if f.name not in have]
    if gv is not None and len(vals) == len(old):
        return
    ptr = vals[0].type
    arr = ir.ArrayType(ptr, len(vals))
    if gv is None:
        gv = ir.GlobalVariable(module, arr, "llvm.compiler.used")
        gv.linkage = "appending"
        gv.section = "llvm.metadata"
    gv.value_type = arr  # the array grows as more intrinsics lower into this module
    gv.initializer = ir.Constant(arr, vals)


def _declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, fnty, name)


def make_intrinsic(fn: str, arity: int, variants: dict[np.dtype, list[tuple[int, str]]]) -> Any:
    """A Numba intrinsic computing libm `fn` on `arity` float arguments (ints convert to
    float64, mixed floats to the wider one, as `math.<fn>` does), whose calls LLVM widens to
    `variants[dtype]`, a list of (lanes, libmvec symbol)."""

    def typer(typingctx, *args):
        if len(args) != arity or not all(isinstance(a, (types.Float, types.Integer)) for a in args):
            return None
        f32 = all(a == types.float32 for a in args)
        res = types.float32 if f32 else types.float64
        sig = res(*args)

        def codegen(context, builder, sig, llargs):
            dtype = np.dtype("f4") if f32 else np.dtype("f8")
            ft = ir.FloatType() if f32 else ir.DoubleType()
            vals = [context.cast(builder, v, t, res) for v, t in zip(llargs, sig.args)]
            module = builder.module
            scalar = _declare(module, fn + ("f" if f32 else ""), ir.FunctionType(ft, [ft] * arity))
            decls, names = [], []
            for lanes, sym in variants[dtype]:
                vt = ir.VectorType(ft, lanes)
                decls.append(_declare(module, sym, ir.FunctionType(vt, [vt] * arity)))
                names.append(f"_ZGV_LLVM_N{lanes}{'v' * arity}_{scalar.name}({sym})")
            _keep_alive(module, decls)
            call = builder.call(scalar, vals)
            # readnone: the vectorizer widens only calls that touch no memory (libm's errno is
            # not observable from a kernel, as for Numba's own math calls)
            call.attributes = _CallAttrs(["nounwind", "readnone", f'"{_ATTR}"="{",".join(names)}"'])
            return call

        return sig, codegen

    if arity == 1:

        def unary(typingctx, x):
            return typer(typingctx, x)

        unary.__name__ = unary.__qualname__ = f"simd_{fn}"
        return intrinsic(unary)

    def binary(typingctx, x, y):
        return typer(typingctx, x, y)

    binary.__name__ = binary.__qualname__ = f"simd_{fn}"
    return intrinsic(binary)
