"""A large differential-testing campaign, run by hand (not part of the test run).

    python -m tests.robustness.campaign -n 5000 --seed 7 [--jobs 2] [--configs 2] [--out F]
    python -m tests.robustness.campaign -n 500 --shrink     # hypothesis: minimise the first

Generates `n` fresh random programs (tests/robustness/programs.py) from seeded RNGs (program k
of campaign s is `random_program(s * 1_000_000 + k)`, so any failure is reproducible from its
number), checks each against every oracle (tests/robustness/differential.py) and against
`--configs` more ways to compile it, taken in turn from `differential.configs()` (every
transform with every memory policy and with each pass disabled), and prints how many ran,
which failed with their source, how often each op family and each config was used, and which
registry ops appeared in the traced and joint graphs. `--jobs J` runs the programs in J
worker processes (program k in worker k mod J; the result is the same as with one). With
--shrink, hypothesis drives the generator instead and shrinks the first failure to a small
program. Use a fresh GRADC_CACHE_DIR to include cold compiles.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import warnings

from compiler import trace
from compiler.autodiff import vjp_graph
from compiler.primitives import OPS
from tests.robustness.differential import Config, check_program, configs
from tests.robustness.programs import Program, programs, random_program


def _ops(prog: Program) -> set[str]:
    """Ops in the program's traced graphs and in its joint (gradient) graph."""
    outputs, loss = prog.functions()
    xs = prog.inputs()
    try:
        g = trace(loss, *xs)
        joint = vjp_graph(g, list(range(len(g.inputs))), seeds="ones", ct_outputs=(0,))
        return {n.op for n in trace(outputs, *xs).nodes} | {n.op for n in joint.nodes}
    except Exception:
        return set()


class Campaign:
    def __init__(self, n_configs: int = 2) -> None:
        self.all_configs = configs()
        self.n_configs = n_configs
        self.configs: collections.Counter[str] = collections.Counter()
        self.ran = 0
        self.failed: list[tuple[str, Program, list[str]]] = []
        self.families: collections.Counter[str] = collections.Counter()
        self.ops: collections.Counter[str] = collections.Counter()
        self.t0 = time.perf_counter()

    def extra(self, k: int) -> list[Config]:
        """Configs in turn: program k gets configs k*c .. k*c + c - 1 (mod all of them)."""
        n = len(self.all_configs)
        return [self.all_configs[(k * self.n_configs + j) % n] for j in range(self.n_configs)]

    def run(self, prog: Program, label: str, k: int | None = None) -> list[str]:
        extra = self.extra(self.ran if k is None else k)
        self.ran += 1
        self.families.update(prog.families)
        self.configs.update(str(c) for c in extra)
        self.ops.update(_ops(prog))
        problems = check_program(prog, extra=extra)
        if problems:
            self.failed.append((label, prog, problems))
            print(f"\n=== mismatch in {label} ===\n{prog!r}\n" + "\n".join(problems), flush=True)
        if self.ran % 100 == 0:
            print(
                f"... {self.ran} programs, {len(self.failed)} failing, "
                f"{time.perf_counter() - self.t0:.0f} s",
                flush=True,
            )
        return problems

    def merge(self, other: Campaign) -> None:
        """Add a worker's results to these."""
        self.ran += other.ran
        self.failed += other.failed
        self.families.update(other.families)
        self.configs.update(other.configs)
        self.ops.update(other.ops)

    def report(self, out: str | None) -> None:
        dt = time.perf_counter() - self.t0
        print(
            f"\nprograms run: {self.ran}, failing: {len(self.failed)}, {dt:.0f} s "
            f"({dt / max(self.ran, 1):.2f} s each)"
        )
        print("steps per family:", dict(sorted(self.families.items())))
        print(f"extra configs ({len(self.configs)} of {len(self.all_configs)}):")
        for name, k in sorted(self.configs.items()):
            print(f"  {name}: {k}")
        print("programs using each registry op:", dict(sorted(self.ops.items())))
        print("registry ops never generated:", sorted(set(OPS) - set(self.ops)))
        if out:
            with open(out, "w") as f:
                for label, prog, problems in self.failed:
                    f.write(f"# {label}\n{prog!r}\n" + "\n".join(problems) + "\n\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=500, help="programs to run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--out", default=None, help="write failing programs here")
    p.add_argument("--configs", type=int, default=2, help="extra configs checked per program")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--shrink", action="store_true", help="hypothesis: shrink the first failure")
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    c = Campaign(a.configs)
    if a.shrink:
        from hypothesis import HealthCheck, given, seed, settings

        @seed(a.seed)
        @settings(
            max_examples=a.n, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(programs(max_steps=a.max_steps))
        def run(prog):
            problems = c.run(prog, f"hypothesis example {c.ran + 1}")
            assert not problems, "\n".join(problems)

        try:
            run()
        except AssertionError as exc:
            print(f"\nshrunk to the failure above the last one:\n{exc}")
    elif a.jobs > 1:
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked Numba state
        with concurrent.futures.ProcessPoolExecutor(a.jobs, mp_context=ctx) as pool:
            jobs = [
                pool.submit(_worker, range(j, a.n, a.jobs), a.seed, a.max_steps, a.configs)
                for j in range(a.jobs)
            ]
            for job in jobs:
                c.merge(job.result())
    else:
        c = _worker(range(a.n), a.seed, a.max_steps, a.configs)
    c.report(a.out)
    return 1 if c.failed else 0


def _worker(ks: range, seed: int, max_steps: int, n_configs: int) -> Campaign:
    """Programs `seed * 1_000_000 + k` for k in ks (one worker process, or the only one)."""
    warnings.simplefilter("ignore")
    c = Campaign(n_configs)
    for k in ks:
        s = seed * 1_000_000 + k
        c.run(random_program(s, max_steps), f"random_program({s}, {max_steps})", k)
    return c


if __name__ == "__main__":
    sys.exit(main())
