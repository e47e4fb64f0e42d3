"""`Stages`: every stage of one compile, as the pipeline makes them or the stage cache
loads them (`CachedStages`, whose rarely read fields unpickle on first read)."""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.codegen.prepare import Lowered
    from compiler.ir.graph import Graph
    from compiler.plan import Plan


@dataclass(frozen=True)
class Stages:
    """Every stage of one compile. `lowered` has one entry (grad, jit) or two (vjp)."""

    traced: Graph
    grad: Graph | None  # the joint graph (None for jit)
    passes: Graph  # after the algebraic passes
    plan: Plan | None  # the storage plan of the joint graph (None for jit)
    lowered: tuple[Lowered, ...]
    n_residuals: int = 0  # vjp: values the forward stage hands to the backward one


class CachedStages(Stages):
    """Stages from the cache. A call needs only `lowered`; the joint graph, the passes' graph
    and the plan (read by `gradc ir`, debug_nans and a pullback inlined into an outer trace)
    are a second pickle inside the entry, unpickled on first read: two thirds of the load."""

    @classmethod
    def make(cls, traced: Graph, lowered: tuple, n_residuals: int, cold: bytes) -> CachedStages:
        """Stages whose cold fields unpickle from `cold` when first read."""
        obj = object.__new__(cls)
        # cached_property writes the instance dict directly, as this does: frozen stays frozen
        vars(obj).update(traced=traced, lowered=lowered, n_residuals=n_residuals, _cold=cold)
        return obj

    @functools.cached_property
    def _unpickled(self) -> tuple:
        from compiler.stage_cache import gc_paused  # the stage cache is this class's maker

        with gc_paused():
            return pickle.loads(self._cold)

    @functools.cached_property
    def grad(self) -> Graph | None:  # type: ignore[override]
        return self._unpickled[0]

    @functools.cached_property
    def passes(self) -> Graph:  # type: ignore[override]
        return self._unpickled[1]

    @functools.cached_property
    def plan(self) -> Any:  # type: ignore[override]
        return self._unpickled[2]


__all__ = ["CachedStages", "Stages"]
