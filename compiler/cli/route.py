"""`gradc route show|calibrate`: the routing calibration of this host (docs/routing.md).

The calibration is measured once per host on the background compile thread and kept until its
key changes or `gradc cache clear`. A measurement taken while the machine was busy can route
an op the wrong way for as long as it is kept, so `show` prints what is stored and
`calibrate` measures it again now, on purpose, and replaces it."""

from __future__ import annotations

import os

from compiler.codegen import calibrate, routing, simd
from runtime.row_threads import usable_cores


def _load_line() -> str:
    """The 1-minute load average against the core count, where the platform has both."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return ""
    cores = usable_cores()
    busy = "  (busy: measure on an idle machine)" if load > 0.5 * cores else ""
    return f"load average {load:.2f} on {cores} cores{busy}"


def show() -> str:
    """What routes where now and the stored calibration (its file and table), as text."""
    mode = simd.mode()
    k = calibrate.key(mode)
    now = routing.current_routing()
    lines = [
        f"GRADC_ROUTE={routing.route_mode()}, SIMD mode {mode}: routing from {now.source}",
        f"calibration file: {calibrate.path_for(k)}",
    ]
    cal = calibrate.load(k)
    if cal is None:
        lines.append("no calibration stored for this host, mode and build")
    else:
        lines += [f"measured in {cal.seconds:.2f} s", calibrate.table(cal)]
    library = sorted(f"{op} ({dt})" for op, dt in now.library)
    lines.append("NumPy calls: " + (", ".join(library) if library else "none"))
    return "\n".join(lines)


def recalibrate() -> str:
    """Measure the calibration for the current SIMD mode now, store it over the old one, and
    return its table; later compiles use it (stages already cached keep their routing)."""
    mode = simd.mode()
    load = _load_line()
    cal = calibrate.measure(mode)
    stored = calibrate.store(cal)
    routing.forget()
    where = calibrate.path_for(cal.key) if stored else "nowhere (the cache folder is not writable)"
    head = f"measured in {cal.seconds:.2f} s, stored in {where}"
    return "\n".join([head, *([load] if load else []), calibrate.table(cal)])
