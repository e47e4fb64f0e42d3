"""Shared helpers for the codegen tests: a private cache folder and result comparison."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="module")
def cache_dir(tmp_path_factory):
    """Point the module cache at a temporary folder for the whole test module."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("gradc_cache")
        mp.setenv("GRADC_CACHE_DIR", str(path))
        yield path


def assert_same(actual, expected, rtol: float | None = None) -> None:
    """Same shape and dtype; values equal up to rounding (NaNs and infinities must match)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert isinstance(actual, np.ndarray)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    if rtol is None:
        rtol = 2e-5 if actual.dtype == np.float32 else 1e-11
    if actual.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def assert_ulp(actual, expected, ulps: int = 4) -> None:
    """Equal within `ulps` units in the last place of the larger magnitude, the array's largest
    magnitude setting a floor (a sum may cancel to near zero; its rounding is the terms')."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if actual.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected)
        return
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    finite = np.isfinite(actual) & np.isfinite(expected)
    np.testing.assert_array_equal(
        actual[~finite & ~np.isnan(actual)], expected[~finite & ~np.isnan(expected)]
    )
    a, e = actual[finite], expected[finite]
    if a.size == 0:
        return
    floor = np.abs(e).max() * np.finfo(e.dtype).eps
    tol = ulps * np.maximum(np.spacing(np.maximum(np.abs(a), np.abs(e))), floor)
    bad = np.abs(a - e) > tol
    assert not bad.any(), (
        f"tiers differ by more than {ulps} ulp at {np.flatnonzero(bad)[:5]}: "
        f"{a[bad][:5]} vs {e[bad][:5]}"
    )
