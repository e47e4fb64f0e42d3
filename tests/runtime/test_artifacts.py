"""The compiled-stages cache: its store (runtime/artifacts.py) and its key and guards
(compiler/stage_cache.py). In one process, on the interpreter: nothing compiles."""

from __future__ import annotations

import dataclasses
import hashlib
import warnings

import numpy as np
import pytest

from compiler import value_and_grad
from compiler.interpret import run_graph
from compiler.ir.digest import exact_digest
from compiler.pipeline import Options, Signature, Transform, compile
from compiler.plan import format_plan
from compiler.primitives import OPS
from compiler.stage_cache import stage_key
from compiler.stages import CachedStages
from runtime.artifacts import (
    artifact_dir,
    artifact_stats,
    clear_artifact_stats,
    load_artifact,
    store_artifact,
)
from runtime.cache import CacheWarning, cache_info, clear_cache

KEY = hashlib.sha256(b"a key").hexdigest()


def _loss(w, x):
    return np.sum(np.tanh(w * x + 0.5) ** 2)


def _args():
    rng = np.random.default_rng(0)
    return rng.standard_normal(5), rng.standard_normal(5)


def _compile(fun=_loss, args=None, opts=None):
    args = args or _args()
    opts = opts or Options(backend="interpret")
    return compile(fun, Signature(args, {}, list(args)), Transform("value_and_grad"), opts)


def test_store_and_load_round_trip(cache_root):
    assert load_artifact(KEY) is None
    assert store_artifact(KEY, b"payload\nwith lines")
    assert load_artifact(KEY) == b"payload\nwith lines"
    path = artifact_dir() / f"stage_{KEY[:24]}.pkl"
    assert path.exists() and cache_info()["bytes"] >= path.stat().st_size
    assert clear_cache() == 0 and not path.exists()  # cleared with the modules (not an entry)


def test_a_damaged_or_foreign_entry_is_a_miss(cache_root):
    store_artifact(KEY, b"payload")
    path = artifact_dir() / f"stage_{KEY[:24]}.pkl"
    path.write_bytes(path.read_bytes()[:-2])  # cut short
    with pytest.warns(CacheWarning, match="damaged"):
        assert load_artifact(KEY) is None
    # another key with the same 24-digit prefix owns the file: a miss, no warning
    other = KEY[:24] + "0" * 40
    store_artifact(other, b"theirs")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_artifact(KEY) is None
    with pytest.raises(ValueError, match="64 hex"):
        load_artifact("../../etc")
    with pytest.raises(ValueError, match="kind must be one of"):
        load_artifact(KEY, kind="../x")


def test_an_unwritable_folder_stores_nothing_and_warns_nothing(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GRADC_CACHE_DIR", str(blocker))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store_artifact(KEY, b"x") is False
        assert load_artifact(KEY) is None


def test_a_second_compile_loads_the_stages_and_computes_the_same(cache_root):
    clear_artifact_stats()
    first = _compile()
    second = _compile()
    assert artifact_stats()["stored"] == 1 and artifact_stats()["hits"] == 1
    a, b = first.stages.lowered[0].graph, second.stages.lowered[0].graph
    assert a is not b and str(a) == str(b)
    # the stages a call never reads unpickle on first read, and are the same stages
    assert isinstance(second.stages, CachedStages) and "grad" not in vars(second.stages)
    assert str(second.stages.grad) == str(first.stages.grad)
    assert str(second.stages.passes) == str(first.stages.passes)
    assert format_plan(second.stages.plan) == format_plan(first.stages.plan)
    assert second.stages.traced is not None and second.stages == dataclasses.replace(second.stages)
    args = list(_args())
    for x, y in zip(run_graph(a, args), run_graph(b, args)):
        np.testing.assert_array_equal(x, y)
    # the transformation's result through a hit, against the function itself
    v, g = value_and_grad(_loss, backend="interpret")(*args)
    assert v == pytest.approx(_loss(*args), rel=1e-14)
    eps, d = 1e-6, np.ones(5)
    fd = (_loss(args[0] + eps * d, args[1]) - _loss(args[0] - eps * d, args[1])) / (2 * eps)
    assert g @ d == pytest.approx(fd, rel=1e-6)


def test_the_key_names_constants_options_and_locations(cache_root):
    w, x = _args()
    base = _compile().stages.traced

    def traced(fun, **kw):
        return _compile(fun, **kw).stages.traced

    what, opts = ("grad", (0,)), Options(backend="interpret")
    key = stage_key(base, what, opts)
    # a constant one ulp away, another option, other differentiated inputs: other keys
    c = np.nextafter(0.5, 1.0)
    other = traced(lambda w, x: np.sum(np.tanh(w * x + c) ** 2))
    assert stage_key(other, what, opts) != key
    assert stage_key(base, what, Options(backend="interpret", memory="sqrt")) != key
    assert stage_key(base, ("grad", (0, 1)), opts) != key
    # the same function from another line: another key (stages carry source locations)
    moved = traced(lambda w, x: np.sum(np.tanh(w * x + 0.5) ** 2))
    assert exact_digest(moved) != exact_digest(base)
    # large constants count by their bytes, not their printed abbreviation
    big = np.linspace(0, 1, 100)
    nudged = big.copy()
    nudged[50] = np.nextafter(nudged[50], 2.0)
    ka = traced(lambda w, x: np.sum(w * x[0] * big), args=(big, x))
    kb = traced(lambda w, x: np.sum(w * x[0] * nudged), args=(big, x))
    assert exact_digest(ka) != exact_digest(kb)


def test_a_patched_registry_bypasses_the_cache(cache_root, monkeypatch):
    _compile()  # stored with the real tanh
    clear_artifact_stats()
    wrong = dataclasses.replace(OPS["tanh"], vjp=lambda ct, x, *, out: (ct * 0.0,))
    monkeypatch.setitem(OPS, "tanh", wrong)
    c = _compile()
    assert artifact_stats() == {"hits": 0, "misses": 0, "stored": 0, "damaged": 0}
    args = list(_args())
    grads = run_graph(c.stages.lowered[0].graph, args)[1]
    assert not np.any(grads)  # the patched rule ran: the cache did not answer


def test_the_cache_switches_off(cache_root, monkeypatch):
    monkeypatch.setenv("GRADC_STAGE_CACHE", "0")
    clear_artifact_stats()
    _compile()
    _compile()
    assert artifact_stats()["stored"] == 0 and artifact_stats()["hits"] == 0


def test_the_key_names_the_environment_that_may_change_a_decision(cache_root, monkeypatch):
    base = _compile().stages.traced
    what, opts = ("grad", (0,)), Options(backend="interpret")
    key = stage_key(base, what, opts)
    monkeypatch.setenv("GRADC_LOG", "debug")  # changes no decision: the same key
    assert stage_key(base, what, opts) == key
    monkeypatch.setenv("GRADC_SOME_MODE", "off")  # might: another key
    assert stage_key(base, what, opts) != key
