"""Shared pytest options and fixtures."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI (CI=true) replays the same hypothesis examples on every run, so a landing is decided by the
# code, not by the draw; local runs keep exploring new examples, and the offline campaign
# (tests/robustness/campaign.py) explores at scale. See docs/testing.md. Neither profile has
# hypothesis's timing checks (a 200 ms deadline per example, "input generation is slow"):
# they are timing assertions, and they failed on a loaded 2-core machine.
_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, **_UNTIMED)
settings.register_profile("local", **_UNTIMED)
settings.load_profile("ci" if os.environ.get("CI") else "local")

GOLDEN_DIR = Path(__file__).parent / "golden"

# The suite runs on the NumPy tier (docs/tiers.md): the same optimized graph and buffer plan as
# compiled code, with nothing for Numba to compile. Tests about compiled code carry the
# `compiled` marker (or pass compile= themselves), which runs them with GRADC_COMPILE=eager;
# CI runs them too (plain `python -m pytest`). Set GRADC_COMPILE yourself to run the whole
# suite on another tier. Subprocesses (the CLI, the examples) inherit the setting.
os.environ.setdefault("GRADC_COMPILE", "never")
# Routing by the op records' table (docs/routing.md): the same lowered graphs on every host and
# at every moment (in `auto` a calibration landing in the background would change the routing
# of later tests, and the goldens). tests/codegen/test_routing.py covers the other modes.
os.environ.setdefault("GRADC_ROUTE", "table")

# every test that goes through the public API (grad, value_and_grad, vjp, jit) runs once per
# backend; "interpret" is the reference oracle, "numba" the compiled default
BACKENDS = ("interpret", "numba")


@pytest.fixture
def scalar_libm(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIMD transcendentals off (`GRADC_SIMD=0`): routing and kernel text the same on every
    host, for the tests that pin them (goldens, routing by the op records)."""
    monkeypatch.setenv("GRADC_SIMD", "0")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the tests/golden/ files from the current output",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """`golden("pass/case.txt", text)`: compare text with the stored file (or rewrite it)."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / name
        text = text.rstrip("\n") + "\n"
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        if not path.exists():
            pytest.fail(f"no golden file {path}; run `pytest --update-golden` and review it")
        want = path.read_text()
        if text != want:
            diff = "".join(
                difflib.unified_diff(
                    want.splitlines(True), text.splitlines(True), f"golden/{name}", "current"
                )
            )
            pytest.fail(
                f"output differs from golden/{name} "
                f"(run `pytest --update-golden` if intended):\n{diff}"
            )

    return check


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compiled: about compiled code: runs with GRADC_COMPILE=eager (Numba)"
    )


@pytest.fixture(autouse=True)
def _compile_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("compiled") is not None:
        monkeypatch.setenv("GRADC_COMPILE", "eager")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The `backend=` to pass to the public transformations; the test id names it."""
    return request.param
