"""Fit logistic regression on a Dask array with scipy.optimize.minimize, gradients by gradc on a
Dask cluster (a LocalCluster of 2 worker processes here; a real cluster works the same way).

The data (2 million rows by default) is generated on the workers and stays there; each
L-BFGS-B step sends the 11 parameters to the workers once, every chunk's value and gradient
comes from gradc's compiled code on a worker, and Dask's tree reduction adds them up. The
same fit on one machine (the whole arrays in memory, `compiler.value_and_grad`) must agree.

    python examples/logreg_dask.py                  # 2,000,000 rows
    python examples/logreg_dask.py --rows 20000     # a quick run
"""

from __future__ import annotations

import argparse
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster
from scipy.optimize import minimize

from compiler import distributed, value_and_grad

L2 = 1e-2
D = 10
OPTIONS = {"gtol": 1e-9, "ftol": 1e-15, "maxiter": 200}


def loss(theta, X, t):
    """Mean logistic loss log(1 + exp(-t z)), t in {-1, +1}, plus an L2 penalty."""
    w, b = theta[:-1], theta[-1]
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, -t * z)) + 0.5 * L2 * np.sum(w * w)


def make_data(rows: int, chunk_rows: int, seed: int = 0):
    """Features and labels as Dask arrays, generated chunk by chunk where they are computed."""
    w_true = np.random.default_rng(seed).standard_normal(D)
    rng = da.random.default_rng(seed + 1)
    X = rng.standard_normal((rows, D), chunks=(chunk_rows, D))
    p = 1.0 / (1.0 + np.exp(-(2.0 * X @ w_true + 0.5)))
    t = da.where(rng.random(rows, chunks=chunk_rows) < p, 1.0, -1.0)
    return X, t


def fit(fun, X, t):
    """L-BFGS-B from zero; returns scipy's result and the seconds it took."""
    t0 = time.perf_counter()
    res = minimize(fun, np.zeros(D + 1), args=(X, t), jac=True, method="L-BFGS-B", options=OPTIONS)
    return res, time.perf_counter() - t0


def main(rows: int, workers: int, chunk_rows: int) -> None:
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        X, t = make_data(rows, chunk_rows)
        X, t = client.persist([X, t])  # computed once, kept in the workers' memory
        print(f"data: {rows:,} rows x {D} features in {X.numblocks[0]} chunks, {workers} workers")
        vg = distributed.value_and_grad(loss, reduce="mean")
        res, secs = fit(vg, X, t)
        print(f"dask:   {res.message} after {res.nit} iterations, {res.nfev} calls, {secs:.2f} s")
        Xn, tn = dask.compute(X, t)

    one = value_and_grad(loss)
    res1, secs1 = fit(one, Xn, tn)
    print(f"single: {res1.message} after {res1.nit} iterations, {res1.nfev} calls, {secs1:.2f} s")
    value, g = one(res.x, Xn, tn)  # the Dask fit's optimum, checked on the whole data in memory
    accuracy = float(np.mean(np.sign(Xn @ res.x[:-1] + res.x[-1]) == tn))
    print(f"loss at optimum: dask {res.fun:.12f}  single {res1.fun:.12f}")
    print(f"gradient norm at the dask optimum {np.linalg.norm(g):.2e}")
    diff = float(np.max(np.abs(res.x - res1.x)))
    print(f"dask vs single-machine fit: max abs diff {diff:.1e}")
    print(f"training accuracy {accuracy:.3f}")
    print(f"fits match: {bool(res.success and res1.success and diff < 1e-6)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    a = parser.parse_args()
    main(a.rows, a.workers, a.chunk_rows)
