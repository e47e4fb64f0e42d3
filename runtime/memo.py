"""Per-function memo of transformed callables, so `vjp(f, x)` and `jvp(f, p, t)` called in a
loop reuse one compiled function per signature instead of building (and tracing) a new one
on every call.

Keys hold the user's function weakly: a transformed function lives as long as the function it
came from, and a lambda made fresh on each call simply misses (as in JAX). Callables that
cannot be weakly referenced are not memoized.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def per_function(fun: Callable, key: Hashable, make: Callable[[], Any]) -> Any:
    """`make()`'s result, made once per (`fun`, `key`) while `fun` is alive."""
    try:
        table = _MEMO.get(fun)
    except TypeError:  # not weakly referenceable (some builtins): nothing to key on
        return make()
    if table is not None:
        hit = table.get(key)
        if hit is not None:
            return hit
    with _LOCK:
        try:
            table = _MEMO.setdefault(fun, {})
        except TypeError:
            return make()
        hit = table.get(key)
        if hit is None:
            hit = table[key] = make()
        return hit
