"""The on-disk cache of generated Python modules, and the in-process memo in front of it.

Layout: `<root>/<mode>/<version tag>/<prefix>_<hash24>.py`, where root is `$GRADC_CACHE_DIR`
or the platform's user cache folder, mode names the code-generation mode ("numba", or
"numba-libmvec1-avx512": one per SIMD mode, compiler/codegen/simd.py) and the version tag
names everything the machine code depends on.
Numba's `cache=True` keeps its machine code next to each entry in `__pycache__`.

An entry is one header line `# gradc-content-sha256: <digest>` followed by the generated
source, byte for byte. `digest` is the sha256 of the version tag, the mode and the source;
the file name holds its first 24 hex digits. The header lets a tool that lacks the source
(`cache_info`, a future worker loading by hash) check an entry; `load_module` has the source,
so it compares the whole file with the bytes it expects, which is stronger than comparing
hashes. Tracebacks in generated code are therefore one line below the line in `source`.

Safety: entries are written to a temporary file in the same folder, fsynced and renamed over
the target under a per-entry file lock, so no process sees half a file. The module is compiled
from the bytes that were checked, never re-read from disk (and never from a stale `.pyc`), so
an entry altered after the check cannot run. A damaged entry is rebuilt with a `CacheWarning`,
and so are Numba's index/machine-code files for it that no longer parse (Numba does not fsync
them, and raises from inside the first call on a damaged one instead of recompiling).
A cache folder that cannot be created or written degrades, with one `CacheWarning`, to a
temporary folder removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import os
import pickletools
import platform
import re
import shutil
import sys
import tempfile
import threading
import types
import warnings
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from runtime.bytecode import compile_cached
from runtime.numba_import import import_numba
from runtime.version import VERSION

__all__ = [
    "CACHE_ENV_VAR",
    "GRADC_VERSION",
    "CacheWarning",
    "cache_dir",
    "cache_info",
    "cache_root",
    "cache_stats",
    "clear_cache",
    "clear_memory_cache",
    "load_module",
    "version_tag",
]

GRADC_VERSION = VERSION
CACHE_ENV_VAR = "GRADC_CACHE_DIR"

_HEADER = "# gradc-content-sha256: "
_LOCK_TIMEOUT_S = 120.0
_PREFIX_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENTRY_RE = re.compile(r"[A-Za-z0-9_]+_[0-9a-f]{24}\.py")
# Everything the cache writes starts with an entry's stem: the entry, its lock, a temporary
# file left by a crash (leading dot), Numba's `<stem>.<func>-<line>.pyXY.nbi/.nbc` files.
_OWNED_RE = re.compile(r"\.?[A-Za-z0-9_]+_[0-9a-f]{24}\.")


class CacheWarning(UserWarning):
    """A cache entry or folder was unusable; gradc rebuilt it or fell back to a temporary one."""


_lock = threading.Lock()  # guards every dict below
_memo: dict[tuple[str, str], types.ModuleType] = {}
_key_locks: dict[tuple[str, str], threading.Lock] = {}
_fallbacks: dict[Path, Path] = {}
_stats = {"written": 0, "rebuilt": 0, "disk": 0, "memory": 0}
# the code-generation mode of the latest `load_module` (the compiler picks one per SIMD setting)
_last_mode = ["numba"]


def cache_root() -> Path:
    """Return `$GRADC_CACHE_DIR` if set, else the platform's user cache folder for gradc."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gradc", appauthor=False))


@functools.cache
def version_tag(version: str | None = None) -> str:
    """Return the folder name that namespaces entries by gradc, library, Python and CPU."""
    import_numba()
    import llvmlite
    import llvmlite.binding as ll
    import numba
    from numba.core import config

    cpu = config.CPU_NAME or ll.get_host_cpu_name()  # what Numba itself targets
    parts = [
        f"gradc{version or GRADC_VERSION}",
        sys.implementation.cache_tag or f"py{sys.version_info[0]}{sys.version_info[1]}",
        f"np{np.__version__}",
        f"nb{numba.__version__}",
        f"llvmlite{llvmlite.__version__}",
        platform.machine() or "unknown",
        cpu,
    ]
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))


def cache_dir(mode: str = "numba", version: str | None = None) -> Path:
    """Return the folder for `mode` entries under the cache root (not created here)."""
    _check_name("mode", mode, _MODE_RE)
    return cache_root() / mode / version_tag(version)


