"""Cache behaviour across processes: concurrent writers, and Numba's machine-code cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import runtime
from runtime import cache

REPO = Path(runtime.__file__).resolve().parent.parent

NUMBA_SOURCE = """\
import numba


@numba.njit(cache=True)
def axpy(a, x, y):
    return a * x + y
"""

CHILD = """\
import json, os, sys, time
from pathlib import Path
from runtime import cache

cache.version_tag()  # import numba before the race, so the children really start together
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.005)
module = cache.load_module(Path(sys.argv[3]).read_text())
stats = module.axpy.stats
print(json.dumps({
    "value": module.axpy(2.0, 3.0, 1.0),
    "hits": sum(stats.cache_hits.values()),
    "misses": sum(stats.cache_misses.values()),
    "cache": cache.cache_stats(),
}))
"""


def _spawn(tmp_path: Path, cache_root: Path, name: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), **{cache.CACHE_ENV_VAR: str(cache_root)})
    args = [str(tmp_path / f"{name}.ready"), str(tmp_path / "go"), str(tmp_path / "source.py")]
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_children(tmp_path: Path, cache_root: Path, names: list[str]) -> list[dict]:
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "source.py").write_text(NUMBA_SOURCE)
    (tmp_path / "go").unlink(missing_ok=True)
    children = [_spawn(tmp_path, cache_root, name) for name in names]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"{n}.ready").exists() for n in names):
        assert time.monotonic() < deadline, "children did not start"
        assert all(c.poll() is None for c in children), children[0].communicate()
        time.sleep(0.01)
    (tmp_path / "go").touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out))
    for name in names:
        (tmp_path / f"{name}.ready").unlink()
    return results


def test_load_module_concurrent_processes_leave_one_valid_entry(cache_root, tmp_path):
    results = _run_children(tmp_path, cache_root, [f"p{i}" for i in range(4)])
    assert [r["value"] for r in results] == [7.0] * 4
    assert sum(r["cache"]["written"] for r in results) == 1  # one writer, the others read it
    assert all(r["cache"]["rebuilt"] == 0 for r in results)
    entries = sorted(cache.cache_dir().glob("*.py"))
    assert len(entries) == 1
    assert entries[0].read_text().split("\n", 1)[1] == NUMBA_SOURCE
    assert list(cache.cache_dir().glob(".*.tmp")) == []


def test_load_module_numba_cache_hits_in_fresh_process(cache_root, tmp_path):
    (first,) = _run_children(tmp_path, cache_root, ["first"])
    assert (first["hits"], first["misses"]) == (0, 1)
    pycache = cache.cache_dir() / "__pycache__"
    assert list(pycache.glob("*.nbi")) and list(pycache.glob("*.nbc"))
    (second,) = _run_children(tmp_path, cache_root, ["second"])
    assert second["cache"]["disk"] == 1
    assert (second["hits"], second["misses"]) == (1, 0)
    assert cache.clear_cache() == 1
    assert not pycache.exists()
