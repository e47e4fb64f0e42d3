"""The tracer's layout proxies (compiler/trace/layout.py) against NumPy's real strides.

A random chain of ops runs twice: on real ndarrays, and traced. After every step the traced
value's proxy must have the strides NumPy gave the real result (in elements, ignoring axes of
length 1, whose strides mean nothing), and a reshape or ravel must be a view exactly when
NumPy's is (`np.shares_memory`)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import trace
from compiler.trace import Tracer


def _strides(a) -> tuple:
    """NumPy's strides in elements, None for axes of length 1."""
    if isinstance(a, Tracer):
        p = a.layout
        return tuple(s // p.itemsize if d > 1 else None for s, d in zip(p.strides, p.shape))
    a = np.asarray(a)
    return tuple(s // a.itemsize if d > 1 else None for s, d in zip(a.strides, a.shape))


# each step: (name, function of the current value `a` and the input `x`); `a` stays 2-D or 3-D
STEPS = [
    ("T", lambda a, x: a.T),
    ("swap", lambda a, x: np.swapaxes(a, 0, -1)),
    ("rows", lambda a, x: a[::2]),
    ("cols", lambda a, x: a[:, ::-1]),
    ("tail", lambda a, x: a[1:] if a.shape[0] > 1 else a),
    ("mul", lambda a, x: a * 1.5),
    ("add_T", lambda a, x: a + np.swapaxes(a, 0, -1).T if a.ndim == 2 else a + a),
    ("where", lambda a, x: np.where(a > 0.0, a, 1.0)),
    ("astype", lambda a, x: a.astype(np.float32)),
    ("np.copy", lambda a, x: np.copy(a)),
    (".copy", lambda a, x: a.copy()),
    (".copy(K)", lambda a, x: a.copy(order="K")),
    ("zeros_like", lambda a, x: np.zeros_like(a)),
    ("sum0", lambda a, x: a.sum(axis=0) if a.ndim == 3 else a.sum(axis=0, keepdims=True)),
    ("sum_last", lambda a, x: a.sum(axis=-1, keepdims=True)),
    ("concat", lambda a, x: np.concatenate([a, a], axis=-1)),
    ("stack", lambda a, x: np.stack([a, a], axis=1) if a.ndim == 2 else a),
    ("take", lambda a, x: a[:, [0, 0, 1]] if a.shape[1] >= 2 else a),
    ("take0", lambda a, x: a[[1, 0]] if a.shape[0] >= 2 else a),
    ("np.take", lambda a, x: np.take(a, [0, 1], axis=-1) if a.shape[-1] >= 2 else a),
    ("matmul", lambda a, x: a @ np.swapaxes(a, -1, -2)),
    ("clip", lambda a, x: np.clip(a, -0.5, 0.5)),
    ("positive", lambda a, x: +a),
    ("expand", lambda a, x: a[None] if a.ndim == 2 else a),
    ("squeeze", lambda a, x: np.squeeze(a[:1], 0) if a.ndim == 3 else a),
]
RESHAPES = [
    ("reshape(-1)", lambda a: a.reshape(-1)),
    ("ravel", lambda a: a.ravel()),
    ("reshape2", lambda a: a.reshape(a.shape[0], -1)),
    ("reshape_last", lambda a: a.reshape(-1, a.shape[-1])),
    ("flatten", lambda a: a.flatten()),
]


def _run(steps, final, x, record):
    a = x
    for name in steps:
        a = dict(STEPS)[name](a, x)
        record.append((name, a))
    r = dict(RESHAPES)[final](a)
    record.append((final, r))
    return r, a


@settings(deadline=None, max_examples=150)
@given(
    shape=st.sampled_from([(3, 4), (4, 3), (2, 3, 4), (4, 1, 3), (1, 5)]),
    steps=st.lists(st.sampled_from([n for n, _ in STEPS]), min_size=1, max_size=4),
    final=st.sampled_from([n for n, _ in RESHAPES]),
)
def test_layout_matches_numpy_strides_and_views(shape, steps, final):
    x = np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape)
    want: list = []
    r_np, a_np = _run(steps, final, x, want)
    got: list = []
    shares: list = []

    def f(x):
        r, a = _run(steps, final, x, got)
        shares.append(r._base is not None)  # a view of a (writes go through)
        return r

    trace(f, x)
    for (name, w), (_, g) in zip(want, got):
        assert np.shape(w) == g.shape, name
        assert _strides(w) == _strides(g), f"{name} after {steps}: {_strides(g)} != {_strides(w)}"
    assert shares[0] == np.shares_memory(r_np, a_np), f"{final} of {steps}"