def load_module(source: str, *, prefix: str = "gradc", mode: str = "numba") -> types.ModuleType:
    """Return the module for generated `source`, from memory, from disk, or newly written."""
    _check_name("prefix", prefix, _PREFIX_RE)
    _check_name("mode", mode, _MODE_RE)
    tag = version_tag()
    _last_mode[0] = mode
    digest = hashlib.sha256(f"{tag}\n{mode}\n{source}".encode()).hexdigest()
    memo_key = (prefix, digest)
    module = _memo.get(memo_key)
    if module is None:
        with _key_lock(memo_key):
            module = _memo.get(memo_key)  # another thread may have loaded it while we waited
            if module is None:
                stem = f"{prefix}_{digest[:24]}"
                text = f"{_HEADER}{digest}\n{source}"
                path, how = _materialize(mode, stem, text.encode())
                _scrub_numba_files(path)
                module = _exec_module(f"gradc_gen_{stem}", path, text)
                with _lock:
                    _memo[memo_key] = module
                    _stats[how] += 1
                    if how == "rebuilt":
                        _stats["written"] += 1
                return module
    with _lock:
        _stats["memory"] += 1
    return module


def cache_stats() -> dict[str, int]:
    """Return counts of entries written (of which rebuilt), loaded from disk, served from memory."""
    with _lock:
        return dict(_stats)


def clear_memory_cache() -> None:
    """Forget loaded modules and zero `cache_stats` (tests, benchmarks); disk is untouched."""
    with _lock:
        # Loaded modules stay in sys.modules: their kernels may still be shared (codegen keeps
        # one dispatcher per kernel name) and compile lazily for a new type signature. Numba
        # finds a kernel's module through sys.modules; without it the kernel is compiled as
        # '<dynamic>' and its disk-cache entry cannot be loaded by a later process.
        _memo.clear()
        _key_locks.clear()
        for key in _stats:
            _stats[key] = 0


def cache_info(mode: str | None = None) -> dict[str, Any]:
    """Return the cache root, the current folder (of `mode`; default: the mode this process
    last loaded a module under, "numba" before any), and the entry count and bytes under the
    root."""
    root = cache_root()
    entries = 0
    total = 0
    for _folder, files in _owned_files(root):
        for path in files:
            with suppress(OSError):
                total += path.stat().st_size
                entries += _is_entry(path)
    with _lock:
        mode = mode or _last_mode[0]
    current = cache_dir(mode)
    with _lock:
        fallback = _fallbacks.get(current)
    return {
        "path": str(root),
        "current": str(current),
        "entries": entries,
        "bytes": total,
        "fallback": str(fallback) if fallback is not None else None,
    }


def clear_cache() -> int:
    """Delete every cache entry (all modes and versions) under the root; return how many."""
    # Only files named like an entry, in folders shaped like <root>/<mode>/<tag>[/__pycache__],
    # are removed, so a GRADC_CACHE_DIR pointing at a folder of other things loses nothing
    # else. Modules already loaded keep working.
    root = cache_root()
    removed = 0
    touched: set[Path] = set()
    for folder, files in _owned_files(root):
        touched.update(folder.parents)
        for path in files:
            try:
                path.unlink()
            except OSError:
                continue
            removed += _is_entry(path)
        if files:
            for empty in (folder, folder.parent) if folder.name == "__pycache__" else (folder,):
                with suppress(OSError):
                    empty.rmdir()  # only succeeds once empty
    for mode_dir in _subfolders(root):
        if mode_dir in touched:
            with suppress(OSError):
                mode_dir.rmdir()
    return removed


def _check_name(what: str, value: str, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"gradc cache: {what} {value!r} must match {pattern.pattern}")


def _key_lock(memo_key: tuple[str, str]) -> threading.Lock:
    with _lock:
        lock = _key_locks.get(memo_key)
        if lock is None:
            lock = _key_locks[memo_key] = threading.Lock()
        return lock


def _materialize(mode: str, stem: str, data: bytes) -> tuple[Path, str]:
    """Make `<stem>.py` hold `data` in the usable cache folder; return its path and how."""
    primary = cache_dir(mode)
    with _lock:
        folder = _fallbacks.get(primary, primary)
    try:
        return _materialize_in(folder, stem, data)
    except OSError as err:
        if folder != primary:
            raise
        return _materialize_in(_fallback_for(primary, err), stem, data)


def _materialize_in(folder: Path, stem: str, data: bytes) -> tuple[Path, str]:
    path = folder / f"{stem}.py"
    if _check_entry(path, data) == "ok":
        return path, "disk"
    import filelock  # only a write needs it: 12 ms of a warm process's import otherwise

    folder.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(folder / f"{stem}.lock", timeout=_LOCK_TIMEOUT_S):
        state = _check_entry(path, data)  # another process may have written it meanwhile
        if state == "ok":
            return path, "disk"
        if state != "missing":
            warnings.warn(
                f"gradc cache entry {path} is {state}; rebuilding it", CacheWarning, stacklevel=4
            )
        _write_atomic(path, data)
    return path, "written" if state == "missing" else "rebuilt"


