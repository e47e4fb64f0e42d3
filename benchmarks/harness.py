"""Measurements and the report printed by ``run.py`` (imported after threads are configured)."""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import adapters
import numpy as np
from workloads import WORKLOADS, Workload, tree_flatten, tree_unflatten

HERE = Path(__file__).resolve().parent


# gradc keeps compiled stages under platformdirs' user cache directory, which honours
# XDG_CACHE_HOME on Linux, unless GRADC_CACHE_DIR names another folder; Numba's own cache
# index follows NUMBA_CACHE_DIR. Pointing all three at a fresh folder gives a cold cache, and
# reusing the folder gives a warm one. (GRADC_CACHE_DIR set in the caller's environment used
# to win over XDG_CACHE_HOME, so a second run's "cold" first call found the first run's
# stages in the stage cache.)
def cache_env(folder: Path) -> dict[str, str]:
    return {
        "XDG_CACHE_HOME": str(folder),
        "GRADC_CACHE_DIR": str(folder / "gradc"),
        "NUMBA_CACHE_DIR": str(folder / "numba"),
    }


# ---------------------------------------------------------------------------------------------
# timing


def _time_n(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def bench(fn, repeat: int, min_sample_s: float, settle=None) -> tuple[float, float, float]:
    """(first call s, median s per call at steady state, s from the first call until
    `settle()` returned: gradc's background compile, docs/tiers.md; 0 without one).

    Two warm-up calls, then each sample loops enough calls to last ``min_sample_s``, so that
    microsecond calls are not dominated by timer resolution. GC is off while sampling, as in
    ``timeit``.
    """
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    fn()
    settled = 0.0
    if settle is not None:
        settle()
        settled = time.perf_counter() - t0
    n = 1
    while True:
        t = _time_n(fn, n)
        if t >= min_sample_s or n >= 1 << 20:
            break
        n = max(2 * n, int(n * min_sample_s / max(t, 1e-9) * 1.2))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        samples = [_time_n(fn, n) / n for _ in range(repeat)]
    finally:
        if gc_was_enabled:
            gc.enable()
    return first, statistics.median(samples), settled


def peak_bytes(fn) -> int:
    """tracemalloc peak above the starting level during one steady call.

    tracemalloc sees Python objects and NumPy's array buffers (NumPy reports them to it); it
    does not see memory allocated inside Numba-compiled code, BLAS workspaces, JAX or torch.
    """
    tracemalloc.start()
    try:
        fn()  # anything first-time under tracing
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        del out
    finally:
        tracemalloc.stop()
    return peak


def memory_bandwidth(quick: bool, repeat: int) -> float:
    """Bytes/s of a large single-threaded array copy (counting the read and the write)."""
    n = (1 << 24) if quick else (1 << 25)
    src = np.ones(n)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    times = []
    for _ in range(max(repeat, 3)):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 2 * src.nbytes / statistics.median(times)


def max_rel_error(value, grads, ref_value, ref_grads) -> float:
    """Largest leaf-wise error ``max|a - b| / max|b|`` over the value and every gradient leaf."""
    pairs = [(value, ref_value)] + list(zip(tree_flatten(grads)[0], tree_flatten(ref_grads)[0]))
    if len(tree_flatten(grads)[0]) != len(tree_flatten(ref_grads)[0]):
        return float("inf")
    worst = 0.0
    for a, b in pairs:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(b), initial=0.0)), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)) / scale)
    return worst


# ---------------------------------------------------------------------------------------------
# first calls in new processes


def child(name: str) -> int:
    """Run inside a fresh process: build data, then time ``import compiler`` and one call."""
    w = WORKLOADS[name]
    params, data = w.make(np.random.default_rng(0), w.dtype)
    t0 = time.perf_counter()
    from compiler import value_and_grad

    t1 = time.perf_counter()
    value_and_grad(w.loss, **w.gradc_options)(params, *data)
    t2 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "call_s": t2 - t1, "total_s": t2 - t0}))
    return 0


