"""Concurrency: threads sharing compiled functions, and processes sharing a disk cache.

8 threads call the same and different compiled functions 1000 times each (first calls, so
traces and compiles, race too) and must get bit-for-bit what a single-threaded run gets;
NumPy keeps working in threads that are not tracing while others trace; two processes that
compile the same function at once both succeed and leave one valid cache entry per module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from compiler import grad, jit, value_and_grad, vjp

REPO = Path(__file__).resolve().parents[2]
N_THREADS = 8
N_CALLS = 1000


def _mlp(p, x):
    h = np.tanh(x @ p["W"] + p["b"])
    return np.mean((h - 0.5) ** 2)


def _inplace(x, s):
    out = np.zeros_like(x)  # np.zeros is patched while tracing: other threads must not see it
    out[1:] = x[:-1] * s
    out[0] += np.sum(x)
    return np.sum(np.sin(out))


def _seed(w, x, b, y):
    return (w * x + b - y) ** 2


def _workloads():
    rng = np.random.default_rng(0)
    p = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    x = rng.normal(size=(5, 3))
    v = rng.normal(size=6)
    vjp_fn = lambda v: vjp(lambda a: np.exp(a) * a, v)[1](np.ones_like(v))  # noqa: E731
    # (name, make the compiled function, its arguments, how to call it)
    return [
        ("mlp_value_and_grad", lambda: value_and_grad(_mlp), (p, x)),
        ("inplace_grad", lambda: grad(_inplace, argnums=(0, 1)), (v, 1.5)),
        ("seed_grad", lambda: grad(_seed, argnums=(0, 1, 2, 3)), (2.0, 3.0, 1.0, 4.0)),
        ("jit_softmax", lambda: jit(lambda z: np.exp(z) / np.sum(np.exp(z))), (v,)),
        ("vjp", lambda: vjp_fn, (v,)),
    ]


def _flat(result) -> list[np.ndarray]:
    import optree

    return [np.asarray(x) for x in optree.tree_leaves(result)]


def _same(a, b) -> bool:
    fa, fb = _flat(a), _flat(b)
    return len(fa) == len(fb) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
        for x, y in zip(fa, fb)
    )


def _single_threaded_answers(make, args, calls: int) -> list:
    """Every distinct result one thread gets over `calls` calls: a stage switches from NumPy
    calls to its compiled kernels once hot, which may change the last bit, so there can be
    two (each deterministic)."""
    f = make()
    seen: list = []
    for _ in range(calls):
        r = f(*args)
        if not any(_same(r, s) for s in seen):
            seen.append(r)
    return seen


def test_threads_same_and_different_functions_match_single_threaded():
    specs = _workloads()
    per_fn = N_THREADS * N_CALLS // len(specs) + N_THREADS
    want = {name: _single_threaded_answers(make, args, per_fn) for name, make, args in specs}
    assert all(1 <= len(w) <= 2 for w in want.values())
    shared = {name: make() for name, make, args in specs}  # never called yet: compiles race
    errors: list[str] = []
    start = threading.Barrier(N_THREADS)

    def worker(k: int) -> None:
        try:
            start.wait()
            for i in range(N_CALLS):
                name, make, args = specs[(k + i) % len(specs)]
                got = shared[name](*args)
                if not any(_same(got, w) for w in want[name]):
                    errors.append(f"thread {k} call {i} {name}: {got!r} not in {want[name]!r}")
                    return
        except Exception as exc:  # a crash in a thread must fail the test, not vanish
            errors.append(f"thread {k}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, "\n".join(errors[:5])


def test_threads_numpy_stays_numpy_in_threads_that_are_not_tracing():
    """While one thread traces (and np.zeros & co. are swapped), others get real arrays."""
    stop = threading.Event()
    bad: list[str] = []

    def plain_numpy() -> None:
        while not stop.is_set():
            for fn in (np.zeros, np.ones, np.empty):
                a = fn((3,), dtype=np.float64)
                if type(a) is not np.ndarray:
                    bad.append(f"{fn.__name__} gave {type(a).__name__}")
            if type(np.full((2,), 1.0)) is not np.ndarray or type(np.eye(2)) is not np.ndarray:
                bad.append("np.full / np.eye gave a non-array")

    watcher = threading.Thread(target=plain_numpy)
    watcher.start()
    try:
        for k in range(30):  # fresh transforms: every call traces
            g = grad(_inplace)(np.linspace(0.1, 1.0, 4 + k % 3), 2.0)
            assert g.shape == (4 + k % 3,)
    finally:
        stop.set()
        watcher.join()
    assert not bad, bad[:3]
    assert np.zeros is np.zeros and type(np.zeros(2)) is np.ndarray


PARALLEL_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    from compiler import value_and_grad
    f = value_and_grad(lambda x, y: np.sum(x * y + x * x), argnums=(0, 1))
    n = (1 << 20) + 3  # above the size where kernels run their parallel (prange) twin
    x, y = np.linspace(0.0, 1.0, n), np.linspace(1.0, 2.0, n)
    want = f(x, y)
    bad = []
    def work():
        for _ in range(10):
            v, (gx, gy) = f(x, y)
            if not (v == want[0] and np.array_equal(gx, want[1][0])
                    and np.array_equal(gy, want[1][1])):
                bad.append(v)
    ts = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print("mismatches", len(bad))
    sys.exit(1 if bad else 0)
    """
)


