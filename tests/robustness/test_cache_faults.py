"""Disk-cache faults, end to end through compiler.value_and_grad in fresh processes.

A damaged entry (truncated, emptied, altered so its content no longer matches its hashed
name, unreadable) or damaged Numba machine-code files are rebuilt with a CacheWarning and the
answer is still right; an altered entry is never imported; a cache folder that cannot be
created or written degrades to a temporary one with one warning; a folder deleted while a
process runs is recreated. runtime/ has unit tests for the pieces; these go through the API.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, shutil, sys, warnings
    import numpy as np
    from runtime import cache
    import compiler
    import compiler.codegen.driver as drv

    drv.SMALL_LOOP = 0  # run (and so compile and cache) every loop kernel, small inputs or not
    LOSSES = [
        lambda W, x: np.sum(np.tanh(x @ W) ** 2),
        lambda W, x: np.sum(np.maximum(x @ W, 0.1) * 3.0) + np.mean(x),
        lambda W, x: np.sum(np.exp(-(x @ W) ** 2)),
        lambda W, x: np.max(np.sin(x @ W)) + np.sum(W * W),
    ]
    rng = np.random.default_rng(0)
    W, x = rng.normal(size=(4, 3)), rng.normal(size=(5, 4))
    results = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k, loss in enumerate(LOSSES):
            if k == 2 and "--delete-midway" in sys.argv:
                shutil.rmtree(cache.cache_root())  # another process cleared the cache
            value, g = compiler.value_and_grad(loss)(W, x)
            results.append([float(value), g.tolist()])
    print(json.dumps({
        "results": results,
        "stats": cache.cache_stats(),
        "warnings": [[w.category.__name__, str(w.message)] for w in caught
                     if issubclass(w.category, cache.CacheWarning)],
        "fallback": cache.cache_info()["fallback"],
    }))
    """
)


def _run(tmp_path: Path, cache: Path | str, *flags: str) -> dict:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO), GRADC_CACHE_DIR=str(cache), GRADC_COMPILE="eager")
    proc = subprocess.run(
        [sys.executable, str(script), *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> tuple[Path, dict]:
    """A cache folder filled by one clean run, and that run's report (the right answers)."""
    tmp = tmp_path_factory.mktemp("warm")
    report = _run(tmp, tmp / "cache")
    assert report["stats"]["written"] == 4 and not report["warnings"]
    return tmp / "cache", report


def _copy(warm_cache: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "cache"
    shutil.copytree(warm_cache, dst)
    return dst


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("gradc_*.py") if p.parent.name != "__pycache__")


def _same_answers(report: dict, want: dict) -> None:
    assert len(report["results"]) == len(want["results"])
    for (v, g), (wv, wg) in zip(report["results"], want["results"]):
        assert v == pytest.approx(wv, rel=1e-12)
        assert np.allclose(g, wg, rtol=1e-12, atol=1e-14)


def test_cache_faults_damaged_entries_are_rebuilt_with_a_warning(warm, tmp_path):
    cache, want = warm
    cache = _copy(cache, tmp_path)
    entries = _entries(cache)
    assert len(entries) == 4
    marker = tmp_path / "imported"
    truncated, emptied, altered, unreadable = entries
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    emptied.write_bytes(b"")
    # valid Python with a side effect, under the old name: its hash no longer matches
    altered.write_text(f"open({str(marker)!r}, 'w').close()\n" + altered.read_text())
    unreadable.unlink()
    unreadable.mkdir()  # reading it fails (even for root, unlike chmod 000)
    report = _run(tmp_path, cache)
    _same_answers(report, want)
    assert not marker.exists(), "an entry whose content does not match its hash was imported"
    messages = " | ".join(m for _, m in report["warnings"])
    assert report["stats"]["rebuilt"] == 4, report
    for word in ("truncated", "empty", "altered", "unreadable"):
        assert f"is {word}" in messages, messages
    assert all(c == "CacheWarning" for c, _ in report["warnings"])
    # rebuilt for good: the next process loads everything from disk, silently
    again = _run(tmp_path, cache)
    _same_answers(again, want)
    assert again["stats"]["disk"] == 4 and again["stats"]["rebuilt"] == 0
    assert not again["warnings"] and not marker.exists()


def test_cache_faults_damaged_numba_files_are_recompiled(warm, tmp_path):
    cache, want = warm
    cache = _copy(cache, tmp_path)
    files = sorted(cache.rglob("*.nbi")) + sorted(cache.rglob("*.nbc"))
    assert len(files) >= 8
    damages = [
        lambda d: d[: len(d) // 2],  # cut short (a crash before the data reached the disk)
        lambda d: b"",  # emptied (ext4 after a power loss, without fsync)
        lambda d: os.urandom(200),  # garbage
        lambda d: d[:-1],  # one byte short
    ]
    for k, f in enumerate(files):
        f.write_bytes(damages[k % len(damages)](f.read_bytes()))
    report = _run(tmp_path, cache)
    _same_answers(report, want)
    assert len(report["warnings"]) == 4, report["warnings"]  # one per damaged module
    assert all("Numba" in m for _, m in report["warnings"])
    again = _run(tmp_path, cache)
    _same_answers(again, want)
    assert not again["warnings"]


def test_cache_faults_folder_that_cannot_be_created_falls_back_with_one_warning(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    report = _run(tmp_path, blocker / "cache")  # mkdir fails: NotADirectoryError
    assert len(report["warnings"]) == 1, report["warnings"]
    assert "unusable" in report["warnings"][0][1] and "GRADC_CACHE_DIR" in report["warnings"][0][1]
    assert report["fallback"] is not None
    assert report["stats"]["written"] == 4
    assert len(report["results"]) == 4


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions"
)
def test_cache_faults_read_only_folder_falls_back_with_one_warning(warm, tmp_path):
    cache, want = warm
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        report = _run(tmp_path, ro / "cache")
    finally:
        os.chmod(ro, 0o755)
    _same_answers(report, want)
    assert len(report["warnings"]) == 1 and report["fallback"] is not None


def test_cache_faults_missing_folder_is_created_silently(warm, tmp_path):
    cache, want = warm
    report = _run(tmp_path, tmp_path / "does" / "not" / "exist")
    _same_answers(report, want)
    assert not report["warnings"] and report["fallback"] is None
    assert len(_entries(tmp_path / "does")) == 4


def test_cache_faults_folder_deleted_while_running_is_recreated(warm, tmp_path):
    cache, want = warm
    report = _run(tmp_path, _copy(cache, tmp_path), "--delete-midway")
    _same_answers(report, want)
    assert not report["warnings"]
    assert len(_entries(tmp_path / "cache")) == 2  # the two compiled after the deletion


def test_cache_faults_leftovers_of_a_crashed_writer_are_harmless(warm, tmp_path):
    cache, want = warm
    cache = _copy(cache, tmp_path)
    for entry in _entries(cache):
        (entry.parent / f".{entry.stem}.abc123.tmp").write_bytes(b"half a fi")
        (entry.parent / f"{entry.stem}.lock").write_bytes(b"")
    report = _run(tmp_path, cache)
    _same_answers(report, want)
    assert not report["warnings"] and report["stats"]["disk"] == 4, report
