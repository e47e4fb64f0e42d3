"""A warm start against Numba's own floor: a new process whose disk cache holds the function.

    python benchmarks/warm_start.py                       # seed, mlp, rnn, euler-20, euler-100
    python benchmarks/warm_start.py --only seed euler-100 --repeat 5

Numba's floor (issue 12): a new process importing Numba and making the first call of one
trivial `cache=True` njit function whose machine code is already cached. Measured here, in
the same run, as the median of `--repeat` fresh processes.

For each workload, two processes compile into a fresh cache (`GRADC_COMPILE=eager`), then
`--repeat` new processes each time, from inside themselves:

- `import compiler` (gradc does not import Numba at import);
- the first call with `GRADC_COMPILE=eager` (compiled code from the first call), and how
  many kernels Numba compiled in that process (`compile_stats().compiled`: 0 is the target)
  and whether the pipeline's stages came from the stage cache;
- with `--default`, also the first call in the default compile mode;
- with `--parts`, the first call's parts (`PARTS`, and each njit function's first call);
- with `--baseline DIR` (another gradc checkout), instead: rounds of the floor, this
  checkout and DIR's, one process each in turn, and the median of each one's difference to
  its round's floor (`paired`): a before/after that a shared machine's load moves less.

The cache is filled twice, waiting for background work: the routing calibration is measured
once per host in the background, and a measured process that still lacked it would measure
it alongside its first call (and, once it landed, miss the stages lowered without it).

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
t0, c0 = time.perf_counter(), time.process_time()
import numba
t1 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import floor_mod
floor_mod.add_one(1.0)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "first": t2 - t1, "cpu": c2 - c0}))
"""

CHILD = """\
import sys, time, json
t0, c0 = time.perf_counter(), time.process_time()
import compiler
t1, c1 = time.perf_counter(), time.process_time()
sys.path.insert(0, sys.argv[2])
from benchmarks.warm_start import workload, timed_parts
parts = timed_parts() if sys.argv[3] == "parts" else {}
fun, args = workload(sys.argv[1])
f = compiler.value_and_grad(fun)
t2, c2 = time.perf_counter(), time.process_time()
f(*args)
t3, c3 = time.perf_counter(), time.process_time()
from compiler.codegen.compile import compile_stats
from runtime import background
from runtime.artifacts import artifact_stats
if sys.argv[3] == "fill":
    background.wait_idle()  # the routing calibration, measured once per host, is stored
print(json.dumps({"import": t1 - t0, "first": t3 - t2, "cpu": c1 - c0 + c3 - c2,
                  "compiled": compile_stats().compiled, "stage_hit": artifact_stats()["hits"] > 0,
                  "background": background.stats()["submitted"], "parts": parts}))
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


# (label, module, attribute) of what `--parts` times in the first call (wall seconds, summed
# over calls; nested parts are also inside their parent). Numba's own, from its first import:
# the first call of each njit function (loading its cached machine code, or compiling it).
PARTS = (
    ("trace", "compiler.pipeline", "trace_tree"),
    ("routing", "compiler.pipeline", "current_routing"),
    ("stages (key + load)", "compiler.pipeline", "cached_stages"),
    ("render", "compiler.codegen.compile", "_generate"),
    ("SIMD setup (imports llvmlite)", "compiler.codegen.simd", "setup"),
    ("module load", "runtime.cache", "load_module"),
    ("  of which import Numba", "runtime.cache", "import_numba"),
    ("  of which exec", "runtime.cache", "_exec_module"),
    ("kernels' cached code (preload)", "compiler.codegen.compile", "_preload"),
)


def timed_parts() -> dict:
    """Wrap PARTS (and, once Numba is imported, each njit function's first call) to time
    them; the returned dict fills in as the process runs."""
    import functools
    import importlib
    import time

    out: dict = {}

    def wrap(owner, attr, label):
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                out[label] = out.get(label, 0.0) + time.perf_counter() - t

        setattr(owner, attr, timed)
        return fn

    for label, module, attr in PARTS:
        owner = importlib.import_module(module)
        if hasattr(owner, attr):  # (a --baseline checkout may predate a part)
            wrap(owner, attr, label)
    cache = importlib.import_module("runtime.cache")
    imported = cache.import_numba

    def import_numba():
        imported()
        from numba.core.dispatcher import Dispatcher

        if not hasattr(Dispatcher, "_gradc_timed"):
            Dispatcher._gradc_timed = True
            first = Dispatcher._compile_for_args

            def compile_for_args(self, *a, **k):
                t = time.perf_counter()
                try:
                    return first(self, *a, **k)
                finally:
                    n = sum(key.startswith("njit ") for key in out)
                    out[f"njit {n + 1}: {self.py_func.__name__}"] = time.perf_counter() - t

            Dispatcher._compile_for_args = compile_for_args

    cache.import_numba = import_numba
    return out


def _run(code: str, argv: list[str], env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


BYTECODE = [False]  # --bytecode: the children may write and read .pyc files


def _env(cache: str, mode: str, tree: Path = ROOT) -> dict:
    env = {**os.environ, "GRADC_CACHE_DIR": cache, "GRADC_COMPILE": mode}
    if BYTECODE[0]:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def floor(repeat: int) -> dict:
    """Numba's floor: import Numba, first call of one cached trivial njit function."""
    with tempfile.TemporaryDirectory() as d:
        Path(d, "floor_mod.py").write_text(FLOOR_MODULE)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(d, "nbcache"))}
        _run(FLOOR_CHILD, [d], env)  # compiles and caches add_one
        runs = [_run(FLOOR_CHILD, [d], env) for _ in range(repeat)]
    return {k: statistics.median(r[k] for r in runs) for k in ("import", "first", "cpu")}


