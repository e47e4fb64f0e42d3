"""Python operators and ndarray methods on Tracer, installed onto the class at import."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.trace import indexing, layout, ops
from compiler.trace.numpy_api import FUNCTIONS, apply_ufunc, unsupported
from compiler.trace.tracer import Tracer

_ARITH = (np.add, np.subtract, np.multiply, np.power, np.negative, np.positive, np.absolute)


def _python_bools(ufunc, args: tuple) -> tuple:
    """Python's arithmetic on Python bools is int arithmetic (`True + True == 2`, `-True ==
    -1`), where NumPy's stays bool: weak bool tracers (a comparison of Python floats) become
    weak int64s first, so that operators on Python scalars mean what Python computes."""
    weak = all(isinstance(a, Tracer) and a.weak or isinstance(a, bool) for a in args)
    if not (weak and ufunc in _ARITH and any(isinstance(a, Tracer) for a in args)):
        return args
    if not all(isinstance(a, bool) or a.dtype == np.bool_ for a in args):
        return args
    return tuple(a if isinstance(a, bool) else ops.cast_to(a, np.int64) for a in args)


def _binary(ufunc, reflected=False):
    def method(self, other):
        if isinstance(other, (str, dict, set)) or other is None:
            return NotImplemented
        args = (other, self) if reflected else (self, other)
        return apply_ufunc(ufunc, *_python_bools(ufunc, args))

    return method


def _inplace(ufunc):
    def method(self, other):
        if self.scalar:  # (Python scalars compute what Python computes)
            return apply_ufunc(ufunc, *_python_bools(ufunc, (self, other)))
        result = apply_ufunc(ufunc, self, other)
        if self.scalar:
            # a NumPy or Python scalar is immutable: Python falls back to `t = t + other`,
            # which rebinds t and leaves every other name for the old value alone
            return result
        if np.result_type(result.dtype, self.dtype) != self.dtype and not (
            result.dtype.kind == self.dtype.kind
        ):
            raise TypeError(
                f"Cannot cast ufunc '{ufunc.__name__}' output from "
                f"{result.dtype} to {self.dtype} with casting rule 'same_kind'"
            )
        return self._assign(result)

    return method


def _unsupported_op(name):
    def method(self, *a):
        raise unsupported(f"the {name} operator")

    return method


_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "truediv": np.divide,
    "pow": np.power,
    "matmul": np.matmul,
    "mod": np.remainder,
    "floordiv": np.floor_divide,
}
for _n, _u in _BINARY.items():
    setattr(Tracer, f"__{_n}__", _binary(_u))
    setattr(Tracer, f"__r{_n}__", _binary(_u, reflected=True))
    setattr(Tracer, f"__i{_n}__", _inplace(_u))
for _n in ("divmod", "lshift", "rshift", "xor"):
    setattr(Tracer, f"__{_n}__", _unsupported_op(_n))
    setattr(Tracer, f"__r{_n}__", _unsupported_op(_n))

Tracer.__lt__ = _binary(np.less)
Tracer.__le__ = _binary(np.less_equal)
Tracer.__gt__ = _binary(np.greater)
Tracer.__ge__ = _binary(np.greater_equal)
Tracer.__eq__ = _binary(np.equal)
Tracer.__ne__ = _binary(np.not_equal)
Tracer.__and__ = _binary(np.logical_and)
Tracer.__rand__ = _binary(np.logical_and, True)
Tracer.__or__ = _binary(np.logical_or)
Tracer.__ror__ = _binary(np.logical_or, True)
Tracer.__neg__ = lambda self: apply_ufunc(np.negative, *_python_bools(np.negative, (self,)))
Tracer.__pos__ = lambda self: apply_ufunc(np.positive, *_python_bools(np.positive, (self,)))
Tracer.__abs__ = lambda self: apply_ufunc(np.absolute, *_python_bools(np.absolute, (self,)))


def _invert(self):
    if self.dtype != np.bool_:
        raise unsupported("~ on a non-boolean array")
    if self.weak:  # a Python bool: `~True` is the int -2, as Python computes it
        return -ops.cast_to(self, np.int64) - 1
    return apply_ufunc(np.logical_not, self)


Tracer.__invert__ = _invert
Tracer.round = lambda self, decimals=0: FUNCTIONS[np.round](self._ctx, self, decimals)
Tracer.__getitem__ = lambda self, key: indexing.getitem(self, key)
Tracer.__setitem__ = lambda self, key, v: indexing.setitem(self, key, v)


def _method(func):
    def method(self, *args: Any, **kwargs: Any):
        # looked up per call: modules imported later (contract_api) may refine a handler
        return FUNCTIONS[func](self._ctx, self, *args, **kwargs)

    return method


for _name, _func in [
    ("sum", np.sum),
    ("mean", np.mean),
    ("max", np.max),
    ("min", np.min),
    ("swapaxes", np.swapaxes),
    ("squeeze", np.squeeze),
    ("ravel", np.ravel),
    ("clip", np.clip),
    ("dot", np.dot),
    ("take", np.take),
]:
    setattr(Tracer, _name, _method(_func))

Tracer.astype = lambda self, dtype, *a, **k: FUNCTIONS[np.astype](self._ctx, self, dtype)


def _fresh(self: Tracer, out: Tracer, scalar: bool = False) -> Tracer:
    """A C-ordered copy holding out's value (`x.flatten()`, `x.copy()`)."""
    return Tracer(self._ctx, out.value, weak=self.weak and scalar, scalar=scalar)


# (`s.flatten()` of a NumPy scalar is a 1-D array; `s.copy()` is a scalar again)
Tracer.flatten = lambda self, order="C": _fresh(self, ops.reshape(self, (-1,)))


def _copy_method(self: Tracer, order: str = "C") -> Tracer:
    out = _fresh(self, self, scalar=self.scalar)
    if order == "K":  # np.copy's default: keep the layout (C, the method's default, does not)
        out._layout = layout.keep_order(self.shape, self)
    elif order != "C":
        raise unsupported(f"copy(order={order!r})")
    return out


Tracer.copy = _copy_method


def _reshape_method(self, *shape, order="C"):
    if order != "C":
        raise unsupported(f"reshape(order={order!r})")
    return ops.reshape(self, shape[0] if len(shape) == 1 else shape)


def _transpose_method(self, *axes):
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    return ops.transpose(self, tuple(axes) if axes else None)


Tracer.reshape = _reshape_method
Tracer.transpose = _transpose_method
