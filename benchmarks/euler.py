"""Time to first gradient of an unrolled loop: an explicit Euler integrator, 20 and 100 steps.

    python benchmarks/euler.py                 # the table (each cell in a fresh process)
    python benchmarks/euler.py --steps 20 100 500 --size 8000

The integrator is a field of damped pendulums, x'' = -k sin x - c x' + 0.1 cos(0.3 t),
unrolled by a Python loop over `steps` Euler steps on `size` elements, loss the squared
distance of the final x to a target, differentiated in k and c.

Two fresh processes per step count, each with an empty gradc cache:

- *stages*: the pipeline run by hand, each stage timed on its own: trace, autodiff (the
  joint graph), passes (the algebraic passes), plan, lowering (route, fuse, pushdown,
  schedule, buffers), codegen (render the module, load it, bind the params) and compile
  (the first call: Numba compiles the kernels it runs);
- *end to end*: `value_and_grad(loss, compile="eager")`'s first call (what a user waits
  for, `import compiler` excluded), then the first call at a new size (the same structure:
  nothing may compile, so this is tracing, passes and codegen alone), and the kernel counts:
  `kernels` the distinct njit functions the stage's module defines (a serial and a parallel
  variant per loop), `compiled` the specialisations Numba compiled (`compile_stats`); and
  the steady-state call (best of 20).

Each stage includes what it imports on first use.

A third process times the default mode's first call (`compile="background"`: the NumPy tier
answers while Numba compiles in the background, docs/tiers.md).

The targets (issue 12): the 100-step eager first call at most 1.5x the 20-step one; the
background first call at most 0.25x the eager one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DT = 0.05
STEPS = 20


def loss(k, c, x0, target):
    """The integrator (module doc); `STEPS` is read at trace time, so each count retraces."""
    x, v = x0, 0.0 * x0
    for t in range(STEPS):
        x, v = x + DT * v, v + DT * (-k * np.sin(x) - c * v + 0.1 * np.cos(0.3 * t))
    return np.sum((x - target) ** 2)


def _args(size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    k, c = 1.0 + 0.1 * rng.random(size), 0.2 + 0.1 * rng.random(size)
    return [k, c, rng.standard_normal(size), rng.standard_normal(size)]


def _stages(steps: int, size: int) -> dict:
    """Each pipeline stage timed on its own (the same calls `pipeline.compile` makes)."""
    global STEPS
    STEPS = steps
    from compiler.autodiff import vjp_graph
    from compiler.codegen import compile_graph
    from compiler.codegen.prepare import lower_passes
    from compiler.pipeline import Options, optimize
    from compiler.plan import plan
    from compiler.trace import trace_tree

    args = _args(size)
    out, t = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        out[name] = now - t
        t = now

    g = trace_tree(loss, tuple(args)).graph
    lap("trace")
    joint = vjp_graph(g, [0, 1], seeds="ones", ct_outputs=(0,))
    lap("autodiff")
    pre = optimize(joint)
    lap("passes")
    p = plan(pre, Options().policy())
    lap("plan")
    low = lower_passes(p.graph, "value_and_grad")
    lap("lowering")
    fn = compile_graph(low.graph, low.buffers, low.name)
    lap("codegen")
    fn(*args)
    lap("compile")
    out["nodes"] = len(joint.nodes)
    out["kernels"] = fn.kernel_count
    return out


def _end_to_end(steps: int, size: int) -> dict:
    global STEPS
    STEPS = steps
    from compiler import value_and_grad
    from compiler.codegen.compile import compile_stats

    f = value_and_grad(loss, argnums=(0, 1), compile="eager")  # compiled from the first call
    args = _args(size)
    t0 = time.perf_counter()
    f(*args)
    first = time.perf_counter() - t0
    st = compile_stats()
    steady = float("inf")
    for _ in range(20):
        t0 = time.perf_counter()
        f(*args)
        steady = min(steady, time.perf_counter() - t0)
    t0 = time.perf_counter()
    f(*_args(size + 8, seed=1))
    resize = time.perf_counter() - t0
    again = compile_stats()
    return {
        "first": first,
        "resize": resize,
        "steady": steady,
        "kernels": st.kernels,
        "compiled": st.compiled,
        "resize_compiled": again.compiled - st.compiled,
    }


def _background(steps: int, size: int) -> dict:
    """The default mode's first call: it answers on the NumPy tier (docs/tiers.md)."""
    global STEPS
    STEPS = steps
    from compiler import value_and_grad

    f = value_and_grad(loss, argnums=(0, 1), compile="background")
    args = _args(size)
    t0 = time.perf_counter()
    f(*args)
    return {"first": time.perf_counter() - t0}


def _fresh(what: str, steps: int, size: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GRADC_CACHE_DIR": cache, "OPENBLAS_NUM_THREADS": "1"}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, __file__, "--one", what, str(steps), "--size", str(size)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


STAGES = ("trace", "autodiff", "passes", "plan", "lowering", "codegen", "compile")


def table(steps: list[int], size: int) -> None:
    rows = {
        n: (_fresh("stages", n, size), _fresh("e2e", n, size), _fresh("background", n, size))
        for n in steps
    }
    print(f"Euler integrator on {size} elements; seconds, each column a fresh process\n")
    print(
        "| steps | joint nodes | " + " | ".join(STAGES) + " | first call (eager) | new size "
        "| kernels | compiled | compiled at new size | steady ms | first call (background) |"
    )
    print("|---" * (len(STAGES) + 9) + "|")
    for n, (s, e, b) in rows.items():
        cells = " | ".join(f"{s[k]:.3f}" for k in STAGES)
        print(
            f"| {n} | {s['nodes']} | {cells} | {e['first']:.2f} | {e['resize']:.3f} "
            f"| {e['kernels']} | {e['compiled']} | {e['resize_compiled']} "
            f"| {e['steady'] * 1e3:.2f} | {b['first']:.2f} |"
        )
    if len(steps) > 1:
        a, b = rows[steps[0]][1]["first"], rows[steps[-1]][1]["first"]
        print(f"\nfirst call, {steps[-1]} steps / {steps[0]} steps: {b / a:.2f}x (target <= 1.5x)")
    for n, (_, e, b) in rows.items():
        ratio = b["first"] / e["first"]
        print(f"{n} steps, background / eager first call: {ratio:.2f}x (target <= 0.25x)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", nargs=2, metavar=("WHAT", "STEPS"))
    ap.add_argument("--steps", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--size", type=int, default=8000)
    ns = ap.parse_args()
    if ns.one:
        fn = {"stages": _stages, "e2e": _end_to_end, "background": _background}[ns.one[0]]
        print(json.dumps(fn(int(ns.one[1]), ns.size)))
    else:
        table(ns.steps, ns.size)
