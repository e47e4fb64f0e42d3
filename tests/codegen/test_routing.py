"""Per-host routing (compiler/codegen/routing.py, calibrate.py): the route pass follows the
calibration in each direction, every GRADC_ROUTE mode gives the interpreter's numbers, the
calibration is measured once per host (off the caller's thread) and reused by other processes,
and a damaged or foreign calibration file is ignored with a warning."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from compiler import value_and_grad
from compiler.codegen import calibrate, routing, simd
from compiler.codegen.prepare import lower_passes
from compiler.passes.route import routed
from compiler.primitives import OPS
from compiler.trace import trace

ROOT = Path(__file__).resolve().parents[2]


def f(x):
    return np.sum(np.tanh(x) * np.sin(x) + x * x)


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder, SIMD off, GRADC_ROUTE=auto, nothing remembered."""
    monkeypatch.setenv("GRADC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(simd.ENV_VAR, "0")
    monkeypatch.setenv(routing.ENV_VAR, "auto")
    routing.forget()
    yield tmp_path
    routing.forget()


def inject(library: set[tuple[str, str]], ties: frozenset = frozenset()) -> calibrate.Calibration:
    """Store a calibration for this host whose verdicts are `library` (and ties), fake times."""
    entries = tuple(
        calibrate.Entry(
            op, dt, 2.0, 1.0, 2.0, 0.5, None if (op, dt) in ties else (op, dt) in library
        )
        for op in calibrate.candidates()
        for dt in calibrate.DTYPES
    )
    cal = calibrate.Calibration(calibrate.key(simd.mode()), entries, 0.0)
    assert calibrate.store(cal)
    routing.forget()
    return cal


def routed_ops(dtype=np.float64) -> list[str]:
    g = trace(f, np.linspace(0.1, 1.0, 4000).astype(dtype))
    return sorted(n.op for n in lower_passes(g, "jit").graph.nodes if routed(n))


def test_every_recorded_library_op_is_calibrated():
    # the table (the prior) and the calibration decide the same set of ops
    recorded = {name for name, d in OPS.items() if d.library}
    assert recorded <= set(calibrate.candidates())
    assert {"exp", "tanh", "sin", "power"} <= set(calibrate.candidates())


def test_routing_follows_the_calibration_each_way(fresh):
    # the table routes tanh (f64) out and keeps sin in; a calibration may say the opposite
    assert routed_ops() == ["tanh"]
    inject({("sin", "float64")})
    assert routed_ops() == ["sin"]
    assert routing.current_routing().source == "calibrated"
    inject({("tanh", "float64"), ("sin", "float64"), ("tanh", "float32")})
    assert routed_ops() == ["sin", "tanh"]
    assert routed_ops(np.float32) == ["tanh"]  # the f32 sin is kept in its loop
    inject(set())
    assert routed_ops() == []


def test_ties_go_as_the_prior_says(fresh):
    # the table routes float64 tanh out and keeps sin in; a tie changes neither
    inject({("sin", "float64")}, ties=frozenset({("tanh", "float64"), ("sin", "float64")}))
    assert routed_ops() == ["tanh"]


def test_verdict_needs_one_side_clearly_faster():
    def verdict(loop: float, ufunc: float, pass_ns: float) -> bool | None:
        p = calibrate._Pair("exp", "float64", None, None, pass_ns)
        # the fastest block of each side counts: slower blocks are other processes' doing
        p.samples = [(loop * 3, ufunc), (loop, ufunc * 2), (loop * 1.5, ufunc * 5)]
        return p.entry().library

    m = calibrate.MARGIN
    assert verdict(10.0, 1.0, 0.5) is True
    assert verdict(m * 1.5 * 1.01, 1.0, 0.5) is True
    assert verdict(m * 1.5 * 0.99, 1.0, 0.5) is None
    assert verdict(1.5, 1.0, 0.5) is None
    assert verdict(1.5 / m * 0.99, 1.0, 0.5) is False
    assert verdict(0.5, 8.0, 0.5) is False  # NumPy's float64 sin on this host


def test_modes_force_each_path(fresh, monkeypatch):
    inject({("sin", "float64")})
    monkeypatch.setenv(routing.ENV_VAR, "table")
    assert routed_ops() == ["tanh"]
    assert routing.current_routing() == routing.prior()
    monkeypatch.setenv(routing.ENV_VAR, "loop")
    assert routed_ops() == []
    monkeypatch.setenv(routing.ENV_VAR, "library")
    assert routed_ops() == ["sin", "tanh"]
    monkeypatch.setenv(routing.ENV_VAR, "fastest")
    with pytest.raises(ValueError, match="GRADC_ROUTE='fastest'"):
        routing.current_routing()


def test_table_with_simd_keeps_vectorized_ops_but_pow_in_loops(fresh, monkeypatch):
    monkeypatch.setenv(simd.ENV_VAR, "1")
    table = routing.prior()
    if simd.mode() == "off":  # no libmvec here: the prior is the records' table
        assert table == routing.prior("off")
    else:
        assert {op for op, _ in table.library} == {"power"}


@pytest.mark.compiled
@pytest.mark.parametrize("mode", ["loop", "library"])
def test_both_paths_compute_what_the_interpreter_does(fresh, monkeypatch, mode):
    monkeypatch.setenv(routing.ENV_VAR, mode)

    def g(x, y):
        return np.sum(np.tanh(x) * np.exp(y) + np.log1p(x * x) * np.sin(y) + x**y)

    rng = np.random.default_rng(0)
    for dt in (np.float64, np.float32):
        x, y = (rng.uniform(0.1, 1.5, 300).astype(dt) for _ in range(2))
        low = lower_passes(trace(g, x, y), "jit").graph
        n_routed = sum(routed(n) for n in low.nodes)
        assert n_routed == (5 if mode == "library" else 0)
        want = value_and_grad(g, argnums=(0, 1), backend="interpret")(x, y)
        got = value_and_grad(g, argnums=(0, 1), compile="eager")(x, y)
        tol = 1e-12 if dt == np.float64 else 2e-6
        np.testing.assert_allclose(got[0], want[0], rtol=tol)
        for a, b in zip(got[1], want[1]):
            assert a.dtype == b.dtype == dt
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_stage_cache_keys_on_the_routing(fresh):
    # same function, same environment: only the stored calibration differs between the two
    # compiles, and the second must not load the stages the first lowered
    x = np.linspace(0.1, 1.0, 4000)
    inject({("sin", "float64")})
    first = value_and_grad(f).stages(x)
    inject({("tanh", "float64")})
    second = value_and_grad(f).stages(x)
    ops = [sorted({n.op for n in s.lowered[0].graph.nodes if routed(n)}) for s in (first, second)]
    assert ops == [["sin"], ["tanh"]]


def test_nothing_is_measured_without_numba(fresh):
    # compile="never" imports no Numba: the prior decides and no calibration is queued
    from runtime import background

    before = background.stats()["submitted"]
    x = np.linspace(0.1, 1.0, 100)
    value_and_grad(f, compile="never")(x)
    assert background.stats()["submitted"] == before
    assert not list(fresh.glob("routing/*/*.json"))


def test_damaged_or_foreign_file_is_ignored_with_a_warning(fresh, caplog, monkeypatch):
    k = calibrate.key(simd.mode())
    path = calibrate.path_for(k)
    path.parent.mkdir(parents=True)
    table = routing.prior()
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="gradc"):
        assert routing.current_routing() == table
    assert str(path) in caplog.text and "ignored" in caplog.text
    caplog.clear()
    # another host's file under this host's name (copied between machines)
    cal = inject({("sin", "float64")})
    data = json.loads(path.read_text())
    data["key"]["cpu"] = "another CPU"
    path.write_text(json.dumps(data))
    routing.forget()
    with caplog.at_level(logging.WARNING, logger="gradc"):
        assert routing.current_routing() == table
    assert "another host's" in caplog.text
    # the next calibration writes over it
    monkeypatch.setattr(calibrate, "measure", lambda mode: cal)
    monkeypatch.setenv(routing.ENV_VAR, "calibrated")
    assert routing.current_routing().library == {("sin", "float64")}
    assert calibrate.load(k) == cal
    # `gradc cache clear` removes it with every other cache entry
    from runtime.cache import clear_cache

    clear_cache()
    assert not path.exists()


