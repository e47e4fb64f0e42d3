"""`StageBuffers`: a compiled stage's arena, with each buffer set's per-value views made once.

The buffer plan maps each intermediate to an arena slot (`Buffers.slot_of`); the Python driver
writes value `k` of its `layout` into `B[slot_k].reshape(shape_k)`. Making those views costs
~0.2 us each, so they are built once per buffer set (the first time the set is handed out)
and the driver unpacks them from a tuple. The slot ids live here, bound in the stage's
params, not in the generated text: slots are per size class, so they can depend on sizes.

Thread safety comes from `runtime.Arena`: concurrent callers hold different buffer sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.arena import Arena


class StageBuffers:
    """`acquire() -> (set, views)`, `release(set)`; one per compiled stage and concrete sizes."""

    __slots__ = ("arena", "layout", "_views")

    def __init__(
        self,
        specs: Sequence[tuple[Sequence[int], Any]],
        layout: Sequence[tuple[int, tuple[int, ...]]],
    ) -> None:
        self.arena = Arena(specs)
        self.layout = tuple((int(s), tuple(shape)) for s, shape in layout)
        self._views: dict[int, tuple[tuple[np.ndarray, ...], list]] = {}

    def acquire(self) -> tuple[list[np.ndarray], tuple[np.ndarray, ...]]:
        """A buffer set for one call and the driver's views into it (contents are stale)."""
        bufs = self.arena.acquire()
        got = self._views.get(id(bufs))
        if got is None:
            views = tuple(bufs[s].reshape(shape) for s, shape in self.layout)
            # holding the set keeps its id unique for as long as the entry exists
            self._views[id(bufs)] = got = (views, bufs)
        return bufs, got[0]

    def release(self, bufs: list[np.ndarray]) -> None:
        self.arena.release(bufs)

    @property
    def nbytes(self) -> int:
        """Bytes of one buffer set (the planned peak of intermediates)."""
        return self.arena.nbytes

    @property
    def num_sets(self) -> int:
        """Buffer sets allocated so far (the most concurrent callers seen)."""
        return self.arena.num_sets

    def __repr__(self) -> str:
        return f"StageBuffers({len(self.layout)} views, {self.arena!r})"
