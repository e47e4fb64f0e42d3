"""`gradc route show|calibrate` (compiler/cli/route.py): what the routing calibration holds,
and measuring it again on purpose after a measurement taken under load."""

from __future__ import annotations

import pytest

from compiler.cli import route
from compiler.codegen import calibrate, routing, simd
from tests.cli.util import run_gradc, subprocess_env
from tests.codegen.test_routing import fresh, inject  # noqa: F401  (fixture)


def test_route_show_without_a_calibration_says_so_and_lists_the_table_routing(fresh):  # noqa: F811
    text = route.show()
    assert "GRADC_ROUTE=auto, SIMD mode off: routing from table" in text
    assert "no calibration stored" in text
    assert str(calibrate.path_for(calibrate.key("off"))) in text
    for op, dt in routing.prior("off").library:
        assert f"{op} ({dt})" in text


def test_route_show_prints_the_stored_calibration(fresh):  # noqa: F811
    inject({("sin", "float64"), ("exp", "float32")})
    text = route.show()
    assert "routing from calibrated" in text
    rows = {tuple(line.split()[:2]): line.split()[-1] for line in text.splitlines()[3:-1]}
    assert rows[("sin", "float64")] == "library" and rows[("exp", "float32")] == "library"
    assert rows[("sin", "float32")] == "loop"
    assert text.splitlines()[-1] == "NumPy calls: exp (float32), sin (float64)"


def test_route_calibrate_replaces_the_stored_one_and_later_routing_uses_it(
    fresh,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    old = inject({("sin", "float64")})
    assert routing.current_routing().library == {("sin", "float64")}  # remembered now
    entries = tuple(
        calibrate.Entry(e.op, e.dtype, 1.0, 2.0, 0.5, 0.5, (e.op, e.dtype) == ("tanh", "float32"))
        for e in old.entries
    )
    new = calibrate.Calibration(calibrate.key(simd.mode()), entries, 1.5)
    monkeypatch.setattr(calibrate, "measure", lambda mode: new)  # the measurement itself:
    text = route.recalibrate()  # tests/codegen/test_routing.py
    assert text.startswith("measured in 1.50 s, stored in ")
    assert calibrate.load(calibrate.key(simd.mode())) == new
    assert routing.current_routing().library == {("tanh", "float32")}


def test_gradc_route_show_command(tmp_path):
    r = run_gradc(tmp_path, "route", "show", env=subprocess_env(tmp_path, GRADC_ROUTE="table"))
    assert r.returncode == 0, r.stderr
    assert "GRADC_ROUTE=table" in r.stdout and "routing from table" in r.stdout
