"""GRADC_LOG and the slow-step note of compiler.logging_setup."""

from __future__ import annotations

import logging
import time

from compiler import logging_setup


def test_logging_configure_from_env_levels(monkeypatch):
    log = logging.getLogger("gradc")
    old_level, old_handlers, old_prop = log.level, list(log.handlers), log.propagate
    try:
        monkeypatch.delenv("GRADC_LOG", raising=False)
        assert logging_setup.configure_from_env() is None
        monkeypatch.setenv("GRADC_LOG", "debug")
        assert logging_setup.configure_from_env().level == logging.DEBUG
        monkeypatch.setenv("GRADC_LOG", "INFO")
        logging_setup.configure_from_env()
        assert log.level == logging.INFO
        assert sum(getattr(h, "_gradc", False) for h in log.handlers) == 1  # no duplicates
    finally:
        log.setLevel(old_level)
        log.handlers[:] = old_handlers
        log.propagate = old_prop


def test_logging_slow_notes_only_long_steps(caplog):
    log = logging.getLogger("gradc")
    old = log.level
    log.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.INFO, logger="gradc"):
            with logging_setup.slow("quick step", after_s=0.5):
                pass
            with logging_setup.slow("long step", after_s=0.05):
                time.sleep(0.2)
    finally:
        log.setLevel(old)
    text = caplog.text
    assert "quick step" not in text
    assert "long step: still working after" in text and "long step: done in" in text
