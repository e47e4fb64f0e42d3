"""Signature keys: what a call must match to reuse a compiled entry.

A key is a tuple `(head, entry_0, ..., entry_n-1)`, one entry per pytree leaf:

- `np.ndarray`          -> `(shape, dtype.char)`; traced.
- NumPy scalar          -> `("s", dtype.char)`; traced as a 0-d value of that dtype. Kept apart
  from 0-d arrays so the caller can hand back the kind of value it was given.
- Python `float`        -> `("f",)`; traced as a float64 scalar, its value is not in the key.
- anything else         -> `(type, value)`; static: the value is baked into the trace. Keying
  on the type keeps `1`, `1.0` and `True` apart although they are equal and hash alike.
  Objects that hash by identity retrace for every new instance, as JAX's static arguments do.

`head` is the leaf count `n` when the treedef is a flat tuple of `n` leaves (the common case,
recognised by identity with `pytree.flat_treedef(n)`, because hashing a PyTreeSpec costs
~180 ns on every lookup) and the treedef itself otherwise.

Memory layout is not in the key: the call path hands compiled code C-contiguous, native-byte-
order arrays (`normalize_array` copies the others), so a strided view or a Fortran array
reuses the entry of its contiguous twin. `dtype.char` does not encode byte order, which is
why the normalisation must also fix byte order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.pytree import _FLAT_DEFS, NESTED_HEADS, PyTreeDef, flat_treedef, leaf_path

__all__ = ["describe_key", "normalize_array", "signature_key", "traced_indices"]

_FLOAT = ("f",)
_SCALAR = "s"
# Exact types that are static and always hashable, so no hash() probe is needed.
_STATIC_EXACT: frozenset[type] = frozenset({int, bool, str, type(None), bytes})


def signature_key(
    leaves: Sequence[Any], treedef: PyTreeDef, static_mask: Sequence[bool] | None = None
) -> tuple:
    """Return the hashable cache key of flattened arguments; see the module docstring."""
    # Measured (Python 3.11, numpy 2.4): 0.37 us for 4 floats, 0.53 us for
    # (f64[3,4], f64[3,4], float, int), 0.68 us with a static_mask; hashing the resulting key
    # for a dict lookup adds ~0.07 us.
    n = len(leaves)
    head: Any = (
        n if treedef is _FLAT_DEFS.get(n) else (NESTED_HEADS.get(id(treedef)) or _head(treedef, n))
    )
    key: list[Any] = [head]
    append = key.append
    try:
        if static_mask is None:
            for x in leaves:
                t = type(x)
                if t is np.ndarray:
                    append((x.shape, x.dtype.char))
                elif t is float:
                    append(_FLOAT)
                elif t in _STATIC_EXACT:
                    append((t, x))
                else:
                    append(_entry(x))
        else:
            if len(static_mask) != n:
                raise ValueError(f"static_mask has {len(static_mask)} entries for {n} leaves")
            for x, static in zip(leaves, static_mask):
                t = type(x)
                if static:
                    append((t, x) if t in _STATIC_EXACT else _static_entry(x))
                elif t is np.ndarray:
                    append((x.shape, x.dtype.char))
                elif t is float:
                    append(_FLOAT)
                else:
                    append(_entry(x))
    except _Unhashable as err:
        raise _unhashable_error(leaves, treedef, static_mask) from err.__cause__
    return tuple(key)


def traced_indices(key: tuple) -> tuple[int, ...]:
    """Return the positions of the leaves a key marks as traced (arrays and floats)."""
    return tuple(i for i, entry in enumerate(key[1:]) if not isinstance(entry[0], type))


def describe_key(key: tuple) -> str:
    """Render a key for messages, e.g. `(f64[3,4], float, static int=3)`."""
    parts = [_describe_entry(entry) for entry in key[1:]]
    text = "(" + ", ".join(parts) + ")"
    head = key[0]
    if not isinstance(head, int):
        text += f" structured as {head}"
    return text


def normalize_array(x: np.ndarray) -> np.ndarray:
    """Return `x` if C-contiguous and native-endian, else such a copy (the key ignores layout)."""
    if x.flags.c_contiguous and x.dtype.isnative:
        return x
    # not np.ascontiguousarray, which turns a 0-d array into a 1-d one
    return np.array(x, dtype=x.dtype.newbyteorder("="), order="C")


class _Unhashable(Exception):
    """Internal: a static leaf is unhashable; the caller adds the leaf's path."""


def _head(treedef: PyTreeDef, n: int) -> Any:
    # A flat tuple treedef that did not come from flatten_args still gets the short head, so
    # the same signature always makes the same key whichever flatten produced it.
    return n if treedef == flat_treedef(n) else treedef


def _entry(x: Any) -> tuple:
    if isinstance(x, np.ndarray):
        if type(x) is np.ndarray:
            return (x.shape, x.dtype.char)
        # Subclasses (np.matrix, masked arrays) behave differently under NumPy ops.
        return (x.shape, x.dtype.char, type(x))
    if isinstance(x, np.generic) and not isinstance(x, (np.str_, np.bytes_, np.void)):
        return (_SCALAR, x.dtype.char)
    if type(x) is float:
        return _FLOAT
    return _static_entry(x)


def _static_entry(x: Any) -> tuple:
    try:
        hash(x)
    except TypeError as err:
        raise _Unhashable() from err
    return (type(x), x)


def _unhashable_error(
    leaves: Sequence[Any], treedef: PyTreeDef, static_mask: Sequence[bool] | None
) -> TypeError:
    mask = static_mask if static_mask is not None else [False] * len(leaves)
    for i, (x, static) in enumerate(zip(leaves, mask)):
        try:
            _static_entry(x) if static else _entry(x)
        except _Unhashable:
            path = leaf_path(treedef, i, "args")
            return TypeError(
                f"gradc: argument leaf {path} of type {type(x).__name__} is unhashable, so it "
                "cannot be a static argument; pass arrays and floats as traced values, or make "
                "it hashable (a tuple instead of a list inside a leaf, for example)"
            )
    return TypeError("gradc: unhashable static argument")  # not reached: some leaf failed


def _dtype_name(char: str) -> str:
    dt = np.dtype(char)
    if dt.kind in "fiuc":
        return f"{dt.kind}{dt.itemsize * 8}"
    return dt.name


def _describe_entry(entry: tuple) -> str:
    first = entry[0]
    if isinstance(first, type):
        return f"static {first.__name__}={entry[1]!r}"
    if entry is _FLOAT or entry == _FLOAT:
        return "float"
    if first == _SCALAR:
        return f"{_dtype_name(entry[1])} scalar"
    shape = ",".join(str(d) for d in first)
    text = f"{_dtype_name(entry[1])}[{shape}]"
    if len(entry) > 2:
        text += f" ({entry[2].__name__})"
    return text
