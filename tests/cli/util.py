"""Running gradc in a subprocess, with its own cache folder and a backend that exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def numba_backend_available() -> bool:
    """True once compiler.codegen provides compile_graph (until then tests use the interpreter)."""
    try:
        from compiler.codegen import compile_graph  # noqa: F401
    except ImportError:
        return False
    return True


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """os.environ plus GRADC_CACHE_DIR in `tmp_path`, and GRADC_BACKEND=interpret while the
    Numba backend is missing."""
    env = dict(os.environ)
    env["GRADC_CACHE_DIR"] = str(tmp_path / "gradc-cache")
    env.pop("GRADC_LOG", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if not numba_backend_available():
        env["GRADC_BACKEND"] = "interpret"
    env.update(extra)
    return env


def run_gradc(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`python -m compiler ARGS` from `tmp_path`; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "compiler", *args],
        cwd=tmp_path,
        env=env if env is not None else subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
