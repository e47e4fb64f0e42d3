"""`per_function`: one made object per (function, key), held only while the function lives."""

from __future__ import annotations

import gc

from runtime.memo import _MEMO, per_function


def test_per_function_makes_once_per_function_and_key():
    made = []

    def f(x):
        return x

    def make():
        made.append(1)
        return object()

    a = per_function(f, ("vjp", 1), make)
    assert per_function(f, ("vjp", 1), make) is a
    assert per_function(f, ("vjp", 2), make) is not a
    assert len(made) == 2


def test_per_function_forgets_a_dead_function():
    def f(x):
        return x

    per_function(f, "k", object)
    assert f in _MEMO
    n = len(_MEMO)
    del f
    gc.collect()
    assert len(_MEMO) == n - 1


class _Slotted:
    __slots__ = ()  # no __weakref__ slot: cannot be weakly referenced

    def __call__(self, x):
        return x


def test_per_function_without_weak_references_makes_every_time():
    # nothing to key on, so no memo (and no error)
    f = _Slotted()
    assert per_function(f, "k", object) is not per_function(f, "k", object)
