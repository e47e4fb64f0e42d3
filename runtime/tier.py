"""A tiered stage: it answers at once on its NumPy tier and switches to compiled code when a
background compile of the same graph and buffer plan is ready (docs/tiers.md).

The stage is generic over "the compiled callable for a stage": `build(sample)` returns any
`fn(*flat) -> list` (a Python driver over njit kernels, an njit driver). The switch is one
attribute store (`current`), atomic under the GIL and in the free-threaded build; a call in
flight finishes on the tier it started on. Each tier has its own buffer arena, so calls on
both tiers at once never share a buffer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from runtime.background import Job, submit

Stage = Callable[..., list]


def sample_of(flat: tuple) -> tuple:
    """A private copy of a call's inputs, for the background compile's warm-up call (the
    caller may change its arrays in place after its call returns)."""
    return tuple(np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in flat)


def zeros_sample(flat: tuple) -> Callable[[], tuple]:
    """Zeros shaped and typed like a call's arrays, made when the job calls the result: the
    warm-up sample of a stage whose values cannot change what runs (compiler/codegen/
    warmup.py). Nothing is copied or allocated on the caller's thread."""
    spec = tuple((x.shape, x.dtype) if isinstance(x, np.ndarray) else x for x in flat)
    arrays = tuple(isinstance(x, np.ndarray) for x in flat)

    def make() -> tuple:
        return tuple(np.zeros(*s) if a else s for s, a in zip(spec, arrays))

    return make


class TieredStage:
    """`stage(*flat) -> list`: the NumPy tier until the compiled tier is ready, then that.

    The first successful call submits the background compile, `build(sample)` with
    `sample(inputs)` (a copy of its inputs by default, `zeros_sample` where values cannot
    matter), on which the compiled stage is then warmed up, so every kernel it calls is
    compiled before the switch. A compile that fails leaves the stage on the NumPy tier for good.
    """

    __slots__ = (
        "name",
        "numpy",
        "compiled",
        "current",
        "error",
        "_build",
        "_lock",
        "_done",
        "_listeners",
        "_submitted",
        "_detail",
        "_sample",
        "__weakref__",
    )

    def __init__(
        self,
        name: str,
        numpy: Stage,
        build: Callable[[tuple], Stage],
        detail: str = "",
        sample: Callable[[tuple], tuple | Callable[[], tuple]] = sample_of,
    ) -> None:
        self.name = name
        self._sample = sample
        self._detail = detail  # what the compile covers, for the log
        self.numpy = numpy
        self.compiled: Stage | None = None
        self.error: BaseException | None = None
        self._build = build
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._listeners: list[Callable[[Stage], None]] = []
        self._submitted = False
        self.current: Stage = self._first_call

    def __call__(self, *flat: Any) -> list:
        return self.current(*flat)

    @property
    def tier(self) -> str:
        """ "numpy" or "compiled": the tier new calls run on."""
        return "numpy" if self.compiled is None else "compiled"

    def _first_call(self, *flat: Any) -> list:
        numpy = self.numpy
        if numpy is None:  # switched (and the NumPy tier dropped) since this call began
            return self.current(*flat)
        out = numpy(*flat)  # raises for bad input before anything is compiled for it
        with self._lock:
            if not self._submitted:
                self._submitted = True
                if self.current == self._first_call:
                    self.current = self.numpy
                sample = self._sample(flat)
                submit(Job(self.name, self._build, sample, self._switch, self._fail, self._detail))
        return out

    def _switch(self, fn: Stage) -> None:
        with self._lock:
            self.compiled = fn
            self.current = fn
            self.numpy = None  # its arena's buffers go once the calls in flight on it end
            listeners = list(self._listeners)
        for cb in listeners:
            cb(fn)
        self._done.set()

    def _fail(self, err: BaseException) -> None:
        self.error = err
        self._done.set()

    def on_switch(self, cb: Callable[[Stage], None]) -> None:
        """Call `cb(compiled)` when the stage switches (at once if it already has)."""
        with self._lock:
            fn = self.compiled
            if fn is None:
                self._listeners.append(cb)
        if fn is not None:
            cb(fn)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background compile has ended (or `timeout`); True once compiled.
        Returns at once, False, before the first call (nothing has been submitted)."""
        if not self._submitted:
            return self.compiled is not None
        self._done.wait(timeout)
        return self.compiled is not None

    def __getattr__(self, name: str) -> Any:
        # what the stage looks like (source, graph, buffers, arena, ...): the current tier's
        if name.startswith("_"):
            raise AttributeError(name)
        target = self.compiled if self.compiled is not None else self.numpy
        return getattr(target, name)

    def __repr__(self) -> str:
        return f"<TieredStage {self.name!r} on the {self.tier} tier>"


def current_of(stage: Any) -> Any:
    """The callable a stage runs now (itself unless it is tiered)."""
    return stage.current if isinstance(stage, TieredStage) else stage
