"""Graph-to-graph optimisation passes, run by name (see `manager`)."""

from __future__ import annotations

# importing the pass modules registers them (the registry is filled at import, then read)
from compiler.passes import batch, cse, dce, fold, fuse, loops, simplify  # noqa: F401
from compiler.passes.manager import (
    ALGEBRAIC_PASSES,
    DEFAULT_PASSES,
    PASSES,
    PIPELINE,
    PassRecord,
    disabled_from_env,
    format_report,
    get_pass,
    known_passes,
    register_pass,
    run_passes,
)

__all__ = [
    "ALGEBRAIC_PASSES",
    "DEFAULT_PASSES",
    "PASSES",
    "PIPELINE",
    "PassRecord",
    "disabled_from_env",
    "format_report",
    "get_pass",
    "known_passes",
    "register_pass",
    "run_passes",
]
