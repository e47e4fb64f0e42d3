"""compiler.ir.types: the pure-Python broadcast against NumPy's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.ir.types import broadcast

dims = st.lists(st.sampled_from([1, 2, 3, 5]), max_size=4).map(tuple)


@given(st.lists(dims, min_size=1, max_size=4))
def test_broadcast_matches_numpy(shapes):
    try:
        want = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        with pytest.raises(ValueError):
            broadcast(*shapes)
        return
    assert broadcast(*shapes) == want


def test_broadcast_of_scalars_and_zero_sizes():
    assert broadcast((), ()) == ()
    assert broadcast((0, 3), (1, 3)) == (0, 3) == tuple(np.broadcast_shapes((0, 3), (1, 3)))
    with pytest.raises(ValueError):
        broadcast((0,), (2,))
