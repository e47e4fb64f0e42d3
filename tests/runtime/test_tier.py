"""Tiered execution (docs/tiers.md): the NumPy tier answers the first call, a background thread
compiles, the stage switches; compile= and GRADC_COMPILE; faults keep the NumPy tier."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from compiler import grad, jit, value_and_grad, vjp
from compiler import pipeline as pl
from compiler.codegen import CompiledStage
from runtime import background
from runtime.tier import TieredStage

REPO = Path(__file__).resolve().parents[2]


def mlp(p, x, y):
    h = np.tanh(x @ p["W"] + p["b"])
    return np.mean((h @ p["V"] - y) ** 2) + 0.1 * np.sum(np.exp(-(p["b"] ** 2)))


def _data(batch=8):
    rng = np.random.default_rng(0)
    p = {"W": rng.normal(size=(3, 5)), "b": rng.normal(size=5), "V": rng.normal(size=(5, 1))}
    return p, rng.normal(size=(batch, 3)), rng.normal(size=(batch, 1))


def _same(got, want):
    (v, g), (wv, wg) = got, want
    assert v == pytest.approx(wv, rel=1e-12)
    for k in wg:
        np.testing.assert_allclose(g[k], wg[k], rtol=1e-11, atol=1e-13)


def _stage(f) -> object:
    (spec,) = f._cache.values()
    return spec.fn


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADC_CACHE_DIR", str(tmp_path_factory.mktemp("tier_cache")))
        yield


def test_tier_import_compiler_does_not_import_numba():
    code = (
        "import sys, compiler; print(sorted(m for m in ('numba', 'llvmlite') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"


def test_tier_background_answers_on_numpy_then_switches(cache):
    args = _data()
    want = value_and_grad(mlp, backend="interpret")(*args)
    f = value_and_grad(mlp, compile="background")
    _same(f(*args), want)  # the first call: the NumPy tier
    stage = _stage(f)
    assert isinstance(stage, TieredStage)
    assert stage.wait(120), stage.error
    assert stage.tier == "compiled" and isinstance(stage.compiled, CompiledStage)
    assert stage.compiled.driver_kind == "python" and stage.compiled.kernel_count > 0
    for _ in range(3):  # the fast path now runs the compiled stage
        _same(f(*args), want)


def test_tier_vjp_switches_both_stages(cache):
    x = np.linspace(-1.0, 1.0, 7)
    ct = np.linspace(0.5, 2.0, 7)

    def f(x):
        return np.sin(x) * np.exp(x)

    want = ct * (np.cos(x) * np.exp(x) + np.sin(x) * np.exp(x))
    before = background.stats()
    out, pull = vjp(f, x, compile="background")
    np.testing.assert_allclose(out, f(x), rtol=1e-12)
    np.testing.assert_allclose(pull(ct)[0], want, rtol=1e-12)  # the backward's first call
    assert background.wait_idle(120)
    after = background.stats()
    assert after["compiled"] - before["compiled"] == 2  # forward and backward
    assert after["failed"] == before["failed"]
    out, pull = vjp(f, x, compile="background")  # both stages compiled now
    np.testing.assert_allclose(out, f(x), rtol=1e-12)
    np.testing.assert_allclose(pull(ct)[0], want, rtol=1e-12)


def test_tier_never_and_eager(cache):
    args = _data()
    want = value_and_grad(mlp, backend="interpret")(*args)
    never = value_and_grad(mlp, compile="never")
    _same(never(*args), want)
    stage = _stage(never)
    assert isinstance(stage, CompiledStage) and stage.driver_kind == "numpy"
    assert stage.kernel_count == 0 and "numba" not in stage.source
    eager = value_and_grad(mlp, compile="eager")
    _same(eager(*args), want)
    assert _stage(eager).driver_kind == "python"


def test_tier_compile_option_and_env_are_checked(monkeypatch):
    with pytest.raises(ValueError, match=r"compile='later'.*background.*eager.*never"):
        grad(mlp, compile="later")
    monkeypatch.setenv("GRADC_COMPILE", "sometimes")
    with pytest.raises(ValueError, match="GRADC_COMPILE='sometimes'"):
        jit(np.sin)
    monkeypatch.setenv("GRADC_COMPILE", "eager")
    assert jit(np.sin).opts.compile == "eager"
    assert jit(np.sin, compile="never").opts.compile == "never"  # the argument wins


def test_tier_failed_compile_keeps_numpy_tier_and_warns_once(cache, monkeypatch, caplog):
    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl, "compile_graph", broken)
    args = _data(batch=6)
    want = value_and_grad(mlp, backend="interpret")(*args)
    f = value_and_grad(mlp, compile="background")
    with caplog.at_level(logging.WARNING, logger="gradc"):
        _same(f(*args), want)
        stage = _stage(f)
        assert not stage.wait(60)
        for _ in range(3):
            _same(f(*args), want)
    assert isinstance(stage.error, OSError) and stage.tier == "numpy"
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    msg = warned[0].getMessage()
    assert "value_and_grad(mlp)" in msg and "No space left on device" in msg
    assert "NumPy tier" in msg


def test_tier_two_threads_during_the_switch_get_right_results(cache, monkeypatch):
    real = pl.compile_graph
    started = threading.Event()

    def slow_build(*a, **k):  # a compile that takes a while, so calls straddle the switch
        started.set()
        time.sleep(0.3)
        return real(*a, **k)

    monkeypatch.setattr(pl, "compile_graph", slow_build)
    rng = np.random.default_rng(3)
    inputs = [_data(batch=9) for _ in range(2)]
    inputs = [({k: v + rng.normal(size=v.shape) for k, v in p.items()}, x, y) for p, x, y in inputs]
    wants = [value_and_grad(mlp, backend="interpret")(*a) for a in inputs]
    f = value_and_grad(mlp, compile="background")
    f(*inputs[0])
    stage = _stage(f)
    assert started.wait(60)
    errors, tiers = [], set()

    def worker(k):
        try:
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline:
                tier = stage.tier
                _same(f(*inputs[k]), wants[k])
                tiers.add(tier)
                if tier == "compiled":
                    for _ in range(20):
                        _same(f(*inputs[k]), wants[k])
                    return
        except BaseException as err:  # reported in the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert stage.wait(1) and tiers == {"numpy", "compiled"}


def test_tier_logs_start_and_end_of_a_background_compile(cache, caplog):
    f = jit(lambda x: np.cos(x) * x + 1.0, compile="background")
    x = np.linspace(0.0, 1.0, 11)
    with caplog.at_level(logging.INFO, logger="gradc"):
        np.testing.assert_allclose(f(x), np.cos(x) * x + 1.0, rtol=1e-12)
        assert background.wait_idle(120)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "background compile of jit(<lambda>): started" in text
    assert "background compile of jit(<lambda>): ready in" in text and "njit" in text


EXIT_CHILD = textwrap.dedent(
    """
    import os, sys, numpy as np
    from compiler import value_and_grad
    from runtime import background
    def loss(w, x):
        return np.sum(np.tanh(x * w) ** 2 + np.sin(w))
    f = value_and_grad(loss, compile=sys.argv[1])
    v, g = f(np.linspace(0.1, 1.0, 50), np.linspace(-1.0, 1.0, 50))
    print(repr(float(v)), flush=True)
    if sys.argv[1] == "background":
        import time; time.sleep(0.8)
        os._exit(0)  # mid-compile: the background thread dies with the process
    """
)


def test_tier_exit_during_a_background_compile_leaves_no_partial_entry(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(EXIT_CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO), GRADC_CACHE_DIR=str(tmp_path / "cache"))

    def run(mode):
        proc = subprocess.run(
            [sys.executable, str(script), mode], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    first = run("background")
    leftovers = [p.name for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
    second = run("eager")  # loads whatever the first process left, compiles the rest
    assert first.stdout.split()[0] == second.stdout.split()[0]
    assert "CacheWarning" not in second.stderr


def test_tier_helper_process_compiles_and_this_process_only_loads(tmp_path, monkeypatch):
    from compiler.codegen import compile_stats

    monkeypatch.setenv("GRADC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GRADC_COMPILE_IN", "process")
    args = _data(batch=5)
    before = compile_stats()

    def mlp_helper(p, x, y):  # a function (and module) of its own: nothing compiled yet
        return mlp(p, x, y) + 0.25 * np.sum(np.sin(p["V"]))

    want = value_and_grad(mlp_helper, backend="interpret")(*args)
    f = value_and_grad(mlp_helper, compile="background")
    _same(f(*args), want)
    stage = _stage(f)
    assert stage.wait(300), stage.error
    after = compile_stats()
    assert after.compiled == before.compiled  # Numba compiled in the helper, not here
    assert after.cache_hits > before.cache_hits
    _same(f(*args), want)


def test_tier_compile_in_is_checked(monkeypatch):
    monkeypatch.setenv("GRADC_COMPILE_IN", "fibre")
    with pytest.raises(ValueError, match="GRADC_COMPILE_IN='fibre'"):
        value_and_grad(mlp, compile="background")(*_data())


def test_tier_numpy_loops_reuse_dead_temporaries():
    # the NumPy tier runs a fused loop as one NumPy call per op; a dead temporary is written
    # over instead of allocating a new array per op (a fresh large array per op cost ~0.2 s
    # of page faults each on 2**22 elements). Values must equal the interpreter's.
    def loss(x):
        t = np.tanh(x)
        u = np.exp(-0.5 * x * x) * t + np.log1p(x * x) * np.sin(x)
        return np.sum(u / (1.0 + np.exp(-0.5 * x * x)) ** 2 + 0.1 * t)

    x = np.linspace(-2.0, 2.0, 64)
    fn = value_and_grad(loss, compile="never")
    st = fn.stages(x)
    (low,) = st.lowered
    stage = pl.lower(low, "numba", "never")
    allocs = [ln for ln in stage.source.splitlines() if "= np." in ln and "np.empty" not in ln]
    ops = sum(len(n.attrs["body"].nodes) for n in low.graph.nodes if n.op == "fused")
    assert ops > 20 and 4 * len(allocs) <= ops, stage.source  # one array per op before
    got = fn(x)
    want = value_and_grad(loss, backend="interpret")(x)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-15)


def test_tier_warms_up_on_zeros_only_where_values_cannot_matter():
    # the caller copies its inputs for the warm-up only where values could steer what the
    # compiled stage runs (compiler/codegen/warmup.py); elsewhere the job makes zeros itself
    from runtime.tier import sample_of, zeros_sample

    def sample_kind(fn, *args):
        (low, *_) = fn.stages(*args).lowered
        stage = pl.lower(low, "numba", "background")
        assert isinstance(stage, TieredStage)
        return stage._sample

    p, x, y = _data()
    assert sample_kind(value_and_grad(mlp), p, x, y) is zeros_sample
    idx = np.array([2, 0, 1])
    assert sample_kind(grad(lambda w, i: np.sum(w[i] ** 2)), x[0], idx) is sample_of
    spd = np.eye(3) * 2.0
    assert sample_kind(grad(lambda a: np.sum(np.linalg.cholesky(a))), spd) is sample_of
    # an elementwise bool (max's gradient compares x with the max; a mask in `where`, which
    # is also what a masked sum `a[a > 0]` traces to) is value-free; an integer is not
    v = np.linspace(-1.0, 1.0, 6)
    assert sample_kind(grad(lambda a: np.max(a * a)), v) is zeros_sample
    assert sample_kind(grad(lambda a: np.sum(np.where(a > 0, a, 2 * a))), v) is zeros_sample
    assert sample_kind(grad(lambda a: np.sum(a * (a > 0).astype(np.int64))), v) is sample_of
    flat = (np.ones((2, 3)), 1.5, np.arange(3))
    zeros = zeros_sample(flat)()  # made by the job, not on the caller's thread
    assert zeros[1] == 1.5 and not zeros[0].any() and zeros[0].dtype == np.float64
    assert zeros[0] is not flat[0] and zeros[0].shape == (2, 3)


def test_tier_zeros_warm_up_switches_without_warnings(cache, scalar_libm):
    # log1p(-1) on the zeros sample, a NumPy call in the compiled driver (routed, with SIMD
    # off): -inf and a divide warning in the warm-up, which the caller must not see
    f = jit(lambda x: np.log1p(x - 1.0) * x, compile="background")
    x = np.linspace(0.5, 2.0, 9)
    want = np.log1p(x - 1.0) * x
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_allclose(f(x), want, rtol=1e-13)
        stage = _stage(f)
        assert stage._sample.__name__ == "zeros_sample"
        assert stage.wait(120), stage.error
    assert stage.tier == "compiled"
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    np.testing.assert_allclose(f(x), want, rtol=1e-13)


def test_tier_stage_store_runs_on_the_compile_thread_before_the_job(cache, monkeypatch):
    # the stage cache's and the render cache's stores are for later processes: the
    # background thread does them after the first call, before that stage's compile (which
    # fails here, to compile nothing)
    from compiler import stage_cache

    seen = []
    store = stage_cache.store_artifact

    def spy_store(key, payload):
        seen.append(("store", threading.current_thread().name))
        return store(key, payload)

    def no_compile(*args):
        seen.append(("compile", threading.current_thread().name))
        raise RuntimeError("not compiled in this test")

    from compiler.codegen import compile as codegen_compile

    rendered = codegen_compile.store_rendered

    def spy_render(rkey, gen):
        seen.append(("render", threading.current_thread().name))
        return rendered(rkey, gen)

    monkeypatch.setattr(stage_cache, "store_artifact", spy_store)
    monkeypatch.setattr(codegen_compile, "store_rendered", spy_render)
    monkeypatch.setattr(pl, "_background_build", no_compile)

    def stored_later(x):
        return np.sum(np.sin(x) * 3.25 + x)

    f = jit(stored_later, compile="background")
    x = np.linspace(0.0, 1.0, 5)
    np.testing.assert_allclose(f(x), np.sum(np.sin(x) * 3.25 + x), rtol=1e-13)
    assert background.wait_idle(60)
    assert seen == [
        ("store", "gradc-compile"),
        ("render", "gradc-compile"),
        ("compile", "gradc-compile"),
    ]
    assert _stage(f).tier == "numpy" and isinstance(_stage(f).error, RuntimeError)
    seen.clear()
    np.testing.assert_allclose(jit(stored_later, compile="never")(x), f(x), rtol=0)
    assert seen == []  # the second transform loads the stored stages
