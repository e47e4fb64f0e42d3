"""logreg with the `rowfuse` pass on and off, and the hand-written NumPy gradient, interleaved.

    python benchmarks/logreg_ab.py [--threads N] [--reps N] [NxD ...]     (default 10000x50)

Each shape's three functions are called in turn `--reps` times (a burst of load on a shared
machine hits all three alike) after a warm-up, compiled eagerly; prints the minimum and the
median per call. "off" is `value_and_grad(..., disable=("rowfuse",))`: the two BLAS products
around the fused loop, as before the pass (docs/performance.md).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from run import thread_env  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shapes", nargs="*", default=["10000x50"], help="n x d, e.g. 10000x50")
    p.add_argument("--threads", type=int, default=1, help="BLAS/Numba threads (default 1)")
    p.add_argument("--reps", type=int, default=200)
    args = p.parse_args(argv)
    os.environ.update(thread_env(args.threads))  # before NumPy is imported

    import numpy as np
    import workloads as W

    from compiler import value_and_grad

    for shape in args.shapes:
        n, d = (int(x) for x in shape.split("x"))
        params, (X, y) = W.logreg_make(np.random.default_rng(0), n=n, d=d)
        on = value_and_grad(W.logreg_loss, compile="eager")
        off = value_and_grad(W.logreg_loss, compile="eager", disable=("rowfuse",))
        funs = {
            "rowfuse on": functools.partial(on, params, X, y),
            "off": functools.partial(off, params, X, y),
            "hand NumPy": functools.partial(W.logreg_numpy_vg, params, X, y),
        }
        for f in funs.values():
            f()
        times: dict[str, list[float]] = {k: [] for k in funs}
        for _ in range(args.reps):
            for k, f in funs.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        cells = [
            f"{k} {min(v) * 1e6:,.0f} / {statistics.median(v) * 1e6:,.0f} us"
            for k, v in times.items()
        ]
        ratio = min(times["hand NumPy"]) / min(times["rowfuse on"])
        print(
            f"{n} x {d}, {args.threads} thread(s), min / median of {args.reps}: "
            + "; ".join(cells)
            + f"; NumPy / on (min) {ratio:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
