"""The "gradc" logger: `GRADC_LOG=info|debug` (or the CLI's `-v`) and slow-step notes.

Imports nothing from gradc, so any layer may use `slow`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

LOGGER = "gradc"
ENV_VAR = "GRADC_LOG"
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_FORMAT = "gradc %(levelname)s [%(relativeCreated)7.0f ms] %(message)s"

log = logging.getLogger(LOGGER)


def configure(level: int | str) -> logging.Logger:
    """Send "gradc" records at `level` and above to stderr (one handler, however often called)."""
    if isinstance(level, str):
        level = _LEVELS.get(level.strip().lower(), logging.WARNING)
    log.setLevel(level)
    if not any(getattr(h, "_gradc", False) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._gradc = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False
    return log


def configure_from_env() -> logging.Logger | None:
    """Honour `GRADC_LOG=info|debug|warning`; do nothing when it is unset or empty."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    if value not in _LEVELS:
        configure(logging.WARNING)
        log.warning("%s=%r is not one of %s; using warning", ENV_VAR, value, ", ".join(_LEVELS))
        return log
    return configure(value)


@contextlib.contextmanager
def slow(what: str, after_s: float = 1.0, level: int = logging.INFO) -> Iterator[None]:
    """Log `what` once if the block is still running after `after_s`, and its duration then.

    Use around steps that can take long (Numba compiles), so a quiet wait explains itself:

        with slow("codegen value_and_grad: 41 nodes"):
            fn = compile_graph(graph)
    """
    if not log.isEnabledFor(level):
        yield
        return
    done = threading.Event()
    t0 = time.perf_counter()
    noted = []

    def note() -> None:
        if not done.wait(after_s):
            noted.append(True)
            log.log(level, "%s: still working after %.1f s", what, after_s)

    watcher = threading.Thread(target=note, name="gradc-slow", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        if noted:
            log.log(level, "%s: done in %.2f s", what, time.perf_counter() - t0)
