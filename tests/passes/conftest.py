"""Fixtures for the pass tests: the case graphs of `cases.py`."""

from __future__ import annotations

import pytest

from tests.passes.cases import CASES, Case


@pytest.fixture
def cases() -> dict[str, Case]:
    """All test case graphs, by name."""
    return CASES


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    """Each test case graph in turn."""
    return CASES[request.param]
