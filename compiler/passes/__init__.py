"""Graph-to-graph optimisation passes, run by name (see `manager`)."""

from __future__ import annotations

import importlib

from compiler.passes import batch, cse, dce, fold, loops, simplify  # noqa: F401  (registers)
from compiler.passes.manager import (
    DEFAULT_PASSES,
    OPTIONAL_PASSES,
    PASSES,
    PassRecord,
    disabled_from_env,
    fixpoint,
    format_report,
    get_pass,
    known_passes,
    register_pass,
    run_passes,
)


def _load_optional(name: str) -> None:
    """Import the optional pass module `compiler.passes.<name>` if it exists."""
    module = f"compiler.passes.{name}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # the module exists but something it imports is missing
            raise


for _name in sorted(OPTIONAL_PASSES):
    _load_optional(_name)

__all__ = [
    "DEFAULT_PASSES",
    "OPTIONAL_PASSES",
    "PASSES",
    "PassRecord",
    "disabled_from_env",
    "fixpoint",
    "format_report",
    "get_pass",
    "known_passes",
    "register_pass",
    "run_passes",
]
