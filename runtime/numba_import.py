"""Numba imported by one thread at a time."""

from __future__ import annotations

import threading

_numba_import = threading.Lock()


def import_numba() -> None:
    """Import Numba (and its CPU target's registries), one thread at a time.

    Numba's package imports itself circularly; a second thread importing it while the first
    is half way through gets the partially initialized module ("partially initialized module
    'numba.core.types'", seen when the background compile thread and an eager compile on the
    caller's thread imported it together). Every gradc path that may be the first to import
    Numba goes through here."""
    with _numba_import:
        import numba.core.registry  # noqa: F401
