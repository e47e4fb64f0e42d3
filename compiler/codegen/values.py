"""What a driver variable holds for each graph value: a materialised array, or a lazy
broadcast or fill that kernels read without materialising it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.graph import Value


@dataclass
class Mat:
    """A materialised array held in a driver variable."""

    name: str
    fresh: bool  # (a view of) a buffer this call allocated with np.empty (an output's)
    plain: bool  # the whole buffer, C-contiguous


@dataclass
class Bcast:
    """`broadcast_to(src)`, not materialised: kernels read `src` with a broadcast pattern."""

    src: Value
    shape: tuple[int, ...]


@dataclass
class Fill:
    """A constant fill, not materialised: kernels take the scalar."""

    param: str  # driver expression of the fill scalar (typed)
    dtype: np.dtype
    shape: tuple[int, ...]
