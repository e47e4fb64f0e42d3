"""The Tracer: a NumPy-like box around an IR Value, bound to one trace context.

Tracers are mutable boxes so that in-place NumPy code can be functionalized: `x += y`
rebinds the box to a new Value. A tracer made by a view op (basic slicing, reshape,
transpose) remembers its base: writing to it writes back into the base, and reading it
after the base changed re-derives it, as NumPy's aliasing would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from compiler.ir.graph import Builder, Const, Value
from compiler.ir.types import TensorType
from compiler.primitives import OPS
from compiler.trace import layout

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY_DIR = os.path.dirname(np.__file__)
# gradc's own files that hold user-level code (the CLI's built-in examples)
_USER_FILES = (os.path.join(_PKG_DIR, "examples.py"),)


class TracerError(TypeError):
    """A traced value was used where a concrete value is needed."""


# code object -> whether its frames are gradc's or NumPy's (every traced node asks: a warm
# process's 100-step trace walked ~5 frames per node with three prefix tests each)
_INTERNAL: dict[Any, bool] = {}


def _internal(code: Any) -> bool:
    fn = code.co_filename
    internal = fn.startswith(_PKG_DIR) and fn not in _USER_FILES
    _INTERNAL[code] = out = internal or fn.startswith(_NUMPY_DIR) or fn.startswith("<frozen")
    return out


def user_location() -> str | None:
    """`file:line` of the innermost stack frame outside gradc and NumPy."""
    f = sys._getframe(1)
    while f is not None:
        code = f.f_code
        internal = _INTERNAL.get(code)
        if not (_internal(code) if internal is None else internal):
            return f"{code.co_filename}:{f.f_lineno}"
        f = f.f_back
    return None


class TraceContext:
    """One tracing session: a Builder, plus values captured from enclosing traces."""

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth  # nesting level: inner traces (grad of grad) are deeper
        self.builder = Builder()
        self.loc: str | None = None  # when set, nodes get this location (autodiff rules)
        self.captured: list[tuple[Tracer, Value]] = []  # (outer tracer, our input Value)
        self.notes: list[str] = []  # choices made while tracing (jacobian's mode), for dumps
        self._captured_ids: dict[int, Value] = {}
        # random draws (trace/draws.py), in program order: (Draw, its input Value or None)
        self.draws: list[tuple[Any, Value | None]] = []

    def draw_input(self, draw: Any) -> Value | None:
        """A graph input that each call fills by making `draw` (None: an event, no value)."""
        v = None if draw.type is None else self.builder.add_input(draw.type)
        self.draws.append((draw, v))
        return v

    def emit(self, op: str, inputs: Sequence[Value], attrs: dict | None = None) -> Value:
        return self.builder.add(op, inputs, attrs, loc=self.loc or user_location())

    def bind_hook(self, name: str, args: tuple, attrs: dict) -> Tracer:
        """Receive `registry.bind` calls: lift operands and emit the op."""
        vals = [self.lift(a).value for a in args]
        return Tracer(self, self.emit(name, vals, attrs))

    def lift(self, x: Any, dtype: Any = None) -> Tracer:
        """A tracer for x: ours as is, an outer trace's as a captured input, else a constant."""
        if isinstance(x, Tracer):
            if x._ctx is self:
                return x
            key = id(x)
            if key not in self._captured_ids:  # a value from an enclosing trace (closures)
                v = self.builder.add_input(x.value.type)
                self._captured_ids[key] = v
                self.captured.append((x, v))
            return Tracer(self, self._captured_ids[key], weak=x.weak, scalar=x.scalar)
        if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
            dt = np.dtype(dtype) if dtype is not None else np.result_type(x)
            return Tracer(self, self.const(np.asarray(x, dtype=dt)), weak=True, scalar=True)
        if isinstance(x, (list, tuple)) and _holds_tracer(x):
            # a Python list of traced values where an array is expected: NumPy would make
            # it an array, and so does gradc (a stack)
            from compiler.trace.creation import array_from

            return self.lift(array_from(x, dtype, copy=False, op="a list used as an array"))
        if isinstance(x, (np.ndarray, np.generic, list, tuple)):
            arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
            if arr.dtype == object:
                raise TracerError(
                    "cannot trace a list that mixes traced and plain values; "
                    "use np.stack on the traced arrays"
                )
            proxy = layout.like(arr) if arr.ndim >= 2 else None
            return Tracer(self, self.const(arr), layout=proxy, scalar=isinstance(x, np.generic))
        raise TracerError(f"gradc cannot use a {type(x).__name__} as an array operand")

    def const(self, arr: np.ndarray) -> Value:
        if arr.ndim > 0 and arr.size > 1 and np.all(arr == arr.flat[0]) and arr.dtype != object:
            # a uniform array is stored as a fill, not as data
            return self.emit(
                "full", [], {"shape": arr.shape, "dtype": arr.dtype, "fill": arr.flat[0].item()}
            )
        return self.emit("const", [], {"value": Const(arr)})


