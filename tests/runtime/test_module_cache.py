from __future__ import annotations

import builtins
import re
import sys
import threading
import warnings
from pathlib import Path

import numba
import numpy as np
import platformdirs
import pytest

from runtime import cache
from runtime.cache import CacheWarning, load_module

SOURCE = "def add(x, y):\n    return x + y\n"


def _entry(module) -> Path:
    return Path(module.__file__)


def test_cache_root_honours_env_var(cache_root):
    assert cache.cache_root() == cache_root
    assert cache.cache_dir().parent.parent == cache_root
    assert _entry(load_module(SOURCE)).is_relative_to(cache_root)


def test_cache_root_defaults_to_user_cache_dir(monkeypatch):
    monkeypatch.delenv(cache.CACHE_ENV_VAR, raising=False)
    assert cache.cache_root() == Path(platformdirs.user_cache_dir("gradc", appauthor=False))


def test_cache_dir_is_namespaced_by_mode_and_versions(cache_root):
    tag = cache.version_tag()
    for part in (cache.GRADC_VERSION, np.__version__, numba.__version__, sys.implementation.name):
        assert part in tag
    assert cache.cache_dir("numba") == cache_root / "numba" / tag
    assert cache.cache_dir("numba-libmvec") != cache.cache_dir("numba")
    assert cache.version_tag("9.9") != tag
    assert re.fullmatch(r"[A-Za-z0-9._-]+", tag)


def test_load_module_writes_entry_with_hash_header(cache_root):
    module = load_module(SOURCE, prefix="fwd")
    assert module.add(2, 3) == 5
    path = _entry(module)
    assert path.parent == cache.cache_dir()
    match = re.fullmatch(r"fwd_([0-9a-f]{24})\.py", path.name)
    header, body = path.read_text().split("\n", 1)
    assert header.startswith("# gradc-content-sha256: " + match.group(1))
    assert body == SOURCE
    assert [p.name for p in path.parent.glob("*.tmp")] == []


def test_load_module_memoises_and_counts(cache_root):
    first = load_module(SOURCE)
    assert load_module(SOURCE) is first
    assert cache.cache_stats() == {"written": 1, "rebuilt": 0, "disk": 0, "memory": 1}


def test_load_module_reloads_from_disk_after_memory_is_cleared(cache_root):
    first = load_module(SOURCE)
    cache.clear_memory_cache()
    second = load_module(SOURCE)
    assert second is not first and second.add(1, 1) == 2
    assert cache.cache_stats()["disk"] == 1 and cache.cache_stats()["written"] == 0


def test_load_module_registers_unique_module_name(cache_root):
    module = load_module(SOURCE)
    assert sys.modules[module.__name__] is module
    assert module.__name__.startswith("gradc_gen_")
    assert module.add.__module__ == module.__name__
    other = load_module(SOURCE + "\nZ = 1\n")
    assert other.__name__ != module.__name__


def test_load_module_separates_prefixes_and_modes(cache_root):
    paths = {
        _entry(load_module(SOURCE, prefix=p, mode=m))
        for p in ("fwd", "bwd")
        for m in ("numba", "interp")
    }
    assert len(paths) == 4


def test_load_module_rejects_unsafe_names(cache_root):
    with pytest.raises(ValueError, match="prefix"):
        load_module(SOURCE, prefix="../x")
    with pytest.raises(ValueError, match="mode"):
        load_module(SOURCE, mode="a/b")


def _flag_source(flag: Path) -> str:
    # The altered module would leave a flag file behind and blow up if it ever ran.
    return f"open({str(flag)!r}, 'w').close()\nraise RuntimeError('altered code ran')\n"


def _truncate(path: Path, flag: Path) -> None:
    path.write_bytes(path.read_bytes()[:30])


def _empty(path: Path, flag: Path) -> None:
    path.write_bytes(b"")


def _alter_body(path: Path, flag: Path) -> None:
    header = path.read_text().split("\n", 1)[0]  # keep the valid header, swap the body
    path.write_text(header + "\n" + _flag_source(flag))


def _alter_same_length(path: Path, flag: Path) -> None:
    path.write_text(path.read_text().replace("x + y", "x - y"))


def _make_directory(path: Path, flag: Path) -> None:
    path.unlink()
    path.mkdir()  # reading it fails with IsADirectoryError, even as root
    (path / "junk").write_text("x")