_CHILD = textwrap.dedent(
    """
    import threading, time
    import numpy as np
    from compiler import pipeline, value_and_grad
    from compiler.codegen import calibrate, routing, simd
    from runtime import background

    measured = []
    real = calibrate.measure

    def spy(mode):
        # which thread measures, and how many stage compiles had finished by then
        measured.append((threading.current_thread().name, background.stats()["compiled"]))
        return real(mode)

    calibrate.measure = spy
    snapshot = pipeline.current_routing
    used = []  # where each compile's routing came from

    def spy_routing(**kw):
        used.append(snapshot(**kw).source)
        return snapshot(**kw)

    pipeline.current_routing = spy_routing
    f = value_and_grad(lambda x: np.sum(np.tanh(x) * np.sin(x)))
    f(np.linspace(0.1, 1.0, 5000))  # default mode: the NumPy tier answers, Numba compiles
    print("first", used)
    assert background.wait_idle(300)
    again = routing.current_routing()
    stored = calibrate.load(calibrate.key(simd.mode()))
    print("then", again.source, again.library == stored.library(routing.prior().library))
    print("measured", measured)
    """
)


def test_calibration_is_measured_once_in_the_background_and_reused(tmp_path):
    env = {
        **os.environ,
        "GRADC_CACHE_DIR": str(tmp_path),
        "GRADC_SIMD": "0",
        "GRADC_ROUTE": "auto",
        "GRADC_COMPILE": "background",
        "PYTHONPATH": str(ROOT),
    }

    def child() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    first = child()
    # the first process compiled with the prior, answered on the NumPy tier and measured on
    # the compile thread, after the stage's compile (which was queued behind it)
    assert first[0] == "first ['table']"
    assert first[1] == "then calibrated True"
    assert first[2] == "measured [('gradc-compile', 1)]"
    files = list(tmp_path.glob("routing/*/calibration_*.json"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    # a second process finds it: calibrated from its first decision, nothing measured
    second = child()
    assert second[0] == "first ['calibrated']"
    assert second[1] == "then calibrated True"
    assert second[2] == "measured []"
    assert files[0].stat().st_mtime_ns == stamp
    entries = json.loads(files[0].read_text())["entries"]
    assert {(e["op"], e["dtype"]) for e in entries} == {
        (op, dt) for op in calibrate.candidates() for dt in calibrate.DTYPES
    }
    assert all(e["loop_ns"] > 0 and e["ufunc_ns"] > 0 for e in entries)