def test_threads_parallel_kernels_called_from_many_threads(tmp_path):
    """Numba's parallel kernels from 8 Python threads at once: no crash (a threading layer
    that is not thread-safe aborts the whole process, hence the subprocess), same answer."""
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        GRADC_CACHE_DIR=str(tmp_path / "cache"),
        GRADC_COMPILE="eager",
    )
    proc = subprocess.run(
        [sys.executable, "-c", PARALLEL_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "mismatches 0" in proc.stdout


# -- two processes, one disk cache ---------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys, time, warnings
    from pathlib import Path
    import numpy as np
    from runtime import cache
    import compiler

    def loss(W, x):
        h = np.tanh(x @ W)
        return np.sum(np.maximum(h, 0.1) ** 2) + np.mean(np.exp(-x))

    cache.version_tag()  # import Numba first, so the race is about compiling
    Path(sys.argv[1]).touch()
    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.002)
    rng = np.random.default_rng(0)
    W, x = rng.normal(size=(4, 3)), rng.normal(size=(5, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, g = compiler.value_and_grad(loss)(W, x)
    print(json.dumps({
        "value": float(value), "grad": g.tolist(), "stats": cache.cache_stats(),
        "warnings": [str(w.message) for w in caught if "cache" in str(w.message).lower()],
    }))
    """
)


def _spawn(script: Path, cache: Path, args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), GRADC_CACHE_DIR=str(cache), GRADC_COMPILE="eager")
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_together(tmp_path: Path, cache: Path, n: int) -> list[dict]:
    """Start `n` children, release them at once, return their JSON reports."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    go = tmp_path / "go"
    go.unlink(missing_ok=True)
    ready = [tmp_path / f"ready{k}" for k in range(n)]
    children = [_spawn(script, cache, [str(r), str(go)]) for r in ready]
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready):
        if time.monotonic() > deadline or any(c.poll() is not None for c in children):
            outs = [c.communicate(timeout=60) for c in children]
            pytest.fail(f"children did not start: {outs}")
        time.sleep(0.01)
    go.touch()
    results = []
    for c in children:
        out, err = c.communicate(timeout=300)
        assert c.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in ready:
        r.unlink()
    return results


def test_threads_two_processes_compile_the_same_function_at_once(tmp_path):
    from runtime import cache as rc

    root = tmp_path / "cache"
    a, b = run_together(tmp_path, root, 2)
    assert a["value"] == b["value"] and a["grad"] == b["grad"]
    assert not a["warnings"] and not b["warnings"]
    modules = sum(a["stats"][k] for k in ("written", "disk"))
    assert modules == sum(b["stats"][k] for k in ("written", "disk")) >= 1
    assert a["stats"]["rebuilt"] == b["stats"]["rebuilt"] == 0
    # one entry per module, whoever wrote it, and no temporary files left behind
    entries = sorted(p.name for p in root.rglob("*.py") if p.parent.name != "__pycache__")
    assert len(entries) == modules, entries
    assert not [p for p in root.rglob(".*.tmp")]
    old = os.environ.get(rc.CACHE_ENV_VAR)
    os.environ[rc.CACHE_ENV_VAR] = str(root)
    try:
        assert rc.cache_info()["entries"] == modules
    finally:
        if old is None:
            del os.environ[rc.CACHE_ENV_VAR]
        else:
            os.environ[rc.CACHE_ENV_VAR] = old
    # and they are valid: a third process loads every one from disk, rebuilding nothing
    (c,) = run_together(tmp_path, root, 1)
    assert c["stats"]["disk"] == modules and c["stats"]["written"] == 0
    assert c["stats"]["rebuilt"] == 0 and not c["warnings"]
    assert c["value"] == a["value"] and c["grad"] == a["grad"]
