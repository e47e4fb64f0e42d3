"""Check the benchmark references on small versions of every workload.

For each workload:
- the hand-written ``numpy_vg`` value equals ``loss``;
- its gradients match central finite differences of ``loss`` (float64, sampled coordinates);
- its gradients keep the dtypes and shapes of the parameters;
- the JAX and PyTorch losses, where those libraries import, give the same value and gradients.

Usage: python benchmarks/check_references.py   (exit status 1 on any failure)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import adapters  # noqa: E402
from workloads import WORKLOADS, tree_flatten, tree_unflatten  # noqa: E402

FD_STEP = 1e-6
FD_TOL = 1e-6  # relative to the largest sampled gradient entry of the leaf
COORDS_PER_LEAF = 12


def rel_err(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def finite_difference_error(w, params, data, grads, rng) -> float:
    leaves, spec = tree_flatten(params)
    gleaves, _ = tree_flatten(grads)
    worst = 0.0
    for i, leaf in enumerate(leaves):
        arr = np.array(leaf, dtype=np.float64)
        size = arr.size
        idx = rng.choice(size, size=min(size, COORDS_PER_LEAF), replace=False)
        fd = np.empty(len(idx))
        for j, k in enumerate(idx):
            vals = []
            for sign in (1.0, -1.0):
                pert = arr.copy()
                pert.flat[k] += sign * FD_STEP * max(1.0, abs(arr.flat[k]))
                new = pert if isinstance(leaf, np.ndarray) else float(pert)
                trial = leaves[:i] + [new] + leaves[i + 1 :]
                vals.append(float(w.loss(tree_unflatten(spec, trial), *data)))
            fd[j] = (vals[0] - vals[1]) / (2 * FD_STEP * max(1.0, abs(arr.flat[k])))
        analytic = np.asarray(gleaves[i], dtype=np.float64).ravel()[idx]
        worst = max(worst, rel_err(analytic, fd))
    return worst


def check_structure(params, grads) -> str | None:
    pl, pspec = tree_flatten(params)
    gl, gspec = tree_flatten(grads)
    if pspec != gspec:
        return f"gradient tree {gspec} differs from parameter tree {pspec}"
    for p, g in zip(pl, gl):
        if isinstance(p, np.ndarray):
            if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype:
                got = (getattr(g, "shape", None), getattr(g, "dtype", type(g)))
                return f"gradient leaf {got} for parameter {(p.shape, p.dtype)}"
    return None


def main() -> int:
    failures = []
    print(f"{'workload':<10} {'check':<30} {'error':>10}  result")

    def report(name, check, err, tol):
        ok = err <= tol
        print(f"{name:<10} {check:<30} {err:10.2e}  {'ok' if ok else 'FAIL'} (tol {tol:.0e})")
        if not ok:
            failures.append((name, check, err))

    frameworks = adapters.available_frameworks(threads=1)
    value, grads = WORKLOADS["seed"].numpy_vg(WORKLOADS["seed"].make(None)[0])
    exact = (9.0, (18.0, 12.0, 6.0, -6.0))
    report("seed", "worked example 9; 18,12,6,-6", 0.0 if (value, grads) == exact else 1.0, 0.0)
    for name, w in WORKLOADS.items():
        rng = np.random.default_rng(0)
        # finite differences always in float64; the dtype variants are checked below
        params, data = w.make(rng, np.float64, **w.small)
        value, grads = w.numpy_vg(params, *data)
        report(name, "value vs loss", rel_err(value, w.loss(params, *data)), 1e-12)
        report(
            name,
            "grads vs finite diff",
            finite_difference_error(w, params, data, grads, rng),
            FD_TOL,
        )
        if w.dtype != np.float64:
            params32, data32 = w.make(np.random.default_rng(0), w.dtype, **w.small)
            v32, g32 = w.numpy_vg(params32, *data32)
            problem = check_structure(params32, g32)
            if problem:
                print(f"{name:<10} {w.dtype.__name__} structure: FAIL {problem}")
                failures.append((name, "structure", problem))
            err = max(rel_err(a, b) for a, b in zip(tree_flatten(g32)[0], tree_flatten(grads)[0]))
            report(name, f"{np.dtype(w.dtype).name} grads vs float64", err, 1e-3)
            report(
                name,
                f"{np.dtype(w.dtype).name} loss vs vg",
                rel_err(v32, w.loss(params32, *data32)),
                1e-5,
            )
        problem = check_structure(params, grads)
        if problem:
            print(f"{name:<10} structure: FAIL {problem}")
            failures.append((name, "structure", problem))
        # the frameworks in the workload's own dtype, against the hand-written reference
        params_w, data_w = w.make(np.random.default_rng(0), w.dtype, **w.small)
        before = [np.array(x, copy=True) for x in tree_flatten((params_w, data_w))[0]]
        value_w, grads_w = w.numpy_vg(params_w, *data_w)
        after = tree_flatten((params_w, data_w))[0]
        mutated = max(rel_err(a, b) for a, b in zip(after, before))
        report(name, "inputs unchanged by vg", mutated, 0.0)
        tol = 1e-9 if w.dtype == np.float64 else 1e-4
        for fw in frameworks:
            runner = fw.prepare(w, params_w, data_w)
            if runner is None:
                continue
            fv, fg = runner.call_numpy()
            err = max(
                [rel_err(fv, value_w)]
                + [rel_err(a, b) for a, b in zip(tree_flatten(fg)[0], tree_flatten(grads_w)[0])]
            )
            report(name, f"{fw.name} value+grads", err, tol)
        # the full-size workload: value agrees with the loss, and is finite
        params_f, data_f = w.make(np.random.default_rng(0), w.dtype)
        value_f, grads_f = w.numpy_vg(params_f, *data_f)
        finite = all(np.all(np.isfinite(g)) for g in tree_flatten(grads_f)[0])
        err = rel_err(value_f, w.loss(params_f, *data_f)) if finite else np.inf
        report(name, "full size: value vs loss", err, 1e-12 if w.dtype == np.float64 else 1e-5)
    print()
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all reference checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
