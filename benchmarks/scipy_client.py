"""A SciPy client: the L-BFGS-B logistic-regression fit of `examples/logreg_scipy.py`, per solve.

    python benchmarks/scipy_client.py [--repeat N] [--threads N]

Data: breast-cancer-shaped (569 samples, 30 standardised, correlated features, labels from a
noisy logistic model); scikit-learn's copy of the real data set is used when it imports, so
the benchmark needs no extra dependency. Each solve starts from zero and runs
`scipy.optimize.minimize(..., jac=True, method="L-BFGS-B")` to the default tolerances with:

- `gradc`: `value_and_grad(loss)` of the example's loss (traced once, before timing);
- `numpy`: the same loss and its gradient written by hand in NumPy.

Prints the median time per solve, the evaluations per solve and the time per evaluation for
both, and the ratio (target: gradc no slower than the hand-written gradient).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "examples"), str(HERE)]

# thread counts must be fixed before NumPy is imported (as in run.py)
from run import thread_env  # noqa: E402

if __name__ == "__main__":
    # One BLAS thread by default: 569 x 30 matrix-vector products gain nothing from a second,
    # and two OpenBLAS threads on the shared 2-core machine made some runs 100x slower for
    # gradc and NumPy alike (194 ms per solve instead of 1.6 ms). --threads N to change it.
    _n = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    os.environ.update(thread_env(int(_n)))

import numpy as np  # noqa: E402
from logreg_scipy import L2, loss  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from compiler import value_and_grad  # noqa: E402
from runtime import background  # noqa: E402


def breast_cancer_like(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(X, t): scikit-learn's breast-cancer data standardised, or data of its shape."""
    try:
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
    except ImportError:
        rng = np.random.default_rng(seed)
        n, d = 569, 30
        # correlated features (the real ones are radius/perimeter/area triples and the like)
        mix = rng.standard_normal((d, d)) * 0.6 + np.eye(d)
        X = rng.standard_normal((n, d)) @ mix
        w = rng.standard_normal(d)
        y = (X @ w + 1.5 * rng.standard_normal(n) > 0).astype(np.float64)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.ascontiguousarray(X), np.where(y > 0, 1.0, -1.0)


def numpy_vg(theta: np.ndarray, X: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """The example's loss and its gradient by hand (what a careful NumPy user writes)."""
    w, b = theta[:-1], theta[-1]
    z = X @ w
    z += b
    m = -t * z
    value = np.mean(np.logaddexp(0.0, m)) + 0.5 * L2 * (w @ w)
    # d/dz log(1 + exp(-t z)) = -t sigmoid(-t z) = -t / (1 + exp(t z))
    dz = -t / (1.0 + np.exp(-m))
    dz /= len(t)
    g = np.empty_like(theta)
    g[:-1] = X.T @ dz + L2 * w
    g[-1] = dz.sum()
    return value, g


def solve(fun, X, t):
    return minimize(fun, np.zeros(X.shape[1] + 1), args=(X, t), jac=True, method="L-BFGS-B")


def measure(funs: list, X, t, repeat: int) -> list[tuple[float, int, np.ndarray]]:
    """Per function: median seconds per solve, evaluations per solve, and the solution.
    The functions' solves alternate, so a change in the machine's load hits them alike."""
    res = [solve(f, X, t) for f in funs]  # warm-up (and gradc's compile)
    times: list[list[float]] = [[] for _ in funs]
    for _ in range(repeat):
        for k, f in enumerate(funs):
            t0 = time.perf_counter()
            res[k] = solve(f, X, t)
            times[k].append(time.perf_counter() - t0)
    return [(statistics.median(ts), r.nfev, r.x) for ts, r in zip(times, res)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=21)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = p.parse_args(argv)
    X, t = breast_cancer_like()
    vg = value_and_grad(loss)
    vg(np.zeros(X.shape[1] + 1), X, t)
    # the first tier's stage is the background compile's (docs/tiers.md): wait for it, so the
    # "Python driver" rows measure the compiled kernels, whatever the machine's load
    background.wait_idle()
    first, numpy1 = measure([vg, numpy_vg], X, t, args.repeat)
    # what the stage runs once its compiled driver is in (njit_driver.py): the switch that
    # rent-then-buy makes after many calls, or a background compile makes at once
    for stage in stages_of(vg):
        stage.promote()
    compiled, numpy2 = measure([vg, numpy_vg], X, t, args.repeat)
    print(f"L-BFGS-B logistic regression, X {X.shape[0]} x {X.shape[1]}, median of {args.repeat}")
    print("| gradient | ms per solve | evaluations | µs per evaluation | vs NumPy (same rounds) |")
    print("|---|---|---|---|---|")
    rows = [
        ("gradc, Python driver (first tier)", first, numpy1),
        ("hand-written NumPy (rounds 1)", numpy1, numpy1),
        ("gradc, compiled driver", compiled, numpy2),
        ("hand-written NumPy (rounds 2)", numpy2, numpy2),
    ]
    for name, (sec, nfev, _), (ref, _, _) in rows:
        print(f"| {name} | {sec * 1e3:.2f} | {nfev} | {sec / nfev * 1e6:.1f} | {sec / ref:.2f}x |")
    diff = float(np.max(np.abs(compiled[2] - numpy2[2])))
    ratio = compiled[0] / numpy2[0]
    print(
        f"gradc (compiled driver) / NumPy per solve: {ratio:.2f}x (target <= 1); "
        f"solutions differ by {diff:.1e}"
    )
    return 0 if ratio <= 1.0 else 1


def stages_of(vg) -> list:
    """The compiled stages of every signature `vg` has seen that have a compiled driver."""
    out = []
    for spec in vg._cache.values():
        for stage in (spec.fn, getattr(spec, "bwd", None)):
            if hasattr(stage, "promote"):
                out.append(stage)
    if not out:
        raise SystemExit("no stage with a compiled driver (njit_rule did not pick this graph)")
    return out


if __name__ == "__main__":
    sys.exit(main())
