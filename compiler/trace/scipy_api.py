"""SciPy functions that are compositions, as user code sees them while tracing:
`scipy.special.logsumexp`, `softmax`, `log_softmax`.

SciPy's own versions call `np.asarray` on their input, which a tracer cannot survive, so the
traced namespace (`namespace.View`) swaps them for these, once user code has imported
scipy.special (gradc itself does not: its import costs more than the rest of gradc's). Each
is written with the same max-shift SciPy uses, so values match SciPy's to rounding and
nothing overflows; gradients follow from the primitives (the shift cancels exactly in the
derivative).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.trace import creation
from compiler.trace.namespace import override, override_module
from compiler.trace.tracer import user_location


def _traced(*xs: Any) -> bool:
    return creation.current() is not None and any(creation.has_tracer(x) for x in xs)


def _as_array(x: Any) -> Any:
    return creation.array_from(x, copy=False) if isinstance(x, (list, tuple)) else x


def _shift(a: Any, axis: Any) -> Any:
    """max over axis (keepdims), 0 where it is not finite (all -inf, inf or nan rows)."""
    m = np.max(a, axis=axis, keepdims=True)
    return np.where(np.abs(m) < np.inf, m, np.zeros_like(m))


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """scipy.special.logsumexp on traced values: m + log(sum(b * exp(a - m)))."""
    if not _traced(a, b):
        return _sp().logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
    if return_sign:
        raise NotImplementedError(
            f"scipy.special.logsumexp(return_sign=True) is not supported by gradc (at "
            f"{user_location()}); with positive weights b the sign is always 1"
        )
    a = _as_array(a)
    if isinstance(axis, list):
        axis = tuple(axis)
    m = _shift(a, axis)
    e = np.exp(a - m)
    if b is not None:
        e = _as_array(b) * e
    s = np.sum(e, axis=axis, keepdims=True)
    out = np.log(s) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return out


def softmax(x, axis=None):
    """scipy.special.softmax on traced values."""
    if not _traced(x):
        return _sp().softmax(x, axis=axis)
    x = _as_array(x)
    e = np.exp(x - _shift(x, axis))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=None):
    """scipy.special.log_softmax on traced values."""
    if not _traced(x):
        return _sp().log_softmax(x, axis=axis)
    x = _as_array(x)
    return x - logsumexp(x, axis=axis, keepdims=True)


def _sp() -> Any:
    # an untraced call: user code that passed SciPy's function here has imported it
    import scipy.special

    return scipy.special


def _override_scipy_special(sp: Any) -> None:
    """Route user code's scipy.special compositions on tracers to the traced versions."""
    for orig, traced_fn in [
        (sp.logsumexp, logsumexp),
        (sp.softmax, softmax),
        (sp.log_softmax, log_softmax),
    ]:
        override(orig, traced_fn)


override_module("scipy.special", _override_scipy_special)
