"""scan against the unrolled Python loop: the rnn workload at T = 100 and T = 1000.

    python benchmarks/loops.py            # the table (each cell in a fresh process)
    python benchmarks/loops.py --memory   # checkpoint=k: stored bytes and planned peak

Each (variant, T) runs in its own process with an empty gradc cache, so "first call" is the
whole cold path (trace, autodiff, passes, plan, codegen, Numba compile, run) and includes
Numba's one-time process start for both variants alike. "steady" is the best of 20 calls
(5 at T = 1000 unrolled). OPENBLAS_NUM_THREADS=1, as in benchmarks/run.py.
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


def rnn_scan(p, xs, h0, target, checkpoint=None):
    """The rnn workload (benchmarks/workloads.py) written with scan."""
    from compiler import scan

    def step(h, x):
        return np.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"]), None

    h, _ = scan(step, h0, xs, checkpoint=checkpoint)
    return np.mean((h - target) ** 2)


def _one(variant: str, steps: int) -> dict:
    from benchmarks.workloads import rnn_loss, rnn_make
    from compiler import value_and_grad

    params, (xs, h0, target) = rnn_make(np.random.default_rng(0), steps=steps)
    fn = value_and_grad(rnn_scan if variant == "scan" else rnn_loss, compile="eager")
    t0 = time.perf_counter()
    v, g = fn(params, xs, h0, target)
    first = time.perf_counter() - t0
    reps = 5 if (variant == "unrolled" and steps >= 1000) else 20
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(params, xs, h0, target)
        best = min(best, time.perf_counter() - t0)
    return {"first": first, "steady": best, "value": float(v), "gWh": float(np.sum(g["Wh"]))}


def _cell(variant: str, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GRADC_CACHE_DIR": cache, "OPENBLAS_NUM_THREADS": "1"}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        out = subprocess.run(
            [sys.executable, __file__, "--one", variant, str(steps)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def table() -> None:
    rows = []
    for steps in (100, 1000):
        cells = {v: _cell(v, steps) for v in ("scan", "unrolled")}
        s, u = cells["scan"], cells["unrolled"]
        assert abs(s["value"] - u["value"]) <= 1e-10 * abs(u["value"])
        assert abs(s["gWh"] - u["gWh"]) <= 1e-8 * max(1.0, abs(u["gWh"]))
        rows.append((steps, s, u))
    print("| T | scan first call | unrolled first call | scan steady | unrolled steady | ratio |")
    print("|---|---|---|---|---|---|")
    for steps, s, u in rows:
        print(
            f"| {steps} | {s['first']:.2f} s | {u['first']:.2f} s | {s['steady'] * 1e3:.1f} ms "
            f"| {u['steady'] * 1e3:.1f} ms | {s['steady'] / u['steady']:.2f}x |"
        )
    r = rows[1][1]["first"] / rows[0][1]["first"]
    print(f"\nscan first call T=1000 / T=100: {r:.2f}x")


def memory() -> None:
    from benchmarks.workloads import rnn_make
    from compiler import trace
    from compiler.autodiff import vjp_graph
    from compiler.pipeline import Options, grad_stages

    params, (xs, h0, target) = rnn_make(np.random.default_rng(0), steps=1000)
    print("| checkpoint | stored for the reverse loop | planned peak (arena) |")
    print("|---|---|---|")
    for k in (None, 32, 10):
        g = trace(lambda p, *a, k=k: rnn_scan(p, *a, checkpoint=k), params, xs, h0, target)
        st = grad_stages(g, vjp_graph(g, [0, 1, 2]), Options())
        stored = sum(
            v.type.nbytes
            for n in st.passes.nodes
            if n.op == "scan" and not n.attrs["reverse"]
            for v in n.outputs[n.attrs["n_carry"] :]
        )
        peak = st.plan.peak_bytes
        print(f"| {k} | {stored / 2**20:.1f} MiB | {peak / 2**20:.1f} MiB |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", nargs=2)
    ap.add_argument("--memory", action="store_true")
    ns = ap.parse_args()
    if ns.one:
        print(json.dumps(_one(ns.one[0], int(ns.one[1]))))
    elif ns.memory:
        memory()
    else:
        table()
