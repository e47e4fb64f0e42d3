"""Shared hypothesis strategies: shapes that broadcast together, float arrays, axes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# interpreter-level property tests: no deadline (first calls trace), modest example counts
INTERP = settings(deadline=None, max_examples=100)

# API-level property tests on a compiling backend: every new structure (ops, ranks, dtypes,
# broadcast pattern) is a new compilation, up to tenths of a second on Numba (new sizes of a
# known structure reuse its module), so fewer examples: 20 cost about a second per test
COMPILED_EXAMPLES = 20


def api_settings(backend: str) -> settings:
    """Hypothesis settings for a property test through grad/value_and_grad/vjp/jit."""
    n = INTERP.max_examples if backend == "interpret" else COMPILED_EXAMPLES
    return settings(INTERP, max_examples=n)


def given_on(backend: str, *args, **kwargs):
    """`@given(...)` with `api_settings(backend)`, for a property body defined inside a test
    that takes the `backend` fixture (settings cannot depend on a fixture at import time):

        def test_x(backend):
            @gst.given_on(backend, x=gst.arrays((3,)))
            def check(x): ...

            check()
    """

    def wrap(body):
        return api_settings(backend)(given(*args, **kwargs)(body))

    return wrap


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Array shapes small enough for finite differences."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def mutually_broadcastable_shapes(
    num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3, max_side: int = 4
):
    """A tuple of `num_shapes` shapes that broadcast together (NumPy's rules)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side
    ).map(lambda r: r.input_shapes)


def arrays(shape, dtype=np.float64, lo: float = -2.0, hi: float = 2.0):
    """Finite float arrays with values in [lo, hi] (kept away from overflow and NaN)."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return hnp.arrays(
        np.dtype(dtype),
        shape,
        elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=width),
    )


def axes(ndim: int, allow_none: bool = True):
    """A valid `axis=` argument for an array of rank `ndim`: None, an int or a tuple of
    distinct ints, negative values included."""
    options = []
    if allow_none:
        options.append(st.none())
    if ndim > 0:
        one = st.integers(-ndim, ndim - 1)
        options.append(one)
        options.append(
            st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).flatmap(
                lambda ax: st.tuples(*[st.sampled_from([a, a - ndim]) for a in ax])
            )
        )
    else:
        options.append(st.just(()))
    return st.one_of(*options)


def shape_and_axes(min_dims: int = 0, max_dims: int = 3, max_side: int = 4):
    """(shape, axis, keepdims) for reductions."""
    return shapes(min_dims, max_dims, max_side=max_side).flatmap(
        lambda s: st.tuples(st.just(s), axes(len(s)), st.booleans())
    )
