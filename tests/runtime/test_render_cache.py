"""The render cache (compiler/codegen/rendered.py): a lowered graph from the stage cache
renders once; a later compile of the same stage reuses the module text, which runs as the
freshly rendered one does. On the NumPy tier: nothing for Numba to compile."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.interpret import run_graph
from compiler.pipeline import Options, Signature, Transform, compile
from runtime.artifacts import artifact_dir, artifact_stats, clear_artifact_stats
from runtime.cache import CacheWarning, clear_cache


def _loss(w, x):
    return np.sum(np.tanh(w * x + 0.5) ** 2 + np.exp(-w) * x)


def _args():
    rng = np.random.default_rng(1)
    return rng.standard_normal((6, 70)), rng.standard_normal((6, 70))


def _compile():
    args = _args()
    opts = Options(backend="numba", compile="never")
    return compile(_loss, Signature(args, {}, list(args)), Transform("value_and_grad"), opts)


def _check(c) -> None:
    # the stage's module against the interpreter on the same lowered graph
    args = list(_args())
    want = run_graph(c.stages.lowered[0].graph, args)
    for got, ref in zip(c.fn(*args), want):
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-15)


def test_a_cached_stage_renders_once(cache_root):
    clear_artifact_stats()
    first = _compile()
    assert first.stages.lowered[0].key is not None
    assert artifact_stats("render")["stored"] == 1 and artifact_stats("render")["hits"] == 0
    second = _compile()
    assert artifact_stats("stage")["hits"] == 1 and artifact_stats("render")["hits"] == 1
    assert second.fn.source == first.fn.source and second.fn.module is first.fn.module
    _check(second)
    clear_cache()  # `gradc cache clear` removes render entries with the rest
    assert not list(artifact_dir().glob("render_*.pkl"))


def test_a_damaged_render_entry_is_rendered_again(cache_root):
    _compile()
    (path,) = artifact_dir().glob("render_*.pkl")
    path.write_bytes(path.read_bytes()[:-3])
    clear_artifact_stats()
    with pytest.warns(CacheWarning, match="damaged"):
        c = _compile()
    assert artifact_stats("render")["damaged"] == 1 and artifact_stats("render")["stored"] == 1
    _check(c)
    clear_artifact_stats()
    _check(_compile())
    assert artifact_stats("render")["hits"] == 1