@pytest.mark.parametrize(
    "damage", [_truncate, _empty, _alter_body, _alter_same_length, _make_directory]
)
def test_load_module_rebuilds_damaged_entry_without_running_it(cache_root, tmp_path, damage):
    flag = tmp_path / "altered-code-ran"
    path = _entry(load_module(SOURCE))
    cache.clear_memory_cache()
    damage(path, flag)
    with pytest.warns(CacheWarning, match="rebuilding"):
        module = load_module(SOURCE)
    assert module.add(5, 3) == 8
    assert not flag.exists()
    assert path.read_text().split("\n", 1)[1] == SOURCE
    assert cache.cache_stats()["rebuilt"] == 1
    cache.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_module(SOURCE).add(1, 2) == 3  # the rebuilt entry is valid


def test_load_module_runs_checked_bytes_not_the_file(cache_root, tmp_path, monkeypatch):
    # Swap the file between the check and the import: the module must still be the checked one.
    flag = tmp_path / "altered-code-ran"
    exec_module = cache._exec_module

    def swap_then_exec(name, path, text):
        path.write_text(_flag_source(flag))
        return exec_module(name, path, text)

    monkeypatch.setattr(cache, "_exec_module", swap_then_exec)
    assert load_module(SOURCE).add(2, 2) == 4
    assert not flag.exists()


def test_load_module_does_not_memoise_failing_source(cache_root):
    bad = "X = 1\nraise ValueError('broken generated code')\n"
    before = set(sys.modules)
    for _ in range(2):  # the second call runs the module again rather than serving a half module
        with pytest.raises(ValueError, match="broken generated code"):
            load_module(bad)
    assert set(sys.modules) == before
    assert cache.cache_stats()["memory"] == 0


def test_load_module_unusable_dir_falls_back_with_one_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(blocker / "cache"))
    cache.clear_memory_cache()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = load_module(SOURCE)
        second = load_module(SOURCE + "\nY = 2\n")
    assert [w.category for w in caught] == [CacheWarning]
    assert "unusable" in str(caught[0].message)
    assert first.add(1, 2) == 3 and second.Y == 2
    fallback = _entry(first).parent
    assert _entry(second).parent == fallback and not fallback.is_relative_to(blocker)
    assert cache.cache_info()["fallback"] == str(fallback)
    cache.clear_memory_cache()


def test_load_module_threads_get_same_module(cache_root):
    counter = "_gradc_test_exec_count"
    source = (
        "import builtins, time\n"
        f"builtins.{counter} = getattr(builtins, {counter!r}, 0) + 1\n"
        "time.sleep(0.05)\n"
    )
    start = threading.Barrier(8)
    results = []

    def worker() -> None:
        start.wait()
        results.append(load_module(source))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 8 and all(m is results[0] for m in results)
        assert getattr(builtins, counter) == 1  # the module body ran once
        stats = cache.cache_stats()
        assert stats["written"] == 1 and stats["memory"] == 7
    finally:
        vars(builtins).pop(counter, None)


def test_cache_info_counts_entries_and_bytes(cache_root):
    assert cache.cache_info()["entries"] == 0
    load_module(SOURCE)
    load_module(SOURCE, mode="other")
    info = cache.cache_info()
    assert info["path"] == str(cache_root) and info["entries"] == 2
    assert info["bytes"] >= 2 * len(SOURCE)
    # current: the folder of the mode this process loaded under last
    assert info["current"] == str(cache.cache_dir("other")) and info["fallback"] is None
    assert cache.cache_info("numba")["current"] == str(cache.cache_dir())


def test_clear_cache_removes_only_entries(cache_root):
    load_module(SOURCE)
    load_module(SOURCE, mode="other")
    (cache_root / "notes.txt").write_text("keep me")
    (cache.cache_dir() / "mine.py").write_text("keep me too")
    assert cache.clear_cache() == 2
    assert cache.cache_info()["entries"] == 0
    assert (cache_root / "notes.txt").exists() and (cache.cache_dir() / "mine.py").exists()
    assert not (cache_root / "other").exists()  # emptied folders go
    cache.clear_memory_cache()
    load_module(SOURCE)
    assert cache.cache_stats()["written"] == 1


def test_clear_memory_cache_keeps_loaded_modules_importable_for_lazy_compiles(cache_root):
    # regression: a kernel shared across stages compiled for a new signature after the memo
    # was cleared got Numba's '<dynamic>' module name, and its disk-cache entry then failed to
    # load in a later process (ModuleNotFoundError: No module named '<dynamic>')
    src = "import numba\n\n@numba.njit(cache=True)\ndef inc(x):\n    return x + 1\n"
    module = load_module(src)
    cache.clear_memory_cache()
    assert sys.modules[module.__name__] is module
    assert module.inc(1.5) == 2.5  # compiled now, after the clear
    (cres,) = module.inc.overloads.values()
    assert cres.fndesc.modname == module.__name__
