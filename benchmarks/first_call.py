"""Where a cold first call's time goes, in the default mode (docs/tiers.md, issue 12).

    python benchmarks/first_call.py                        # chain mlp deep rnn logreg seed
    python benchmarks/first_call.py --only chain --repeat 5

Each sample is a new process with an empty cache that builds the workload's data, imports
`compiler` and times one `value_and_grad` call, as `run.py`'s "cold 1st call" column does, split
into (wall seconds):

- `pipeline`: trace, autodiff, passes, plan, lowering and the NumPy tier's codegen, up to the
  stage's first call;
- `numpy`: that call's run on the NumPy tier;
- `submit`: handing the stage to the background compiler (starting its thread);
- `rest`: from there until the call returns (outputs to the caller's types).

`call` is the whole call and `cpu` the calling thread's CPU time during it. The columns are
medians over `--repeat` processes. A workload whose graph is all Python-float scalars (`seed`)
runs on the interpreter with no tiered stage: only `call` and `cpu` apply.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = ["chain", "mlp", "deep", "rnn", "logreg", "seed"]
PARTS = ["call", "cpu", "pipeline", "numpy", "submit", "rest"]


def child(name: str) -> None:
    """In a new process: one cold first call, its parts printed as JSON."""
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    import numpy as np
    from workloads import WORKLOADS

    w = WORKLOADS[name]
    params, data = w.make(np.random.default_rng(0), w.dtype)
    from compiler import value_and_grad
    from runtime import tier

    marks: dict[str, float] = {}
    first_call, submit = tier.TieredStage._first_call, tier.submit

    def timed_first_call(self, *flat):
        marks.setdefault("stage", time.perf_counter())
        numpy = self.numpy

        def run(*a):
            out = numpy(*a)
            marks.setdefault("numpy", time.perf_counter())
            return out

        self.numpy = run
        try:
            return first_call(self, *flat)
        finally:
            if self.numpy is run:
                self.numpy = numpy

    def timed_submit(job):
        submit(job)
        marks.setdefault("submit", time.perf_counter())

    tier.TieredStage._first_call = timed_first_call
    tier.submit = timed_submit
    f = value_and_grad(w.loss, **w.gradc_options)
    t0, c0 = time.perf_counter(), time.thread_time()
    f(params, *data)
    t1, c1 = time.perf_counter(), time.thread_time()
    out = {"call": t1 - t0, "cpu": c1 - c0}
    if {"stage", "numpy", "submit"} <= marks.keys():
        out["pipeline"] = marks["stage"] - t0
        out["numpy"] = marks["numpy"] - marks["stage"]
        out["submit"] = marks["submit"] - marks["numpy"]
        out["rest"] = t1 - marks["submit"]
    print(json.dumps(out))


def sample(name: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gradc-first-") as d:
        env = dict(
            os.environ,
            XDG_CACHE_HOME=d,
            GRADC_CACHE_DIR=os.path.join(d, "gradc"),
            NUMBA_CACHE_DIR=os.path.join(d, "numba"),
        )
        env.pop("GRADC_COMPILE", None)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: child exited {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", default=DEFAULT, metavar="NAME")
    p.add_argument("--repeat", type=int, default=3, help="new processes per workload")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    print(
        f"load average {os.getloadavg()[0]:.2f} at the start; milliseconds, median of "
        f"{args.repeat} new processes with an empty cache"
    )
    print("| workload | " + " | ".join(PARTS) + " |")
    print("|---" * (len(PARTS) + 1) + "|")
    for name in args.only:
        runs = [sample(name) for _ in range(args.repeat)]
        cells = []
        for part in PARTS:
            vals = [r[part] for r in runs if part in r]
            cells.append(f"{statistics.median(vals) * 1e3:.0f}" if vals else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
