"""Tiered execution, measured (docs/tiers.md): stalls and the caller's slowdown during a compile.

    python benchmarks/tiers.py stalls [--calls 40000]    no call after the first over 50 ms?
    python benchmarks/tiers.py disturbance [--seconds 3] thread vs helper process

`stalls` runs a 16-32-1 MLP at batch 64 (every loop under 4,096 elements) in the default mode
(`compile="background"`) from an empty cache, in a fresh process, and reports the first call,
the slowest later call, how many later calls took over 50 ms, and when the stage switched.

`disturbance` times the same MLP's calls on the NumPy tier (`compile="never"`, nothing
compiles for it) while something else compiles: nothing (the baseline), a background compile
in this process on the compile thread (without yielding, GRADC_COMPILE_SHARE=1, and with the
default yielding of runtime/yielding.py) and with a helper process
(`GRADC_COMPILE_IN=process`: Numba compiles there, the thread only loads), and an unrelated
process compiling. The ratio of mean call times is the slowdown the caller sees.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = textwrap.dedent(
    """
    import numpy as np

    def mlp(p, x, y):
        h = np.tanh(x @ p["W1"] + p["b1"])
        return np.mean((h @ p["W2"] + p["b2"] - y) ** 2)

    def target1(p, x, y):  # what compiles meanwhile: several fused bodies, a few kernels
        h = np.tanh(x @ p["W1"] + p["b1"])
        z = np.log1p(np.exp(h @ p["W2"] + p["b2"]))
        return np.mean((z - y) ** 2) + 0.01 * np.sum(np.sin(p["W1"]) ** 2)

    def target2(p, x, y):  # the same work with other ops (target1's kernels are compiled)
        h = np.arctan(x @ p["W1"] - p["b1"])
        z = np.sqrt(1.0 + (h @ p["W2"] - p["b2"]) ** 2)
        return np.mean((z * y) ** 2) + 0.01 * np.sum(np.cos(p["W1"]) ** 2)

    def target3(p, x, y):  # and again
        h = np.sinh(x @ p["W1"] * p["b1"])
        z = np.expm1(-((h @ p["W2"] * p["b2"]) ** 2))
        return np.mean((z - y) ** 2) + 0.01 * np.sum(np.cosh(p["W1"]) ** 2)

    rng = np.random.default_rng(0)
    p = {"W1": rng.normal(size=(16, 32)) * 0.3, "b1": np.zeros(32),
         "W2": rng.normal(size=(32, 1)) * 0.3, "b2": np.zeros(1)}
    x, y = rng.normal(size=(64, 16)), rng.normal(size=(64, 1))
    """
)

STALLS = SETUP + textwrap.dedent(
    """
    import sys, time, json
    t0 = time.perf_counter()
    from compiler import value_and_grad
    from runtime import background
    t_import = time.perf_counter() - t0
    f = value_and_grad(mlp)
    times, switched = [], None
    stage = None
    for i in range(int(sys.argv[1])):
        t = time.perf_counter()
        v, g = f(p, x, y)
        times.append(time.perf_counter() - t)
        if stage is None:
            stage = next(iter(f._cache.values())).fn
        if switched is None and getattr(stage, "compiled", None) is not None:
            switched = i
        for k in p:
            p[k] -= 1e-3 * g[k]
    later = times[1:]
    print(json.dumps({
        "import_s": t_import, "first_s": times[0], "max_later_s": max(later),
        "over_50ms": sum(t > 0.05 for t in later), "switched_at_call": switched,
        "median_before_us": 1e6 * statistics.median(times[1:switched or None]),
        "median_after_us": 1e6 * statistics.median(times[switched:]) if switched else None,
        "calls": len(times),
    }))
    """
).replace("import sys, time, json", "import sys, time, json, statistics")


def _child(code: str, *args: str, env: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PYTHONPATH=str(ROOT), GRADC_CACHE_DIR=cache, **(env or {}))
        env.pop("GRADC_COMPILE", None)
        out = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True
        )
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stalls(calls: int) -> None:
    r = _child(STALLS, str(calls))
    print(f"{r['calls']:,} calls of a 16-32-1 MLP, batch 64, compile='background', cold cache")
    print(f"  import compiler          {r['import_s'] * 1e3:8.1f} ms")
    print(f"  first call               {r['first_s'] * 1e3:8.1f} ms")
    print(f"  slowest later call       {r['max_later_s'] * 1e3:8.1f} ms")
    print(f"  later calls over 50 ms   {r['over_50ms']:8d}")
    print(f"  switched to compiled at  call {r['switched_at_call']}")
    print(f"  median call, NumPy tier  {r['median_before_us']:8.1f} us")
    if r["median_after_us"] is not None:
        print(f"  median call, compiled    {r['median_after_us']:8.1f} us")


DISTURB = SETUP + textwrap.dedent(
    """
    import json, os, subprocess, sys, tempfile, time
    from compiler import value_and_grad
    from runtime import background
    seconds = float(sys.argv[1])
    caller = value_and_grad(mlp, compile="never")
    caller(p, x, y)

    def calls_while(busy):
        times = []
        t_end = time.perf_counter() + seconds
        while busy() if busy else time.perf_counter() < t_end:
            t = time.perf_counter()
            caller(p, x, y)
            times.append(time.perf_counter() - t)
        return times

    def summary(times):
        return {"mean_us": 1e6 * sum(times) / len(times), "max_ms": 1e3 * max(times),
                "calls": len(times)}

    out = {"baseline": summary(calls_while(None))}
    value_and_grad(mlp, compile="background")(p, x, y)  # the thread starts, imports Numba
    background.wait_idle()
    default_share = background.yielder.share if background.yielder else 1.0
    runs = [
        ("thread, no yielding", target1, "thread", 1.0),
        (f"thread, yielding (share {default_share})", target2, "thread", default_share),
        ("GRADC_COMPILE_IN=process", target3, "process", default_share),
    ]
    for name, target, where, share in runs:
        if background.yielder is not None:
            background.yielder.share = share
        os.environ["GRADC_COMPILE_IN"] = where
        t0 = time.perf_counter()
        value_and_grad(target, compile="background")(p, x, y)
        times = calls_while(lambda: background.stats()["pending"] > 0)
        out[name] = summary(times)
        out[name]["compile_s"] = time.perf_counter() - t0
    code = sys.argv[2]
    with tempfile.TemporaryDirectory() as cache:  # the same work as target1's, elsewhere
        env = dict(os.environ, GRADC_CACHE_DIR=cache, GRADC_COMPILE="eager")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        times = calls_while(lambda: proc.poll() is None)
        out["another process compiling"] = summary(times)
        out["another process compiling"]["compile_s"] = time.perf_counter() - t0
    print(json.dumps(out))
    """
)

HELPER = SETUP + textwrap.dedent(
    """
    from compiler import value_and_grad
    value_and_grad(target1, compile="eager")(p, x, y)
    """
)


def disturbance(seconds: float) -> None:
    r = _child(DISTURB, str(seconds), HELPER)
    base = r["baseline"]["mean_us"]
    print("caller: 16-32-1 MLP, batch 64, on the NumPy tier, while another function compiles")
    print(f"{'meanwhile':<34} {'mean call':>10} {'slowdown':>9} {'max call':>9} {'compile':>8}")
    for name, s in r.items():
        comp = f"{s['compile_s']:.2f} s" if "compile_s" in s else ""
        print(
            f"{name:<34} {s['mean_us']:7.1f} us {s['mean_us'] / base:8.2f}x "
            f"{s['max_ms']:6.2f} ms {comp:>8}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("stalls", "disturbance"))
    ap.add_argument("--calls", type=int, default=40_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    if a.what == "stalls":
        stalls(a.calls)
    else:
        disturbance(a.seconds)


if __name__ == "__main__":
    main()
