"""The on-disk cache of compiled stages: opaque payloads by key, next to the module cache.

The compiler (`compiler/stage_cache.py`) stores what its pipeline produced for a traced graph
(the stages after every pass: the lowered graphs and their buffer plans) under a key that
names everything the result depends on, so a new process with a warm cache traces and then
skips autodiff, passes, planning and lowering. This module only keeps bytes: it knows nothing
of graphs.

Two kinds share the store: "stage" (the pipeline's stages) and "render" (the module text
codegen rendered from a cached stage, `compiler/codegen/rendered.py`), each with its own file
prefix and counts.

Layout: `<root>/stages/<tag>/<kind>_<key24>.pkl`, beside the generated modules
(`<root>/<mode>/<tag>/`), so `clear_cache` and `cache_info` see these files too. A file is
one header line `# gradc-stages <key> <sha256 of the payload>` and the payload. A read checks
both (another key sharing the 24-digit prefix, a truncated or altered file: a miss, and a
damaged file warns once and is rewritten by the next store). Writes are atomic (a temporary
file renamed over the target), so a process that exits mid-write leaves no partial entry. A
cache folder that cannot be written costs only the speed-up: nothing is stored, nothing warns.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import threading
import warnings
from pathlib import Path

from runtime.cache import CacheWarning, _write_atomic, cache_root
from runtime.version import VERSION

log = logging.getLogger("gradc")

_KEY_RE = re.compile(r"[0-9a-f]{64}")
_HEADER = b"# gradc-stages "
_KINDS = ("stage", "render")
_lock = threading.Lock()
_stats = {kind: {"hits": 0, "misses": 0, "stored": 0, "damaged": 0} for kind in _KINDS}

__all__ = [
    "artifact_dir",
    "artifact_stats",
    "clear_artifact_stats",
    "load_artifact",
    "store_artifact",
]


def artifact_dir() -> Path:
    """The folder of stage artifacts for this gradc and Python."""
    tag = re.sub(r"[^A-Za-z0-9._-]", "_", f"gradc{VERSION}-{sys.implementation.cache_tag}")
    return cache_root() / "stages" / tag


def _path(key: str, kind: str) -> Path:
    if not _KEY_RE.fullmatch(key):
        raise ValueError(f"gradc stage cache: key must be 64 hex digits, got {key!r}")
    if kind not in _KINDS:
        raise ValueError(f"gradc stage cache: kind must be one of {_KINDS}, got {kind!r}")
    return artifact_dir() / f"{kind}_{key[:24]}.pkl"


def load_artifact(key: str, kind: str = "stage") -> bytes | None:
    """The payload stored under `key`, or None (absent, another key's, or damaged)."""
    path = _path(key, kind)

    def _count(what: str) -> None:
        with _lock:
            _stats[kind][what] += 1

    try:
        data = path.read_bytes()
    except OSError:
        _count("misses")
        return None
    head, sep, payload = data.partition(b"\n")
    parts = head[len(_HEADER) :].split(b" ") if head.startswith(_HEADER) else []
    if sep and len(parts) == 2 and parts[0] == key.encode():
        if hashlib.sha256(payload).hexdigest().encode() == parts[1]:
            _count("hits")
            return payload
    if len(parts) == 2 and parts[0] != key.encode():
        _count("misses")  # another key with the same prefix: not ours, not damaged
        return None
    _count("damaged")
    warnings.warn(
        f"gradc stage cache entry {path} is damaged; it is rebuilt", CacheWarning, stacklevel=3
    )
    return None


def store_artifact(key: str, payload: bytes, kind: str = "stage") -> bool:
    """Store `payload` under `key` (atomically); False when the folder is not writable."""
    path = _path(key, kind)
    head = _HEADER + f"{key} {hashlib.sha256(payload).hexdigest()}\n".encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, head + payload)
    except OSError as err:
        log.debug("stage cache: not stored (%s: %s)", type(err).__name__, err)
        return False
    with _lock:
        _stats[kind]["stored"] += 1
    return True


def artifact_stats(kind: str = "stage") -> dict[str, int]:
    """Counts of `kind` in this process: hits, misses, stored, damaged."""
    with _lock:
        return dict(_stats[kind])


def clear_artifact_stats() -> None:
    """Zero `artifact_stats` of every kind (tests)."""
    with _lock:
        for counts in _stats.values():
            for k in counts:
                counts[k] = 0
