"""Benchmark compiler.distributed: logistic regression value-and-gradient at 2 million rows.

    python benchmarks/dask_logreg.py [--rows N] [--repeat K] [--chunks 8 32 128]

Rows of the report, each the median time of one value-and-gradient call (warm: compiled, data
in memory, on the workers for Dask): single-process gradc (`compiler.value_and_grad` on NumPy
arrays), a hand-written NumPy gradient in one process, gradc on Dask with 1 and with 2 worker
processes (`compiler.distributed.value_and_grad`), and plain dask.array code with the same
hand-written gradient on those clusters. Then the overhead per chunk (the slope of the call
time against the number of chunks at 2 million rows, and the difference between 64 tiny chunks
and one, 2 workers) and per call (one small chunk). Every process
runs BLAS and Numba with one thread, so "1 worker" and "single process" compare like for like.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from run import thread_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(thread_env(1))  # before NumPy/Numba load, and inherited by the workers

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
from distributed import Client, LocalCluster, get_task_stream, wait  # noqa: E402

from compiler import distributed, value_and_grad  # noqa: E402

D = 10
L2 = 1e-2


def loss(theta, X, t):
    """Mean logistic loss with labels t in {-1, +1}, plus an L2 penalty (as the example)."""
    w, b = theta[:-1], theta[-1]
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, -t * z)) + 0.5 * L2 * np.sum(w * w)


def numpy_vg(theta, X, t):
    """The value and gradient by hand: d/dz log(1 + exp(-t z)) = -t sigmoid(-t z)."""
    w, b = theta[:-1], theta[-1]
    z = X @ w + b
    value = np.mean(np.logaddexp(0.0, -t * z)) + 0.5 * L2 * np.sum(w * w)
    dz = -t / (1.0 + np.exp(t * z)) / len(t)
    return value, np.concatenate([X.T @ dz + L2 * w, [np.sum(dz)]])


def dask_array_vg(theta, X, t):
    """The same hand-written gradient as dask.array code: one graph, one compute per call."""
    w, b = theta[:-1], theta[-1]
    z = X @ w + b
    value = da.mean(da.logaddexp(0.0, -t * z)) + 0.5 * L2 * np.sum(w * w)
    dz = -t / (1.0 + da.exp(t * z)) / t.shape[0]
    value, gw, gb = dask.compute(value, X.T @ dz, da.sum(dz))
    return value, np.concatenate([gw + L2 * w, [gb]])


def interleaved(calls: dict, repeat: int) -> tuple[dict, dict]:
    """Median seconds per call of each `name: (fun, args)`, sampled round-robin so that every
    implementation sees the same background load; two warm-up calls each; last results."""
    outs = {name: fun(*args) for name, (fun, args) in calls.items()}
    outs = {name: fun(*args) for name, (fun, args) in calls.items()}
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, (fun, args) in calls.items():
            t0 = time.perf_counter()
            outs[name] = fun(*args)
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in samples.items()}, outs


def err(out, ref) -> float:
    """Max relative error of (value, grad) against the single-process result."""
    gv = abs(out[0] - ref[0]) / abs(ref[0])
    gg = np.max(np.abs(out[1] - ref[1])) / np.max(np.abs(ref[1]))
    return float(max(gv, gg))


def make_data(client, rows: int, chunk_rows: int):
    """Features and labels generated on the workers (the same for every cluster) and kept there."""
    w_true = np.random.default_rng(0).standard_normal(D)
    rng = da.random.default_rng(1)
    X = rng.standard_normal((rows, D), chunks=(chunk_rows, D))
    p = 1.0 / (1.0 + da.exp(-(X @ w_true)))
    t = da.where(rng.random(rows, chunks=chunk_rows) < p, 1.0, -1.0)
    X, t = client.persist([X, t])
    wait([X, t])
    return X, t


def rechunked(client, X, t, chunks: int):
    rows = -(-X.shape[0] // chunks)
    X, t = client.persist([X.rechunk((rows, D)), t.rechunk(rows)])
    wait([X, t])
    return X, t


def chunk_compute_ms(client, f, args) -> float:
    """Median worker time of one chunk's task (Dask's task stream), for one call of `f`."""
    with get_task_stream(client) as ts:
        f(*args)
    durations = [
        s["stop"] - s["start"]
        for r in ts.data
        if "_chunk_partial" in str(r["key"])
        for s in r["startstops"]
        if s["action"] == "compute"
    ]
    return statistics.median(durations) * 1e3


def main(rows: int, repeat: int, chunk_counts: list[int]) -> None:
    theta = 0.1 * np.random.default_rng(2).standard_normal(D + 1)
    chunk_rows = -(-rows // chunk_counts[0])
    table, notes, sweep, tiny = [], [], [], {}
    single = value_and_grad(loss, compile="eager")  # steady state: compiled code
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            Xd, td = make_data(client, rows, chunk_rows)
            X, t = dask.compute(Xd, td)
            f = distributed.value_and_grad(loss, reduce="mean", compile="eager")
            calls = {
                "gradc, single process": (single, (theta, X, t)),
                "NumPy by hand, single process": (numpy_vg, (theta, X, t)),
                f"gradc on Dask, {workers} worker(s)": (f, (theta, Xd, td)),
                f"dask.array by hand, {workers} worker(s)": (dask_array_vg, (theta, Xd, td)),
            }
            secs, outs = interleaved(calls, repeat)
            base, ref = secs["gradc, single process"], outs["gradc, single process"]
            for name in calls:
                local = "single" in name
                label = f"{name} (beside {workers} worker(s))" if local else name
                chunks = "-" if local else Xd.numblocks[0]
                table.append((label, chunks, secs[name], secs[name] / base, err(outs[name], ref)))
            ms = chunk_compute_ms(client, f, (theta, Xd, td))
            notes.append(
                f"{workers} worker(s): a {chunk_rows:,}-row chunk takes {ms:.1f} ms on a "
                "worker (median task time in Dask's task stream)"
            )
            if workers == 2:
                for k in chunk_counts:
                    Xk, tk = rechunked(client, Xd, td, k)
                    s, _ = interleaved({"f": (f, (theta, Xk, tk))}, repeat)
                    sweep.append((Xk.numblocks[0], s["f"]))
                # tiny chunks, where compute is negligible: 1 chunk vs 64 chunks of 100 rows
                one = rechunked(client, Xd[:6400], td[:6400], 1)
                many = rechunked(client, Xd[:6400], td[:6400], 64)
                tiny, _ = interleaved({"1": (f, (theta, *one)), "64": (f, (theta, *many))}, repeat)
    report(rows, repeat, table, notes, sweep, tiny)


def report(rows, repeat, table, notes, sweep, tiny) -> None:
    load = os.getloadavg()[0]
    print(
        f"logreg value_and_grad, {rows:,} rows x {D} features, float64, median of {repeat} "
        f"interleaved calls; 1-minute load average at the end {load:.1f} on {os.cpu_count()} cores"
    )
    print()
    print("| implementation | chunks | ms per call | vs gradc single process | max rel err |")
    print("|---|---|---|---|---|")
    for name, chunks, s, ratio, e in table:
        print(f"| {name} | {chunks} | {s * 1e3:,.1f} | {ratio:.2f}x | {e:.1e} |")
    print()
    for line in notes:
        print(f"- {line}")
    n, secs = np.array([k for k, _ in sweep], float), np.array([s for _, s in sweep])
    slope, intercept = np.polyfit(n, secs, 1)
    by_chunks = ", ".join(f"{k} chunks {s * 1e3:,.1f} ms" for k, s in sweep)
    print(f"- gradc on Dask, 2 workers, by number of chunks: {by_chunks}")
    print(
        f"- overhead per chunk (slope of a line fit): {slope * 1e3:.2f} ms; "
        f"intercept {intercept * 1e3:,.1f} ms"
    )
    print(
        f"- overhead per call (one chunk of 6,400 rows, 2 workers): {tiny['1'] * 1e3:.1f} ms; "
        f"per chunk from tiny chunks ((64 chunks of 100 rows - 1 chunk) / 63): "
        f"{(tiny['64'] - tiny['1']) / 63 * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument(
        "--chunks",
        type=int,
        nargs="+",
        default=[8, 32, 128],
        help="chunk counts: the first for the table, all for the per-chunk overhead fit",
    )
    a = p.parse_args()
    main(a.rows, a.repeat, a.chunks)
