"""The per-signature dispatcher: a transformed function's cache of compiled entries and the
call fast path (flatten the arguments, key them, look the entry up, run it).

The compiler supplies `build(args, kwargs, leaves) -> Entry` for a signature it has not seen;
everything after the first call with a signature happens here, without the compiler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import optree

from runtime.pytree import flatten_args
from runtime.signature import normalize_array, signature_key


class Entry(Protocol):
    """What one signature compiled to, as the dispatcher uses it."""

    dyn: list[int]  # positions (among all leaves) of the graph inputs
    fast: Callable[[list], Any] | None  # flat inputs -> result, when the plain path suffices

    def run(self, flat: list) -> Any:
        """flat inputs -> result, the general path."""


class Dispatcher:
    """`dispatcher(args, kwargs)`: the result of the entry for the arguments' signature."""

    def __init__(self, build: Callable[[tuple, dict, list], Entry]) -> None:
        self.build = build
        self.cache: dict[Any, Entry] = {}
        # per entry: (all leaves are inputs, some leaf is an ndarray)
        self._shape: dict[int, tuple[bool, bool]] = {}
        self._lock = threading.Lock()

    def key(self, args: tuple, kwargs: dict) -> tuple[Any, list]:
        """The signature key of the arguments and their leaves."""
        if kwargs:
            leaves, tree = optree.tree_flatten((args, kwargs), none_is_leaf=False)
        else:
            leaves, tree = flatten_args(args)
        return signature_key(leaves, tree), leaves

    def __call__(self, args: tuple, kwargs: dict) -> Any:
        key, leaves = self.key(args, kwargs)
        entry = self.cache.get(key)
        if entry is None:
            return self._first_call(key, args, kwargs, leaves)
        all_dyn, has_arrays = self._shape[id(entry)]
        if has_arrays:
            fixed = normalize_leaves(leaves)
            if fixed is not None:  # a strided, Fortran-order or byte-swapped array: copy once
                leaves = fixed
        flat = leaves if all_dyn else [leaves[i] for i in entry.dyn]
        if entry.fast is not None:
            return entry.fast(flat)
        return entry.run(flat)

    def entry(self, args: tuple, kwargs: dict) -> Entry:
        """The entry for the arguments' signature, building it if needed (not running it)."""
        key, leaves = self.key(args, kwargs)
        entry = self.cache.get(key)
        if entry is None:
            entry = self._get(key, *_normalized(args, kwargs, leaves))
        return entry

    def _first_call(self, key: Any, args: tuple, kwargs: dict, leaves: list) -> Any:
        args, kwargs, leaves = _normalized(args, kwargs, leaves)
        entry = self._get(key, args, kwargs, leaves)
        return entry.run([leaves[i] for i in entry.dyn])

    def _get(self, key: Any, args: tuple, kwargs: dict, leaves: list) -> Entry:
        with self._lock:
            entry = self.cache.get(key)
            if entry is None:
                entry = self.build(args, kwargs, leaves)
                self._shape[id(entry)] = (
                    len(entry.dyn) == len(leaves),
                    any(isinstance(x, np.ndarray) for x in leaves),
                )
                self.cache[key] = entry
        return entry


def _normalized(args: tuple, kwargs: dict, leaves: list) -> tuple[tuple, dict, list]:
    fixed = normalize_leaves(leaves)
    if fixed is None:
        return args, kwargs, leaves
    tree = optree.tree_structure((args, kwargs), none_is_leaf=False)
    args, kwargs = optree.tree_unflatten(tree, fixed)
    return args, kwargs, fixed


def normalize_leaves(leaves: Sequence[Any]) -> list | None:
    """The leaves with every array C-contiguous and native-endian (what compiled code reads),
    or None when they already are: the common case costs one flags check per array."""
    out = None
    for i, x in enumerate(leaves):
        if type(x) is np.ndarray:
            if x.flags.c_contiguous and x.dtype.isnative:
                continue
            x = normalize_array(x)
        elif isinstance(x, np.ndarray):
            x = normalize_array(_plain_array(x))
        else:
            continue
        if out is None:
            out = list(leaves)
        out[i] = x
    return out


def _plain_array(x: np.ndarray) -> np.ndarray:
    # A memmap is an ndarray with a file behind it. Other subclasses (np.matrix, masked
    # arrays) change what operators mean, so the traced function would not be the one the
    # user ran on them: refuse rather than differentiate something else.
    if isinstance(x, np.memmap):
        return np.asarray(x)
    raise TypeError(
        f"gradc does not accept {type(x).__module__}.{type(x).__name__} arguments (an "
        "ndarray subclass whose operators differ from ndarray's); pass np.asarray(x), or "
        "x.filled(...) for a masked array"
    )
