"""memory="sqrt" against the default on the issue's residual net: 64 tanh layers, width 256,
batch 4096 (`--batch` to change), float64.

    python benchmarks/deep_sqrt.py [--batch N] [--repeat N]

Reports, for each policy: the median steady time per value-and-gradient call (the policies'
calls interleaved, so that other load on the machine hits both alike), the memory of
its intermediates (the arena the compiled stage allocates, plus what tracemalloc sees during
a steady call beyond the returned value and gradients), and the planner's recomputation; then
the ratios (targets: time <= 1.4x, memory <= 0.35x) and the largest gradient difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from workloads import deep_loss, deep_make  # noqa: E402

from compiler import value_and_grad  # noqa: E402


def build(memory: str | None, params, data) -> dict:
    """Compile one policy; its intermediates' bytes, its plan and its gradients."""
    f = value_and_grad(deep_loss, memory=memory, compile="eager")  # steady: compiled
    out = f(params, *data)  # compile
    f(params, *data)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    res = f(params, *data)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    returned = sum(np.asarray(a).nbytes for wb in res[1] for a in wb) + 8
    st = f.stages(params, *data)
    arena = sum(low.arena_bytes for low in st.lowered)
    return {
        "f": f,
        "times": [],
        "bytes": arena + max(0, peak - returned),
        "arena": arena,
        "recomputed": st.plan.recompute_count,
        "forward": st.plan.n_forward,
        "segments": st.plan.segments,
        "grads": out[1],
    }


def measure(rows: dict, params, data, repeat: int) -> None:
    """Steady times, the policies interleaved so that other load hits both alike."""
    for _ in range(repeat):
        for r in rows.values():
            t0 = time.perf_counter()
            r["f"](params, *data)
            r["times"].append(time.perf_counter() - t0)
    for r in rows.values():
        r["time"] = statistics.median(r["times"])


def main() -> int:
    """Measure both policies and print the comparison; 1 if a target is missed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=5)
    ns = p.parse_args()
    params, data = deep_make(np.random.default_rng(0), batch=ns.batch)
    rows = {m: build(m, params, data) for m in (None, "sqrt")}
    measure(rows, params, data, ns.repeat)
    for m, r in rows.items():
        print(
            f"memory={m!s:<5} {r['time'] * 1e3:9.1f} ms  "
            f"intermediates {r['bytes'] / 2**20:8.1f} MiB "
            f"(arena {r['arena'] / 2**20:.1f} MiB)  {r['segments']} segments, "
            f"{r['recomputed']} of {r['forward']} forward nodes recomputed; "
            f"times {' '.join(f'{t * 1e3:.0f}' for t in r['times'])} ms"
        )
    d, s = rows[None], rows["sqrt"]
    t, mem = s["time"] / d["time"], s["bytes"] / d["bytes"]
    diff = max(
        float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
        for (ga, gb), (ha, hb) in zip(s["grads"], d["grads"])
        for a, b in ((ga, ha), (gb, hb))
    )
    print(f"sqrt / default: time {t:.2f}x (target <= 1.4), memory {mem:.2f}x (target <= 0.35)")
    print(f"gradients: max relative difference {diff:.1e}")
    return int(t > 1.4 or mem > 0.35 or diff > 1e-12)


if __name__ == "__main__":
    sys.exit(main())
