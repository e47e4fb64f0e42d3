"""Tensor types: a static shape and a NumPy dtype."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

_SHORT = {
    "float64": "f64",
    "float32": "f32",
    "float16": "f16",
    "int64": "i64",
    "int32": "i32",
    "int16": "i16",
    "int8": "i8",
    "uint8": "u8",
    "bool": "bool",
    "complex128": "c128",
    "complex64": "c64",
}
_LONG = {v: k for k, v in _SHORT.items()}

FLOAT_DTYPES = (np.dtype("float64"), np.dtype("float32"))


@dataclass(frozen=True)
class TensorType:
    """The static type of a Value: shape (tuple of ints) and dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def __str__(self) -> str:
        return f"{dtype_short(self.dtype)}[{','.join(str(d) for d in self.shape)}]"


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy's broadcast of `shapes` (ValueError when they do not broadcast), in pure Python:
    np.broadcast_shapes builds arrays and costs ~5 us a call, and every elementwise node the
    tracer, autodiff and passes build asks (tests/ir/test_types.py checks it against NumPy)."""
    if len(shapes) == 1:
        return tuple(shapes[0])
    rank = max(map(len, shapes), default=0)
    out = [1] * rank
    for shape in shapes:
        off = rank - len(shape)
        for i, d in enumerate(shape):
            cur = out[off + i]
            if d != cur:
                if cur == 1:
                    out[off + i] = d
                elif d != 1:
                    raise ValueError(f"shapes {shapes} do not broadcast")
    return tuple(out)


@functools.cache  # NumPy's dtype.name is slow (it builds the string), and dumps ask per value
def dtype_short(dtype: np.dtype) -> str:
    """`float64` -> `f64`, as used in dumps and error messages."""
    return _SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)


def parse_type(text: str) -> TensorType:
    """Parse `f64[3,4]` (or `f32[]`) into a TensorType."""
    text = text.strip()
    if "[" not in text or not text.endswith("]"):
        raise ValueError(f"cannot parse type {text!r}: expected e.g. f64[3,4]")
    head, dims = text[:-1].split("[", 1)
    dtype = _LONG.get(head, head)
    try:
        shape = tuple(int(d) for d in dims.split(",") if d.strip())
        return TensorType(shape, np.dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot parse type {text!r}: {exc}") from None
