"""runtime/preload.py loads what Numba's disk cache holds for an njit function, before its
first call and compiling nothing; a stale or absent cache loads nothing (the first call then
compiles, as it always did)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import runtime

REPO = Path(runtime.__file__).resolve().parent.parent

MODULE = """\
import numba


@numba.njit(cache=True)
def add_one(x):
    return x + {step}
"""

CHILD = """\
import json, sys
sys.path.insert(0, sys.argv[1])
import mod
from runtime.preload import load_all, load_cached
loaded = load_all([mod.add_one]) if sys.argv[2] == "preload" else 0
before = len(mod.add_one.overloads)  # loaded ahead of the call
again = load_cached(mod.add_one)
value = mod.add_one(2.0)
hits = sum(mod.add_one.stats.cache_hits.values())
print(json.dumps({"loaded": loaded, "before": before, "again": again, "value": value,
                  "compiled": len(mod.add_one.overloads) - hits, "hits": hits}))
"""


def _child(folder: Path, how: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("NUMBA_CACHE_DIR", None)  # the cache beside the module, as gradc's modules have
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), how],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_preload_loads_the_cached_overload_and_compiles_nothing(tmp_path):
    (tmp_path / "mod.py").write_text(MODULE.format(step="1.0"))
    cold = _child(tmp_path, "preload")  # nothing cached yet: nothing loaded, the call compiles
    assert cold["loaded"] == 0 and cold["before"] == 0 and cold["compiled"] == 1
    warm = _child(tmp_path, "preload")
    assert warm["loaded"] == 1 and warm["before"] == 1 and warm["again"] == 0
    assert warm["compiled"] == 0 and warm["hits"] == 1 and warm["value"] == 3.0


def test_a_stale_cache_is_not_loaded(tmp_path):
    (tmp_path / "mod.py").write_text(MODULE.format(step="1.0"))
    _child(tmp_path, "call")  # fills the cache for the old source
    (tmp_path / "mod.py").write_text(MODULE.format(step="10.0"))  # a new stamp
    stale = _child(tmp_path, "preload")
    assert stale["loaded"] == 0 and stale["before"] == 0  # the preload compiled nothing
    assert stale["value"] == 12.0 and stale["compiled"] == 1  # the call compiled the new one


def test_plain_functions_load_nothing():
    from runtime.preload import load_all, load_cached

    assert load_cached(lambda x: x) == 0
    assert load_all([]) == 0
