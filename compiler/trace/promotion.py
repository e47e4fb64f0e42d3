"""NumPy's dtype promotion for traced operands: the dtype NumPy itself gives a ufunc or
`np.result_type` on stand-ins with the operands' promotion behaviour (NEP 50 weak scalars)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.trace.tracer import Tracer


def _dummy(x: Any) -> Any:
    """A stand-in with x's promotion behaviour: Python scalars (weak) stay Python scalars."""
    if isinstance(x, Tracer):
        if x.weak:
            return {"f": 1.0, "i": 1, "u": 1, "b": True}[x.dtype.kind]
        return np.ones((), dtype=x.dtype)
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        return x
    return np.ones((), dtype=np.asarray(x).dtype)


def _stand_in_key(x: Any) -> Any:
    """What `_dummy(x)` depends on: a weak tracer's kind, a dtype, a Python float's or bool's
    type (NEP 50: weak, whatever the value), or a Python int itself (its value can overflow
    the other operand's dtype)."""
    if isinstance(x, Tracer):
        return x.dtype.kind if x.weak else x.dtype
    if isinstance(x, (bool, float)) and not isinstance(x, np.generic):
        return type(x)  # not the value: a NaN key would never match and pile up
    if isinstance(x, int) and not isinstance(x, np.generic):
        return (int, x)
    return np.asarray(x).dtype


# (ufunc, stand-in keys) -> result dtype: NumPy's answer depends on nothing else, and calling
# the ufunc on stand-ins was a fifth of tracing an unrolled loop (one call per node). Keys
# hold Python ints' values, so the memo is emptied when it reaches MEMO_MAX entries.
_RESULT_DTYPES: dict[tuple, np.dtype] = {}
MEMO_MAX = 4096


def result_dtype(ufunc: np.ufunc, operands: Sequence[Any]) -> np.dtype:
    """The dtype NumPy itself gives `ufunc(*operands)` (NEP 50 weak scalars included)."""
    key = (ufunc, *map(_stand_in_key, operands))
    dt = _RESULT_DTYPES.get(key)
    if dt is not None:
        return dt
    with np.errstate(all="ignore"):
        dt = np.asarray(ufunc(*[_dummy(x) for x in operands])).dtype
    if dt == np.float16 or dt.kind == "c":
        raise NotImplementedError(
            f"{ufunc.__name__}: dtype {dt} is not supported by gradc (use float32 or float64)"
        )
    if len(_RESULT_DTYPES) >= MEMO_MAX:
        _RESULT_DTYPES.clear()
    _RESULT_DTYPES[key] = dt
    return dt


def common_dtype(operands: Sequence[Any]) -> np.dtype:
    dt = np.result_type(*[_dummy(x) for x in operands])
    if dt == np.float16 or dt.kind == "c":
        raise NotImplementedError(f"dtype {dt} is not supported by gradc")
    return dt
