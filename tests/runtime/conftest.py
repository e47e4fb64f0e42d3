"""Fixtures for runtime tests: every cache test gets its own cache folder and a clean memo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import cache


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point GRADC_CACHE_DIR at a fresh folder and forget modules loaded by earlier tests."""
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(root))
    cache.clear_memory_cache()
    yield root
    cache.clear_memory_cache()
