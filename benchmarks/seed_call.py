"""The seed workload's call paths side by side, per call (issue 13: at most 1.2x hand NumPy).

    python benchmarks/seed_call.py [--rounds N]

Rows: the hand-written `seed_numpy_vg(p)`, gradc's native scalar call (the class's C tp_call,
runtime/native_call.py), the Python scalar call it replaces (GRADC_NATIVE_CALL=0 for that
transformation) and the general path (`_Transform.__call__`). Each is timed as a bare call and
inside `lambda: fn(p)` (what benchmarks/run.py times). The machine may be shared, so each row
is the minimum over rounds of timeit repeats, and the rounds interleave the rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workloads import seed_loss, seed_numpy_vg  # noqa: E402
from compiler import value_and_grad  # noqa: E402
from compiler.api import _Transform  # noqa: E402

NUMBER = 200_000


def main() -> None:
    """Print ns per call of each path and the ratios to the hand-written function."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    rounds = ap.parse_args().rounds
    p = (2.0, 3.0, 1.0, 4.0)
    native = value_and_grad(seed_loss, compile="eager")
    native(p)
    os.environ["GRADC_NATIVE_CALL"] = "0"
    python = value_and_grad(seed_loss, compile="eager")
    python(p)
    del os.environ["GRADC_NATIVE_CALL"]
    assert "_native" in type(native).__dict__ and "_native" not in type(python).__dict__
    general = _Transform.__call__
    stmts = {
        "hand seed_numpy_vg(p)": ("seed_numpy_vg(p)", lambda: seed_numpy_vg(p)),
        "gradc native call": ("native(p)", lambda: native(p)),
        "gradc Python scalar call": ("python(p)", lambda: python(p)),
        "gradc general path": ("general(native, p)", lambda: general(native, p)),
    }
    names = {"seed_numpy_vg": seed_numpy_vg, "native": native, "python": python, "p": p}
    names["general"] = general
    best: dict[str, list[float]] = {k: [1e9, 1e9] for k in stmts}
    for _ in range(rounds):
        for k, (stmt, fn) in stmts.items():
            bare = min(timeit.repeat(stmt, number=NUMBER, repeat=3, globals=names)) / NUMBER
            wrapped = min(timeit.repeat(fn, number=NUMBER, repeat=3)) / NUMBER
            best[k] = [min(best[k][0], bare), min(best[k][1], wrapped)]
    hand = best["hand seed_numpy_vg(p)"]
    print(f"{'path':28} {'bare ns':>8} {'ratio':>6} {'lambda ns':>10} {'ratio':>6}")
    for k, (bare, wrapped) in best.items():
        print(
            f"{k:28} {bare * 1e9:8.0f} {bare / hand[0]:6.2f} {wrapped * 1e9:10.0f}"
            f" {wrapped / hand[1]:6.2f}"
        )


if __name__ == "__main__":
    main()
