"""gradc's on/off environment variables, read one way: `1/true/yes/on` or `0/false/no/off`
(any case, surrounding spaces ignored), unset or empty for the default, and a ValueError
naming the variable for anything else, so a misspelt value is never silently read as on."""

from __future__ import annotations

import os

ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off")


def switch(name: str, default: bool) -> bool:
    """The on/off variable `name`: `default` when it is unset or empty."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if not value:
        return default
    if value in ON or value in OFF:
        return value in ON
    raise ValueError(f"{name}={raw!r}: expected 1, true, yes or on, or 0, false, no or off")
