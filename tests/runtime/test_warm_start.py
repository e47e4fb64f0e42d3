"""A warm start compiles nothing: a second process whose disk cache holds the function loads
its stages (compiler/stage_cache.py) and its kernels (Numba's cache), and compiles no kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import runtime

REPO = Path(runtime.__file__).resolve().parent.parent

# 6000 elements: over the small-loop threshold, so the first call runs (and compiles) kernels
CHILD = """\
import json
import numpy as np
from compiler import value_and_grad
from compiler.codegen.compile import compile_stats
from runtime.artifacts import artifact_stats

def loss(w, x):
    h = x
    for t in range(6):
        h = h + 0.1 * (w * np.sin(h) - h + 0.01 * t)
    return np.sum(h * h)

rng = np.random.default_rng(0)
w, x = rng.standard_normal(6000), rng.standard_normal(6000)
v, g = value_and_grad(loss, argnums=(0, 1))(w, x)
s = compile_stats()
print(json.dumps({
    "value": float(v), "gw": g[0].tolist()[:50], "gx": g[1].tolist()[:50],
    "compiled": s.compiled, "hits": s.cache_hits, "kernels": s.kernels,
    "stages": artifact_stats(), "render": artifact_stats("render"),
}))
"""


def _loss_np(w, x):
    """The child's loss and its gradient, by hand (the reference)."""
    hs = [x]
    for t in range(6):
        h = hs[-1]
        hs.append(h + 0.1 * (w * np.sin(h) - h + 0.01 * t))
    h = hs[-1]
    gh, gw = 2 * h, np.zeros_like(w)
    for t in reversed(range(6)):
        h = hs[t]
        gw += gh * 0.1 * np.sin(h)
        gh = gh * (1 + 0.1 * (w * np.cos(h) - 1))
    return float(np.sum(hs[-1] ** 2)), gw, gh


def _child(tmp_path: Path, cache: Path) -> dict:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO), GRADC_CACHE_DIR=str(cache))
    env["GRADC_COMPILE"] = "eager"  # compiled code from the first call (no background tier)
    env.pop("GRADC_STAGE_CACHE", None)
    env.pop("GRADC_BACKEND", None)
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_with_a_warm_cache_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    cold = _child(tmp_path, cache)
    warm = _child(tmp_path, cache)
    assert cold["compiled"] > 0 and cold["stages"]["stored"] == 1
    assert warm["compiled"] == 0, warm
    assert warm["hits"] == cold["compiled"]  # every kernel loaded from Numba's cache
    assert warm["stages"] == {"hits": 1, "misses": 0, "stored": 0, "damaged": 0}
    # and renders no module: each one codegen rendered cold comes from the render cache
    assert cold["render"]["stored"] >= 1
    hits = cold["render"]["stored"]
    assert warm["render"] == {"hits": hits, "misses": 0, "stored": 0, "damaged": 0}
    # the same answer, and the right one
    assert warm["value"] == cold["value"] and warm["gw"] == cold["gw"]
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal(6000), rng.standard_normal(6000)
    value, gw, gx = _loss_np(w, x)
    np.testing.assert_allclose(warm["value"], value, rtol=1e-12)
    np.testing.assert_allclose(warm["gw"], gw[:50], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(warm["gx"], gx[:50], rtol=1e-10, atol=1e-12)
