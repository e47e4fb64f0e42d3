"""Per-call overhead of the runtime's call path: `flatten_args` and `signature_key`.

    python benchmarks/overhead.py

Wall-clock numbers depend on the machine and its load, so they are measured here rather than
asserted in the test suite. Prints the best time per call of each function (target: under
1 us each on an idle core; measured ~0.2 us and ~0.45 us) and exits 1 if a target is missed.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.pytree import flatten_args  # noqa: E402
from runtime.signature import signature_key  # noqa: E402

TARGET_S = 1e-6
NUMBER = 20_000


def best_per_call(fn) -> float:
    """The fastest of five timed loops, per call."""
    return min(timeit.repeat(fn, number=NUMBER, repeat=5)) / NUMBER


def main() -> int:
    """Measure both functions; 1 if either misses its target."""
    floats = (1.0, 2.0, 3.0, 4.0)
    a = np.zeros((3, 4))
    leaves, treedef = flatten_args((a, a, 1.0, 2.0))
    rows = [
        ("flatten_args(4 floats)", best_per_call(lambda: flatten_args(floats))),
        (
            "signature_key(2 arrays, 2 floats)",
            best_per_call(lambda: signature_key(leaves, treedef)),
        ),
    ]
    failed = False
    for name, t in rows:
        ok = t < TARGET_S
        failed |= not ok
        print(f"{name:<36} {t * 1e9:8.0f} ns  {'ok' if ok else 'SLOWER THAN 1 us'}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