def _check_entry(path: Path, expected: bytes) -> str:
    """Return "ok", "missing", or what is wrong with the entry at `path`."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as err:
        return f"unreadable ({type(err).__name__}: {err.strerror or err})"
    if data == expected:
        return "ok"
    if not data:
        return "empty"
    if expected.startswith(data):
        return f"truncated ({len(data)} of {len(expected)} bytes)"
    return "altered (its content does not match its hash)"


def _write_atomic(path: Path, data: bytes) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # something else sits where our entry belongs; it is ours to clear
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable; best effort, some filesystems refuse to fsync folders.
    with suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _fallback_for(primary: Path, err: OSError) -> Path:
    with _lock:
        folder = _fallbacks.get(primary)
        fresh = folder is None
        if fresh:
            folder = Path(tempfile.mkdtemp(prefix="gradc-cache-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _fallbacks[primary] = folder
    if fresh:
        warnings.warn(
            f"gradc cache folder {primary} is unusable ({type(err).__name__}: {err}); "
            f"using temporary folder {folder} for this process, so compiled code will not "
            f"persist. Set {CACHE_ENV_VAR} to a writable folder to fix this.",
            CacheWarning,
            stacklevel=4,
        )
    return folder


def _scrub_numba_files(path: Path) -> None:
    """Remove Numba's cache files for entry `path` that cannot be read back.

    Numba writes its index (`.nbi`) and machine code (`.nbc`) by rename but without fsync, so
    a crash or power loss can leave them empty or cut short; Numba then raises from inside the
    first call of the kernel (EOFError, UnpicklingError) instead of recompiling. Each file's
    pickle stream is walked (never unpickled: that would import the module) and a damaged
    function's files are deleted, with one CacheWarning, so Numba compiles it afresh.
    """
    folder = path.parent / "__pycache__"
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith(f"{path.stem}."))
    except OSError:
        return
    bad: dict[str, str] = {}  # function's file base -> what is wrong
    for name in names:
        if name.endswith(".nbi"):
            base, pickles = name[:-4], 2  # Numba's version, then (stamp, overloads)
        elif name.endswith(".nbc"):
            base, pickles = name[:-4].rpartition(".")[0], 1
        else:
            continue
        if base in bad:
            continue
        try:
            problem = _pickle_problem((folder / name).read_bytes(), pickles)
        except OSError as err:
            problem = f"unreadable ({type(err).__name__})"
        if problem:
            bad[base] = f"{name} is {problem}"
    for base in bad:
        for name in names:
            if name == f"{base}.nbi" or (name.startswith(f"{base}.") and name.endswith(".nbc")):
                with suppress(OSError):
                    (folder / name).unlink()
    if bad:
        warnings.warn(
            f"gradc cache: Numba's compiled code for {path.name} was damaged "
            f"({'; '.join(bad.values())}); removed it, so it is compiled again",
            CacheWarning,
            stacklevel=4,
        )


def _pickle_problem(data: bytes, count: int) -> str | None:
    """None if `data` is exactly `count` complete pickle streams, else what is wrong."""
    if not data:
        return "empty"
    pos = 0
    try:
        for _ in range(count):
            end = None
            for op, _arg, at in pickletools.genops(data[pos:]):
                if op.name == "STOP":
                    end = pos + at + 1
            if end is None:
                return "truncated"
            pos = end
    except Exception:  # genops raises ValueError (and others) on a damaged stream
        return "truncated or corrupt"
    return None if pos == len(data) else "corrupt (trailing bytes)"


def _exec_module(name: str, path: Path, text: str) -> types.ModuleType:
    # Compile the text that was checked rather than importing the file, so what runs is what
    # was verified. `__file__` and the code's filename still point at the real file, which is
    # what Numba's cache=True (inspect.getfile) and tracebacks (linecache) read.
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path))
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    code = compile_cached(text, path, _write_atomic)  # checked against `text` (runtime/bytecode.py)
    sys.modules[name] = module  # Numba and pickle look functions' modules up here
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def _owned_files(root: Path) -> list[tuple[Path, list[Path]]]:
    """Return (folder, cache files in it) for each entry folder and its `__pycache__`."""
    found = []
    for mode_dir in _subfolders(root):
        if not _MODE_RE.fullmatch(mode_dir.name):
            continue
        for tag_dir in _subfolders(mode_dir):
            # __pycache__ first, so its folder is empty before the tag folder is removed.
            for folder in (tag_dir / "__pycache__", tag_dir):
                with suppress(OSError):
                    names = sorted(os.listdir(folder))
                    found.append((folder, [folder / n for n in names if _OWNED_RE.match(n)]))
    return found


def _is_entry(path: Path) -> bool:
    return path.parent.name != "__pycache__" and _ENTRY_RE.fullmatch(path.name) is not None