def new_process_first_call(name: str, folder: Path, threads: int) -> dict:
    env = dict(os.environ)
    env.update(cache_env(folder))
    cmd = [sys.executable, str(HERE / "run.py"), "--child", name, "--threads", str(threads)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"child exited {proc.returncode}: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# formatting


def fmt_us(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    us = seconds * 1e6
    return f"{us:,.2f}" if us < 10 else f"{us:,.1f}" if us < 1000 else f"{us:,.0f}"


def fmt_s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


def fmt_mb(nbytes: int | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**20:,.1f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(wd) for h, wd in zip(header, widths)) + " |"
    rule = "|" + "|".join("-" * (wd + 2) for wd in widths) + "|"
    body = [
        "| "
        + " | ".join(
            c.ljust(wd) if i == 0 else c.rjust(wd) for i, (c, wd) in enumerate(zip(r, widths))
        )
        + " |"
        for r in rows
    ]
    return "\n".join([line, rule, *body])


# ---------------------------------------------------------------------------------------------
# the run


class Report:
    def __init__(self):
        self.notes: list[str] = []
        self.errors: list[str] = []

    def error(self, where: str, exc: BaseException) -> str:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        self.errors.append(f"{where}: {type(exc).__name__}: {msg}")
        return "error"


def versions(frameworks) -> str:
    import numba

    parts = [
        f"Python {platform.python_version()}",
        f"NumPy {np.__version__}",
        f"Numba {numba.__version__}",
    ]
    for fw in frameworks:
        mod = getattr(fw, "jax", None) or getattr(fw, "torch", None)
        if mod is not None:
            parts.append(f"{fw.name} {mod.__version__}")
    return ", ".join(parts)


def _as_f64(tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten(
        spec,
        [
            x.astype(np.float64) if isinstance(x, np.ndarray) and x.dtype == np.float32 else x
            for x in leaves
        ],
    )


def measure_workload(w: Workload, fws: dict, args, cache_root: Path | None, rep: Report) -> dict:
    quick = args.quick
    min_sample = 0.01 if quick else 0.1
    params, data = w.make(np.random.default_rng(0), w.dtype)
    # the reference is float64 whatever the workload's dtype: "max rel err" is the error
    # against float64, the float32 rounding included
    ref_value, ref_grads = w.numpy_vg(*_as_f64((params, *data)))
    row: dict = {"name": w.name, "time": {}, "first": {}, "peak": {}}

    gradc = fws.get("gradc")
    if gradc is not None and cache_root is not None:
        folder = cache_root / w.name
        try:
            row["cold"] = new_process_first_call(w.name, folder, args.threads)["call_s"]
            row["warm"] = new_process_first_call(w.name, folder, args.threads)["total_s"]
        except Exception as exc:  # noqa: BLE001 - report and carry on with the other columns
            row["cold"] = row["warm"] = rep.error(f"{w.name} new-process first call", exc)

    runners = {}
    for fname, fw in fws.items():
        try:
            runner = fw.prepare(w, params, data)
            if runner is not None:
                row["first"][fname], row["time"][fname], settled = bench(
                    runner.call, args.repeat, min_sample, runner.settle
                )
                if runner.settle is not None:
                    rep.notes.append(
                        f"`{w.name}`: gradc's background compile was done {settled:.2f} s "
                        "after its first call (calls until then ran on the NumPy tier); the "
                        "steady column is measured after it"
                    )
                runners[fname] = runner
        except Exception as exc:  # noqa: BLE001
            row["time"][fname] = rep.error(f"{w.name} {fname}", exc)

    if "gradc" in row["first"] and "cold" not in row:
        row["cold"] = row["first"]["gradc"]  # --no-subprocess: this process's first call
    for fname in ("NumPy", "gradc"):
        if fname in runners:
            row["peak"][fname] = peak_bytes(runners[fname].call)
    if "gradc" in runners:
        # the arena's buffer sets were allocated by the first call and are reused, so the
        # steady call's tracemalloc peak misses them: count them (the kernels themselves
        # allocate nothing; they write into the arena and the outputs)
        mem = gradc.memory(w)
        row["peak"]["gradc"] += mem["held"]
        row["planned"], row["plan_stage"] = mem["planned"], mem["plan_stage"]
        out = runners["gradc"].call()
        row["out_bytes"] = sum(np.asarray(x).nbytes for x in tree_flatten(out)[0])
        del out
    if "gradc" in runners:
        try:
            value, grads = runners["gradc"].call_numpy()
            row["err"] = max_rel_error(value, grads, ref_value, ref_grads)
        except Exception as exc:  # noqa: BLE001
            row["err"] = rep.error(f"{w.name} gradc result", exc)
    row["_params"], row["_runners"] = params, runners
    return row


def mlp_new_batch(w: Workload, row: dict, fws: dict, args, rep: Report) -> None:
    """First call and steady time at a batch size not seen before (gradc: retrace, no
    recompile expected; JAX: retrace and recompile)."""
    batch = 128
    params = row["_params"]
    _, data = w.make(np.random.default_rng(1), w.dtype, batch=batch)
    parts = []
    for fname in ("gradc", "JAX", "NumPy"):
        if fname not in row["_runners"]:
            continue
        try:
            runner = fws[fname].prepare(w, params, data)
            first, steady, _ = bench(
                runner.call, args.repeat, 0.01 if args.quick else 0.1, runner.settle
            )
            parts.append(f"{fname} first call {first * 1e3:,.1f} ms, steady {fmt_us(steady)} µs")
        except Exception as exc:  # noqa: BLE001
            parts.append(f"{fname} " + rep.error(f"{w.name} batch {batch} {fname}", exc))
    rep.notes.append(f"`{w.name}` at a new batch size {batch} after warm-up: " + "; ".join(parts))


def arith_bound(w: Workload, row: dict, bandwidth: float, rep: Report) -> None:
    x, _ = w.make(np.random.default_rng(0), w.dtype)
    bound = 2 * x.nbytes / bandwidth  # read x once, write the gradient once
    parts = []
    for fname in ("gradc", "NumPy", "JAX", "PyTorch"):
        t = row["time"].get(fname)
        if isinstance(t, float):
            parts.append(f"{fname} {fmt_us(t)} µs = {t / bound:.1f}x")
    rep.notes.append(
        f"`{w.name}` bandwidth bound (read x once + write grad once, "
        f"{2 * x.nbytes / 2**20:.0f} MiB): {fmt_us(bound)} µs; " + ", ".join(parts)
    )


def planned_note(results: list[dict], rep: Report) -> None:
    """Target: gradc's planned peak of intermediates <= the NumPy backprop's measured peak."""
    parts = []
    for r in results:
        npk, planned = r["peak"].get("NumPy"), r.get("planned")
        if npk is None or planned is None:
            continue
        ok = "ok" if planned <= npk else "OVER"
        parts.append(
            f"{r['name']} {fmt_mb(planned)} / {fmt_mb(npk)} MiB = {planned / max(npk, 1):.2f} {ok}"
        )
    if parts:
        rep.notes.append(
            "planned peak of intermediates (the arena of the compiled graph's buffer plan; "
            "inputs and outputs excluded) vs the NumPy backprop's tracemalloc peak, target "
            "<= 1: " + "; ".join(parts)
        )


def sqrt_note(results: list[dict], rep: Report) -> None:
    """`deep` with memory='sqrt' against the default: measured intermediates and time."""
    rows = {r["name"]: r for r in results}
    base, sq = rows.get("deep"), rows.get("deep-sqrt")
    if base is None or sq is None:
        return
    try:
        inter = {
            k: r["peak"]["gradc"] - r["out_bytes"] for k, r in (("default", base), ("sqrt", sq))
        }
        t0, t1 = base["time"]["gradc"], sq["time"]["gradc"]
        rep.notes.append(
            f"`deep` memory='sqrt' vs default: measured intermediates (peak MiB gradc minus "
            f"the returned value and gradients) {fmt_mb(inter['sqrt'])} vs "
            f"{fmt_mb(inter['default'])} MiB = {inter['sqrt'] / max(inter['default'], 1):.2f}x "
            f"(target <= 0.35x); steady time {fmt_us(t1)} vs {fmt_us(t0)} µs = "
            f"{t1 / t0:.2f}x (target <= 1.4x)"
        )
    except (KeyError, TypeError):
        pass


def build_rows(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    names = ["gradc", "NumPy", "JAX", "PyTorch", "torch.compile"]
    header = ["workload", "cold 1st call s", "new-proc 1st call s"]
    header += [f"{n} µs" for n in names]
    header += [
        "gradc/NumPy",
        "gradc/JAX",
        "gradc/torch.compile",
        "peak MiB NumPy",
        "peak MiB gradc",
        "planned MiB gradc",
        "max rel err",
        "JAX 1st call s",
    ]
    rows = []
    for r in results:
        t = r["time"]
        num = {n: t.get(n) if isinstance(t.get(n), float) else None for n in names}

        err = r.get("err")
        rows.append(
            [
                r["name"],
                r["cold"] if isinstance(r.get("cold"), str) else fmt_s(r.get("cold")),
                r["warm"] if isinstance(r.get("warm"), str) else fmt_s(r.get("warm")),
                *[t[n] if isinstance(t.get(n), str) else fmt_us(num[n]) for n in names],
                fmt_ratio(num["gradc"], num["NumPy"]),
                fmt_ratio(num["gradc"], num["JAX"]),
                fmt_ratio(num["gradc"], num["torch.compile"]),
                fmt_mb(r["peak"].get("NumPy")),
                fmt_mb(r["peak"].get("gradc")),
                fmt_mb(r.get("planned")),
                err if isinstance(err, str) else "n/a" if err is None else f"{err:.1e}",
                fmt_s(r["first"].get("JAX")),
            ]
        )
    return header, rows


def run(args) -> int:
    names = args.only or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(
            f"unknown workload(s): {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}",
            file=sys.stderr,
        )
        return 2

    rep = Report()
    cache_root = None
    fws: dict = {}
    if not args.no_gradc:
        cache_root = Path(tempfile.mkdtemp(prefix="gradc-bench-"))
        # this process compiles into its own folder, so the per-workload folders the child
        # processes use stay cold until their first child fills them
        os.environ.update(cache_env(cache_root / "main"))
        try:
            fws["gradc"] = adapters.GradcFramework()
        except ImportError as exc:
            print(f"cannot import gradc ({exc}); run with --no-gradc", file=sys.stderr)
            shutil.rmtree(cache_root, ignore_errors=True)
            return 2
    fws["NumPy"] = adapters.NumpyFramework()
    for fw in adapters.available_frameworks(args.threads):
        fws[fw.name] = fw

    print(f"# gradc benchmarks ({'quick, ' if args.quick else ''}median of {args.repeat})\n")
    print(
        f"{versions(fws.values())}; {args.threads} thread(s) for BLAS/Numba/XLA/torch on "
        f"{os.cpu_count()} CPU(s) ({platform.machine()}, {platform.processor() or '?'})"
    )
    missing = [n for n in ("gradc", "JAX", "PyTorch") if n not in fws]
    if missing:
        print(f"not measured: {', '.join(missing)}")
    bandwidth = memory_bandwidth(args.quick, args.repeat)
    print(
        f"memory bandwidth (single-threaded array copy, read + write): {bandwidth / 1e9:.1f} GB/s\n"
    )

    results = []
    try:
        for name in names:
            w = WORKLOADS[name]
            print(f"measuring {name}: {w.description} ...", file=sys.stderr, flush=True)
            row = measure_workload(w, fws, args, None if args.no_subprocess else cache_root, rep)
            if name == "mlp":
                mlp_new_batch(w, row, fws, args, rep)
            if name == "arith":
                arith_bound(w, row, bandwidth, rep)
            results.append(row)
    finally:
        if cache_root is not None:
            shutil.rmtree(cache_root, ignore_errors=True)

    planned_note(results, rep)
    sqrt_note(results, rep)
    print(markdown_table(*build_rows(results)))
    print()
    print(
        "Times are per call of value-and-gradient at steady state (µs). cold 1st call: "
        "trace + compile in a new process with an empty disk cache (import excluded); "
        "new-proc 1st call: a second new process with that cache warm, including "
        "`import compiler`. Peak MiB: tracemalloc, one steady call (sees NumPy buffers, "
        "not memory allocated inside Numba code, where gradc's kernels allocate nothing); "
        "gradc's adds the arena buffer sets it holds between calls. Planned MiB: the arena "
        "size of gradc's buffer plan (intermediates only). max rel err: gradc vs "
        "hand-written NumPy, max|a-b|/max|b| per leaf. JAX is jit(value_and_grad) on "
        "device arrays; PyTorch zeroes grads, runs forward and backward on tensors sharing "
        "the NumPy buffers."
    )
    for note in rep.notes:
        print(f"\n- {note}")
    if rep.errors:
        print("\nErrors:")
        for e in rep.errors:
            print(f"- {e}")
    return 0