def measure(name: str, repeat: int, default: bool, parts: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        argv = [name, str(ROOT)]
        # fills the cache; the first fill also waits for the routing calibration (measured
        # once per host in the background), and the second compiles under it, so the
        # measured processes find what a user's warm process finds, with no background work
        for _ in range(2):
            _run(CHILD, [*argv, "fill"], _env(cache, "eager"))
        how = "parts" if parts else "-"
        runs = [_run(CHILD, [*argv, how], _env(cache, "eager")) for _ in range(repeat)]
        out = {k: statistics.median(r[k] for r in runs) for k in ("import", "first", "cpu")}
        out["compiled"] = max(r["compiled"] for r in runs)
        out["stage_hit"] = all(r["stage_hit"] for r in runs)
        out["background"] = max(r["background"] for r in runs)
        labels = list(dict.fromkeys(k for r in runs for k in r["parts"]))
        out["parts"] = {k: statistics.median(r["parts"].get(k, 0.0) for r in runs) for k in labels}
        if default:
            runs = [_run(CHILD, [*argv, "-"], _env(cache, "")) for _ in range(repeat)]
            out["default_first"] = statistics.median(r["first"] for r in runs)
    return out


def paired(names: list[str], repeat: int, baseline: Path) -> None:
    """This checkout and `baseline` (another checkout of gradc), each with its own filled
    cache, measured process by process in turn with Numba's floor: `repeat` rounds of the
    floor, then this and baseline in alternating order. Each round's difference to its own
    floor cancels most of a shared machine's drifting load; the table shows the medians of
    those differences."""
    print(f"paired rounds: floor, this checkout, {baseline}; {repeat} rounds per workload\n")
    print(
        "| workload | this - floor s | baseline - floor s | this - floor CPU s "
        "| baseline - floor CPU s | this 1st call s | baseline 1st call s | compiled |"
    )
    print("|---" * 8 + "|")
    with tempfile.TemporaryDirectory() as d:
        Path(d, "floor_mod.py").write_text(FLOOR_MODULE)
        fenv = {**os.environ, "NUMBA_CACHE_DIR": str(Path(d, "nbcache"))}
        _run(FLOOR_CHILD, [d], fenv)
        for name in names:
            trees = {"this": ROOT, "baseline": baseline}
            caches = {k: tempfile.mkdtemp(dir=d) for k in trees}
            for k, tree in trees.items():
                for _ in range(2):  # as `measure` fills
                    _run(CHILD, [name, str(ROOT), "fill"], _env(caches[k], "eager", tree))
            diffs: dict = {k: {"wall": [], "cpu": [], "first": []} for k in trees}
            compiled = 0
            for i in range(repeat):
                fl = _run(FLOOR_CHILD, [d], fenv)
                # the two checkouts' order alternates: each goes right after the floor half
                # of the time (the process after another one ran measurably slower here)
                for k, tree in sorted(trees.items(), reverse=i % 2 == 1):
                    r = _run(CHILD, [name, str(ROOT), "-"], _env(caches[k], "eager", tree))
                    compiled = max(compiled, r["compiled"])
                    diffs[k]["wall"].append(r["import"] + r["first"] - fl["import"] - fl["first"])
                    diffs[k]["cpu"].append(r["cpu"] - fl["cpu"])
                    diffs[k]["first"].append(r["first"])
            med = {k: {m: statistics.median(v) for m, v in d2.items()} for k, d2 in diffs.items()}
            t, b = med["this"], med["baseline"]
            print(
                f"| {name} | {t['wall']:+.3f} | {b['wall']:+.3f} | {t['cpu']:+.3f} "
                f"| {b['cpu']:+.3f} | {t['first']:.3f} | {b['first']:.3f} | {compiled} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="+", default=list(NAMES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--default", action="store_true", help="also the default compile mode")
    ap.add_argument("--bytecode", action="store_true", help="gradc's .pyc files (module doc)")
    ap.add_argument("--parts", action="store_true", help="time the first call's parts")
    ap.add_argument("--baseline", type=Path, help="another checkout: paired rounds (paired())")
    ns = ap.parse_args()
    BYTECODE[0] = ns.bytecode
    source = not ns.bytecode and os.environ.get("PYTHONDONTWRITEBYTECODE")
    print("gradc's modules: " + ("compiled from source in each process" if source else ".pyc"))
    if ns.baseline is not None:
        paired(ns.only, ns.repeat, ns.baseline.resolve())
        return
    fl = floor(ns.repeat)
    total_floor = fl["import"] + fl["first"]
    print(
        f"Numba's floor: import numba {fl['import']:.3f} s + first cached call "
        f"{fl['first']:.3f} s = {total_floor:.3f} s, CPU {fl['cpu']:.3f} s "
        f"(median of {ns.repeat} processes)\n"
    )
    head = "| workload | import compiler | eager 1st call | import + 1st call | over floor "
    head += "| CPU s | kernels compiled | stages cached | background jobs |"
    if ns.default:
        head += " default 1st call |"
    print(head)
    print("|---" * (10 + ns.default) + "|")
    breakdown = {}
    for name in ns.only:
        m = measure(name, ns.repeat, ns.default, ns.parts)
        total = m["import"] + m["first"]
        hit = "yes" if m["stage_hit"] else "no"
        row = (
            f"| {name} | {m['import']:.3f} | {m['first']:.3f} | {total:.3f} "
            f"| {total - total_floor:+.3f} | {m['cpu']:.3f} | {m['compiled']} | {hit} "
            f"| {m['background']} |"
        )
        if ns.default:
            row += f" {m['default_first']:.3f} |"
        print(row)
        breakdown[name] = m["parts"]
    for name, parts in breakdown.items():
        if parts:
            print(f"\n{name}, eager first call, median s:")
            for label, secs in parts.items():
                print(f"  {label:32s} {secs:.4f}")


if __name__ == "__main__":
    main()