class Tracer:
    """Stands in for an ndarray while a function is traced."""

    __array_priority__ = 1000
    __hash__ = None  # like ndarray: `==` is elementwise

    def __init__(
        self,
        ctx: TraceContext,
        value: Value,
        *,
        weak: bool = False,
        base: Tracer | None = None,
        view_fwd: Callable | None = None,
        view_bwd: Callable | None = None,
        layout: np.ndarray | None = None,
        scalar: bool = False,
    ) -> None:
        self._ctx = ctx
        self._value = value
        self.weak = weak  # from a Python scalar: promotes like one (NEP 50)
        # a NumPy (or Python) scalar, not a 0-d array: immutable, so `t += 1` only rebinds t
        self.scalar = scalar
        self._layout = layout  # NumPy's strides, on a proxy array (see trace/layout.py)
        self._version = 0
        self._base = base
        self._view_fwd = view_fwd  # base tracer -> our value
        self._view_bwd = view_bwd  # (base tracer, new view tracer) -> new base value
        self._base_version = base._version if base is not None else 0

    # -- value, views and functional updates --------------------------------------------
    @property
    def value(self) -> Value:
        base = self._base
        if base is not None:
            v = base.value  # refreshes chained views
            if base._version != self._base_version:
                self._value = self._view_fwd(base).value
                self._base_version = base._version
                self._version += 1  # so views of this view re-derive too
                del v
        return self._value

    def _assign(self, new: Any) -> Tracer:
        """In-place update: cast and broadcast `new` to our type, rebind, write back."""
        from compiler.trace import ops

        new = ops.cast_to(self._ctx.lift(new), self.dtype, op="in-place update")
        if new.shape != self.shape:
            new = ops.broadcast_to(new, self.shape)
        if self._base is not None:
            if self._view_bwd is None:
                raise ValueError(
                    "assignment destination is read-only (a broadcast view or a diagonal)"
                )
            self._base._assign(Tracer(self._ctx, self._view_bwd(self._base, new).value))
            self._base_version = self._base._version
        self._value = new.value
        self._version += 1
        return self

    def _gradc_bind(self, name: str, args: tuple, attrs: dict) -> Tracer:
        return self._ctx.bind_hook(name, args, attrs)

    # -- ndarray attributes ----------------------------------------------------------------
    @property
    def layout(self) -> np.ndarray:
        """A proxy array with NumPy's strides for this value (C-contiguous unless set)."""
        if self._layout is None:
            self._layout = layout.fresh(self.shape)
        return self._layout

    @property
    def type(self) -> TensorType:
        return self.value.type

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.type.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.type.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return self.value.type.size

    @property
    def T(self) -> Tracer:
        from compiler.trace import ops

        return ops.transpose(self, None)

    @property
    def mT(self) -> Tracer:
        from compiler.trace import ops

        return ops.swapaxes(self, -1, -2)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object (a 0-d traced array)")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"Tracer({self.type})"

    # -- conversions that need a concrete value -----------------------------------------------
    def _concrete(self, what: str):
        raise TracerError(
            f"{what} needs a concrete value, but this is a traced array {self.type} "
            f"(at {user_location()}). Python control flow cannot depend on traced values: "
            "use np.where(cond, a, b), np.maximum/np.minimum or np.clip instead."
        )

    def __bool__(self):
        self._concrete("bool(x) (an `if`, `while`, `and`/`or` on an array)")

    def _number(self, what: str):
        raise TracerError(
            f"{what} needs a concrete Python number, but this is a traced array {self.type} "
            f"(at {user_location()}). Keep it an array: use np.exp/np.sqrt/np.log instead of "
            "math.*, and leave 0-d arrays as they are instead of float(x) or x.item()."
        )

    def __float__(self):
        self._number("float(x) (or a math.* function such as math.exp)")

    def __int__(self):
        self._number("int(x)")

    def __index__(self):
        self._concrete("using a traced array as a Python index")

    def __complex__(self):
        self._number("complex(x)")

    def item(self, *a):
        self._number("x.item()")

    def tolist(self):
        self._number("x.tolist()")

    def __array__(self, dtype=None, copy=None):
        raise TracerError(
            f"np.asarray / np.array (or another conversion to a concrete ndarray) was called on "
            f"a traced array {self.type} (at {user_location()}) by code that gradc does not "
            "trace: a library function, or a method of an object built outside the traced "
            "function (gradc traces the function, the functions it reaches through its "
            "globals and closure, and nothing else). Pass the array through unchanged, or "
            "call that code from a plain function."
        )

    # -- NumPy protocols ---------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from compiler.trace.numpy_api import handle_ufunc

        return handle_ufunc(self._ctx, ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from compiler.trace.numpy_api import handle_function

        return handle_function(self._ctx, func, args, kwargs)


def _holds_tracer(x: Any) -> bool:
    return any(
        isinstance(i, Tracer) or (isinstance(i, (list, tuple)) and _holds_tracer(i)) for i in x
    )


def find_context(args: Sequence[Any]) -> TraceContext | None:
    """The innermost (most recently created) trace context among tracer arguments."""
    ctx = None
    for a in args:
        if isinstance(a, Tracer) and (ctx is None or a._ctx is not ctx):
            if ctx is None or _depth(a._ctx) > _depth(ctx):
                ctx = a._ctx
    return ctx


def _depth(ctx: TraceContext) -> int:
    return ctx.depth


__all__ = ["OPS", "TraceContext", "Tracer", "TracerError", "find_context", "user_location"]
