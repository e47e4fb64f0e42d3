"""A large differential-testing campaign, run by hand (not part of the test run).

    python -m tests.robustness.campaign -n 2000 [--seed 1] [--out failures.txt] [--stop]

Generates `n` random programs (tests/robustness/programs.py), checks each against every oracle
(tests/robustness/differential.py), and prints how many ran and which failed, with each failing
program's source so it can be minimised into a regression test. Failures do not stop the run
unless --stop is given (then hypothesis shrinks the first one to a minimal program). Run it with
a fresh GRADC_CACHE_DIR to include cold compiles; several processes with different seeds share
a machine's cores.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import warnings

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.robustness.differential import check_program
from tests.robustness.programs import programs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=500, help="programs to run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--out", default=None, help="write failing programs here")
    p.add_argument("--stop", action="store_true", help="stop and shrink at the first failure")
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    ran, failed = [0], []
    families: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()

    phases = [Phase.generate, Phase.shrink] if a.stop else [Phase.generate]

    @seed(a.seed)
    @settings(max_examples=a.n, deadline=None, database=None, phases=phases,
              suppress_health_check=list(HealthCheck))
    @given(programs(max_steps=a.max_steps))
    def run(prog):
        ran[0] += 1
        families.update(prog.families)
        problems = check_program(prog)
        if problems:
            failed.append((prog, problems))
            print(f"\n=== mismatch in program {ran[0]} ===\n{prog!r}\n" + "\n".join(problems),
                  flush=True)
            if a.stop:
                raise AssertionError("\n".join(problems))
        if ran[0] % 50 == 0:
            print(f"... {ran[0]} programs, {len(failed)} failing, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)

    try:
        run()
    except AssertionError as exc:
        print(f"stopped: {exc}")
    dt = time.perf_counter() - t0
    print(f"\nprograms run: {ran[0]}, failing: {len(failed)}, {dt:.0f} s "
          f"({dt / max(ran[0], 1):.2f} s each)")
    print("steps per family:", dict(sorted(families.items())))
    if a.out:
        with open(a.out, "w") as f:
            for prog, problems in failed:
                f.write(f"{prog!r}\n" + "\n".join(problems) + "\n\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
