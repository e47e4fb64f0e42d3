"""The tracer's result dtypes (memoised per ufunc and operand stand-ins, trace/promotion.py) are
NumPy's own, the second time as the first, and a Python int that overflows the other
operand's dtype still raises NumPy's OverflowError after a same-dtype call was memoised."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import jit

CASES = [
    (np.float32, 2.5),
    (np.float32, 2),
    (np.float32, np.float64(2.0)),
    (np.int32, 2.5),
    (np.int32, 7),
    (np.int8, True),
    (np.uint8, 200),
    (np.float64, np.float32(1.5)),
]


@pytest.mark.parametrize("repeat", [1, 2])
@pytest.mark.parametrize("dtype, scalar", CASES)
def test_traced_result_dtype_is_numpys(dtype, scalar, repeat):
    x = np.arange(1, 4).astype(dtype)

    def f(x):
        return (x + scalar) * x, np.maximum(scalar, x), x * 1.0

    for _ in range(repeat):  # the second trace meets the memo
        got = jit(f, backend="interpret")(x)
        want = f(x)
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == np.asarray(w).dtype
            np.testing.assert_array_equal(g, w)


def test_a_python_int_out_of_range_still_overflows():
    x = np.arange(1, 4).astype(np.uint8)
    assert jit(lambda x: x + 200, backend="interpret")(x).dtype == np.uint8  # memoised
    for _ in range(2):
        with pytest.raises(OverflowError):
            np.add(x, 300)  # NumPy's behaviour, which the tracer must match
        with pytest.raises(OverflowError):
            jit(lambda x: x + 300, backend="interpret")(x)


def test_float_scalars_share_one_memo_entry_and_the_memo_is_bounded(monkeypatch):
    from compiler.trace import promotion

    x = np.arange(1, 4).astype(np.float32)
    promotion._RESULT_DTYPES.clear()
    for c in [0.5, float("nan"), float("nan"), 1e30, -0.0]:  # NaN != NaN: keyed by type
        got = jit(lambda x, c=c: x * c, backend="interpret")(x)
        assert got.dtype == (x * c).dtype == np.float32
    assert len(promotion._RESULT_DTYPES) == 1
    monkeypatch.setattr(promotion, "MEMO_MAX", 3)
    for k in range(10):  # ints are keyed by value: the memo empties instead of growing
        assert jit(lambda x, k=k: x + k, backend="interpret")(x).dtype == np.float32
        assert len(promotion._RESULT_DTYPES) <= 3
