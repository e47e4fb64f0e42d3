"""A warm start against Numba's own floor: a new process whose disk cache holds the function.

    python benchmarks/warm_start.py                       # seed, mlp, rnn, euler-20, euler-100
    python benchmarks/warm_start.py --only seed euler-100 --repeat 5

Numba's floor (issue 12): a new process importing Numba and making the first call of one
trivial `cache=True` njit function whose machine code is already cached. Measured here, in
the same run, as the median of `--repeat` fresh processes.

For each workload, one process compiles into a fresh cache (`GRADC_COMPILE=eager`), then
`--repeat` new processes each time, from inside themselves:

- `import compiler` (gradc does not import Numba at import);
- the first call with `GRADC_COMPILE=eager` (compiled code from the first call), and how
  many kernels Numba compiled in that process (`compile_stats().compiled`: 0 is the target)
  and whether the pipeline's stages came from the stage cache;
- with `--default`, also the first call in the default compile mode.

Targets: eager import + first call at most the floor + 0.3 s; the default mode's first call
at most 0.3 s beyond the import.

Bytecode: with PYTHONDONTWRITEBYTECODE set (as on the development machine), Python compiles
every gradc module from source in every new process (0.1-0.2 s of `import compiler`), while
Numba, NumPy and SciPy load their installed `.pyc` files. `--bytecode` lets the children write
and read gradc's `.pyc` files, as an installed package (pip compiles them) or any ordinary
run does; the header line says which was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOOR_MODULE = """\
import numba


@numba.njit(cache=True)
def add_one(x):
    return x + 1.0
"""

FLOOR_CHILD = """\
import sys, time, json
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import floor_mod
floor_mod.add_one(1.0)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t2 - t1}))
"""

CHILD = """\
import sys, time, json
t0 = time.perf_counter()
import compiler
t1 = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from benchmarks.warm_start import workload
fun, args = workload(sys.argv[1])
f = compiler.value_and_grad(fun)
t2 = time.perf_counter()
f(*args)
t3 = time.perf_counter()
from compiler.codegen.compile import compile_stats
from runtime.artifacts import artifact_stats
print(json.dumps({"import": t1 - t0, "first": t3 - t2, "compiled": compile_stats().compiled,
                  "stage_hit": artifact_stats()["hits"] > 0}))
"""

NAMES = ("seed", "mlp", "rnn", "euler-20", "euler-100")


def workload(name: str):
    """(loss, args) of a named workload (benchmarks/workloads.py, benchmarks/euler.py)."""
    import numpy as np

    rng = np.random.default_rng(0)
    if name.startswith("euler-"):
        from benchmarks import euler

        euler.STEPS = int(name.split("-")[1])
        k, c, x0, target = euler._args(8000)
        return (lambda kc, x0, target: euler.loss(kc[0], kc[1], x0, target)), ((k, c), x0, target)
    from benchmarks.workloads import WORKLOADS

    w = WORKLOADS[name]
    params, data = w.make(rng, w.dtype)
    return w.loss, (params, *data)


def _run(code: str, argv: list[str], env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


BYTECODE = [False]  # --bytecode: the children may write and read .pyc files


def _env(cache: str, mode: str) -> dict:
    env = {**os.environ, "GRADC_CACHE_DIR": cache, "GRADC_COMPILE": mode}
    if BYTECODE[0]:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def floor(repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "floor_mod.py").write_text(FLOOR_MODULE)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(d, "nbcache"))}
        _run(FLOOR_CHILD, [d], env)  # compiles and caches add_one
        runs = [_run(FLOOR_CHILD, [d], env) for _ in range(repeat)]
    return {k: statistics.median(r[k] for r in runs) for k in ("import", "first")}


def measure(name: str, repeat: int, default: bool) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        _run(CHILD, [name, str(ROOT)], _env(cache, "eager"))  # fills the cache
        runs = [_run(CHILD, [name, str(ROOT)], _env(cache, "eager")) for _ in range(repeat)]
        out = {k: statistics.median(r[k] for r in runs) for k in ("import", "first")}
        out["compiled"] = max(r["compiled"] for r in runs)
        out["stage_hit"] = all(r["stage_hit"] for r in runs)
        if default:
            runs = [_run(CHILD, [name, str(ROOT)], _env(cache, "")) for _ in range(repeat)]
            out["default_first"] = statistics.median(r["first"] for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="+", default=list(NAMES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--default", action="store_true", help="also the default compile mode")
    ap.add_argument("--bytecode", action="store_true", help="gradc's .pyc files (module doc)")
    ns = ap.parse_args()
    BYTECODE[0] = ns.bytecode
    source = not ns.bytecode and os.environ.get("PYTHONDONTWRITEBYTECODE")
    print("gradc's modules: " + ("compiled from source in each process" if source else ".pyc"))
    fl = floor(ns.repeat)
    total_floor = fl["import"] + fl["first"]
    print(
        f"Numba's floor: import numba {fl['import']:.3f} s + first cached call "
        f"{fl['first']:.3f} s = {total_floor:.3f} s (median of {ns.repeat} processes)\n"
    )
    head = "| workload | import compiler | eager 1st call | import + 1st call | over floor "
    head += "| kernels compiled | stages cached |"
    if ns.default:
        head += " default 1st call |"
    print(head)
    print("|---" * (8 + ns.default) + "|")
    for name in ns.only:
        m = measure(name, ns.repeat, ns.default)
        total = m["import"] + m["first"]
        hit = "yes" if m["stage_hit"] else "no"
        row = (
            f"| {name} | {m['import']:.3f} | {m['first']:.3f} | {total:.3f} "
            f"| {total - total_floor:+.3f} | {m['compiled']} | {hit} |"
        )
        if ns.default:
            row += f" {m['default_first']:.3f} |"
        print(row)


if __name__ == "__main__":
    main()
