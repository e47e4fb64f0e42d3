"""How a loss function reaches the workers, and the per-worker cache of compiled transforms.

The client cloudpickles the user's function (with its closure) once per distributed transform
and names the bytes by a content hash. A worker unpickles a token it has not seen once, builds
`compiler.value_and_grad` from it and keeps that transform for the life of the process: the
transform's own signature-keyed cache then serves every later chunk and call, and a new chunk
length retraces without compiling (kernels are shape-generic). Compiled modules come from the
disk cache when workers share `GRADC_CACHE_DIR` (or the user cache folder) with each other or
with the client, so only the first process that meets a signature pays for Numba.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cloudpickle

from compiler.api import value_and_grad

# a closure this large almost always holds the data by accident; it is re-sent on every call
LARGE_PAYLOAD_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Options:
    """What the worker-side `value_and_grad` is built with."""

    argnums: int | tuple[int, ...]
    backend: str | None
    disable: tuple[str, ...]
    memory: str | None
    memory_budget: int | None
    compile: str | None = None  # None: the worker's GRADC_COMPILE, else background


@dataclass(frozen=True)
class RemoteLoss:
    """A loss as it travels: cloudpickled bytes, their hash (the worker cache key) and options."""

    token: str
    name: str
    payload: bytes
    options: Options

    def transform(self) -> Callable[..., Any]:
        """The compiled value_and_grad for this loss in this process (built on first use)."""
        t = _TRANSFORMS.get(self.token)
        if t is not None:
            return t
        with _lock:
            t = _TRANSFORMS.get(self.token)
            if t is None:
                t = self._build()
                _TRANSFORMS[self.token] = t
                _stats["loaded"] += 1
        return t

    def _build(self) -> Callable[..., Any]:
        try:
            fun = cloudpickle.loads(self.payload)
        except Exception as e:
            raise RuntimeError(
                f"distributed.value_and_grad: the loss {self.name!r} could not be loaded on "
                f"a worker ({type(e).__name__}: {e}); the workers need the same Python "
                "packages as the client"
            ) from e
        o = self.options
        return value_and_grad(
            fun,
            o.argnums,
            backend=o.backend,
            disable=o.disable,
            memory=o.memory,
            memory_budget=o.memory_budget,
            compile=o.compile,
        )


_lock = threading.Lock()
_TRANSFORMS: dict[str, Callable[..., Any]] = {}
_stats = {"loaded": 0, "chunks": 0}


def ship(fun: Callable, options: Options) -> RemoteLoss:
    """Pickle `fun` for the workers, or raise a TypeError naming what cannot be sent."""
    name = getattr(fun, "__qualname__", None) or type(fun).__name__
    try:
        payload = cloudpickle.dumps(fun)
    except Exception as e:
        raise TypeError(
            f"distributed.value_and_grad: cannot send the loss {name!r} to the workers: "
            f"{_culprit(fun)}({type(e).__name__}: {e}). Pass such values as arguments, or "
            "create them inside the function"
        ) from e
    if len(payload) > LARGE_PAYLOAD_BYTES:
        warnings.warn(
            f"distributed.value_and_grad: the loss {name!r} pickles to "
            f"{len(payload) / 2**20:.0f} MiB (its closure holds large values); pass big "
            "arrays as arguments (Dask arrays for data) instead of capturing them",
            stacklevel=3,
        )
    digest = hashlib.sha256(payload + repr(options).encode()).hexdigest()
    return RemoteLoss(digest, name, payload, options)


def _culprit(fun: Callable) -> str:
    """'its closure variable 'x' (a lock) cannot be pickled ' or '' when no single one is."""
    code = getattr(fun, "__code__", None)
    if code is None:  # a callable object: try its attributes
        for key, value in sorted(getattr(fun, "__dict__", {}).items()):
            if not _picklable(value):
                return f"its attribute {key!r} ({_kind(value)}) cannot be pickled "
        return ""
    cells = zip(code.co_freevars, getattr(fun, "__closure__", None) or ())
    for key, cell in cells:
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell (a name assigned later)
            continue
        if not _picklable(value):
            return f"its closure variable {key!r} ({_kind(value)}) cannot be pickled "
    globs = getattr(fun, "__globals__", {})
    for key in code.co_names:
        if key in globs and not _picklable(globs[key]):
            return f"the global {key!r} it uses ({_kind(globs[key])}) cannot be pickled "
    for value in getattr(fun, "__defaults__", None) or ():
        if not _picklable(value):
            return f"a default argument ({_kind(value)}) cannot be pickled "
    return ""


def _picklable(value: Any) -> bool:
    try:
        cloudpickle.dumps(value)
    except Exception:
        return False
    return True


def _kind(value: Any) -> str:
    t = type(value)
    return f"a {t.__module__}.{t.__qualname__}"


def count_chunk() -> None:
    """Record one chunk evaluated in this process (worker_stats)."""
    with _lock:
        _stats["chunks"] += 1


def worker_stats() -> dict[str, int]:
    """This process's counts: losses loaded (unpickled and wrapped) and chunks evaluated."""
    with _lock:
        return {**_stats, "transforms": len(_TRANSFORMS)}
