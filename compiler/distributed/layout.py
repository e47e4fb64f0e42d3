"""Which arguments are data (Dask arrays chunked along the batch axis) and which are parameters,
checked before anything is sent: every error names the argument, its chunks and the fix."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import optree

# the API's own parameter-name lookup, so errors name arguments the same way everywhere
from compiler.autodiff.inline import arg_names


@dataclass(frozen=True)
class Layout:
    """The data argument positions and the chunk lengths they share along the batch axis."""

    data: tuple[int, ...]
    chunks: tuple[int, ...]

    @property
    def rows(self) -> int:
        return sum(self.chunks)


def batch_layout(
    fun: Callable, args: Sequence[Any], kwargs: dict[str, Any], argnums: tuple[int, ...]
) -> Layout:
    """Find and check the data arguments of one call of the distributed value_and_grad."""
    names = arg_names(fun, len(args))
    for key, value in kwargs.items():
        _check_not_data(value, f"keyword argument {key!r}")
    data = []
    for i, a in enumerate(args):
        if isinstance(a, da.Array):
            data.append(i)
        else:
            _check_not_data(a, f"argument {names[i]!r}")
    if not data:
        raise TypeError(
            "distributed.value_and_grad: no argument is a Dask array, so there is nothing "
            "to distribute; pass the data as dask.array arrays chunked along axis 0 (or use "
            "compiler.value_and_grad for in-memory data)"
        )
    for a in argnums:
        if not -len(args) <= a < len(args):
            raise ValueError(
                f"distributed.value_and_grad: argnums={a} is out of range for a call with "
                f"{len(args)} positional arguments"
            )
        if a % len(args) in data:
            raise TypeError(
                f"distributed.value_and_grad: argnums={a} points at {names[a]!r}, a Dask "
                "array; gradients are taken with respect to parameters (NumPy arrays, "
                "floats or pytrees of them), not the distributed data"
            )
    first = data[0]
    for i in data:
        _check_chunks(args[i], names[i])
    for i in data[1:]:
        _check_same_chunks(args[first], names[first], args[i], names[i])
    chunks = tuple(int(c) for c in args[first].chunks[0])
    if sum(chunks) == 0:
        raise ValueError(
            f"distributed.value_and_grad: the data argument {names[first]!r} has no rows "
            f"(shape {args[first].shape})"
        )
    return Layout(tuple(data), chunks)


def _check_not_data(value: Any, what: str) -> None:
    for leaf in optree.tree_leaves(value, none_is_leaf=False):
        if dask.is_dask_collection(leaf):
            kind = f"{type(leaf).__module__}.{type(leaf).__name__}"
            where = f"is a {kind}" if leaf is value else f"holds a {kind} inside a pytree"
            raise TypeError(
                f"distributed.value_and_grad: {what} {where}; data must be dask.array "
                "arrays passed as top-level positional arguments (a DataFrame: "
                ".to_dask_array(lengths=True)), and parameters and keyword arguments must "
                "be in memory (call .compute() on them)"
            )


def _check_chunks(x: da.Array, name: str) -> None:
    if x.ndim == 0:
        raise ValueError(
            f"distributed.value_and_grad: data argument {name!r} is a 0-d Dask array; "
            "data needs a batch axis (axis 0)"
        )
    if any(math.isnan(c) for c in x.chunks[0]):
        raise ValueError(
            f"distributed.value_and_grad: data argument {name!r} has unknown chunk sizes "
            f"along the batch axis; call {name}.compute_chunk_sizes() first"
        )
    for axis in range(1, x.ndim):
        if len(x.chunks[axis]) > 1:
            raise ValueError(
                f"distributed.value_and_grad: data argument {name!r} (shape {x.shape}) is "
                f"chunked along axis {axis} (chunks {_short(x.chunks[axis])}); data must be "
                f"chunked along the batch axis (axis 0) only: use "
                f"{name}.rechunk({{{axis}: -1}})"
            )


def _check_same_chunks(x: da.Array, xname: str, y: da.Array, yname: str) -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"distributed.value_and_grad: data arguments {xname!r} (shape {x.shape}) and "
            f"{yname!r} (shape {y.shape}) have different lengths along the batch axis "
            f"({x.shape[0]} vs {y.shape[0]})"
        )
    if x.chunks[0] != y.chunks[0]:
        raise ValueError(
            f"distributed.value_and_grad: data arguments {xname!r} and {yname!r} are "
            f"chunked differently along the batch axis ({xname}: {_short(x.chunks[0])}, "
            f"{yname}: {_short(y.chunks[0])}); chunk i of every data argument must hold the "
            f"same rows: use {yname}.rechunk({{0: {xname}.chunks[0]}})"
        )


def _short(chunks: tuple) -> str:
    if len(chunks) <= 6:
        return str(tuple(chunks))
    return f"({', '.join(map(str, chunks[:3]))}, ..., {chunks[-1]}) [{len(chunks)} chunks]"
