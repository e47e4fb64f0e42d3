"""Which transformations get the native scalar call, and its build (docs/tiers.md).

`attach` is called once per transformation, for the signature that got the Python scalar call
(runtime/scalar_call.py): where the arguments are Python floats or flat tuples/lists of them
and the result a np.float64 value with Python-float gradients in leaves or flat tuples, it
schedules the LLVM IR of compiler/codegen/llscalar.py to be compiled and installed as the
class's `tp_call` (runtime/native_call.py), checked first against the Python call on the
first call's arguments. Everything else keeps the Python scalar call alone.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree

from compiler.ir.graph import Graph
from runtime.native_call import NativeCall, compile_ir, enabled, facts, same, schedule


def attach(
    owner: Any,
    py_call: Callable[..., Any],
    graph: Graph,
    args: tuple,
    leaves: Sequence[Any],
    layout: Any,
    has_aux: bool,
    tracing: list[int],
    compile: str,
) -> bool:
    """Schedule the native call for `type(owner)`, whose `__call__` is `py_call` (the Python
    scalar call of this signature, made for `owner` alone): a background job, or now when
    `compile` is "eager". False when the signature is outside what it covers, `compile` is
    "never" or GRADC_NATIVE_CALL=0; the build itself installs nothing where the graph has an
    op without a native form or the process's layout facts do not hold."""
    if compile == "never" or not enabled():
        return False
    mode = owner.mode
    name = f"{mode}({getattr(owner.fun, '__name__', 'function')})"
    params = _params(args, leaves, graph)
    result = _result(graph, layout, mode, has_aux)
    if params is None or result is None:
        return False

    def miss(obj: Any, a: tuple, kwargs: dict | None) -> Any:
        return py_call(obj, *a, **kwargs) if kwargs else py_call(obj, *a)

    def build() -> NativeCall | None:
        # imported here, off the caller's first call: llvmlite.ir costs ~8 ms to import
        from compiler.codegen.llscalar import NAME, emit, lowerable

        f = facts()  # probed once per process, here rather than on the caller's first call
        if f is None or not lowerable(graph):
            return None
        text = emit(graph, params, result, f, id(miss), id(tracing))
        return compile_ir(text, NAME, (miss, tracing, py_call))

    ref = weakref.ref(owner)  # the job must not keep the transformation alive

    def check(native: NativeCall) -> None:
        # the first call's arguments once more, on both paths: the same result, bit for bit
        obj = ref()
        if obj is None:
            raise RuntimeError("the transformation is gone")
        got, want = native(obj, args), py_call(obj, *args)
        if not same(got, want):
            raise RuntimeError(f"native call gave {got!r} where the scalar call gave {want!r}")

    schedule(name, type(owner), build, check, compile == "eager")
    return True


def _params(args: tuple, leaves: Sequence[Any], graph: Graph) -> list[tuple] | None:
    """("float",) or (tuple|list, n) per argument, when every leaf is a Python float."""
    out: list[tuple] = []
    for a in args:
        if type(a) is float:
            out.append(("float",))
        elif type(a) in (tuple, list) and all(type(x) is float for x in a):
            out.append((type(a), len(a)))
        else:
            return None
    n = sum(1 if p[0] == "float" else p[1] for p in out)
    if n != len(leaves) or n != len(graph.inputs) or not all(type(x) is float for x in leaves):
        return None
    return out


def _result(graph: Graph, layout: Any, mode: str, has_aux: bool) -> tuple | None:
    """How the general path's result is made of the graph's outputs (llscalar's Spec), where
    it is a np.float64 value and Python-float gradients in leaves or flat tuples; else None."""
    if has_aux or not all(np.dtype(v.dtype) == np.float64 for v in graph.outputs):
        return None
    if not (layout.out_tree.is_leaf() and layout.n_out == 1):
        return None
    primal = ("f64", 0)
    if mode == "jit":
        return primal if len(graph.outputs) == 1 else None
    if any(k != "float" for k in layout.grad_kinds):
        return None
    if len(graph.outputs) - 1 != sum(t.num_leaves for t in layout.grad_trees):
        return None
    parts: list[tuple] = []
    pos = 1
    for tree in layout.grad_trees:
        idx = list(range(pos, pos + tree.num_leaves))
        pos += tree.num_leaves
        if tree.is_leaf():
            parts.append(("float", idx[0]))
        elif tree.kind == optree.PyTreeKind.TUPLE and tree.num_nodes == tree.num_leaves + 1:
            parts.append(("tuple", [("float", i) for i in idx]))
        else:
            return None
    grads = parts[0] if layout.single else ("tuple", parts)
    if mode == "grad":
        return grads
    return ("tuple", [primal, grads]) if mode == "value_and_grad" else None
