"""Fit logistic regression with scipy.optimize.minimize, using gradc for the gradient.

`value_and_grad(f)` returns `(value, grad)`, exactly what `minimize(fun, x0, jac=True)` wants.
At the optimum the gradient must vanish; the fitted model should also classify well.

    python examples/logreg_scipy.py
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from compiler import value_and_grad

L2 = 1e-2


def loss(theta, X, t):
    """Mean logistic loss log(1 + exp(-t z)), t in {-1, +1}, plus an L2 penalty."""
    w, b = theta[:-1], theta[-1]
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, -t * z)) + 0.5 * L2 * np.sum(w * w)


def make_data(rng: np.random.Generator, n: int = 400, d: int = 5):
    w_true = rng.standard_normal(d)
    X = rng.standard_normal((n, d))
    p = 1.0 / (1.0 + np.exp(-(4.0 * X @ w_true + 0.5)))
    t = np.where(rng.random(n) < p, 1.0, -1.0)
    return X, t


def main() -> None:
    rng = np.random.default_rng(0)
    X, t = make_data(rng)
    fun = value_and_grad(loss)
    theta0 = np.zeros(X.shape[1] + 1)
    res = minimize(
        fun,
        theta0,
        args=(X, t),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-10, "ftol": 1e-14},
    )
    value, g = fun(res.x, X, t)
    w, b = res.x[:-1], res.x[-1]
    accuracy = float(np.mean(np.sign(X @ w + b) == t))
    print(f"scipy: {res.message} after {res.nit} iterations, {res.nfev} evaluations")
    print(f"loss at optimum {float(value):.6f}")
    print(f"gradient norm at optimum {np.linalg.norm(g):.2e}")
    # the gradient by hand, in NumPy: d/dz log(1 + exp(-t z)) = -t sigmoid(-t z)
    z = X @ w + b
    dz = -t / (1.0 + np.exp(t * z)) / len(t)
    by_hand = np.concatenate([X.T @ dz + L2 * w, [np.sum(dz)]])
    print(f"gradc vs hand-written gradient: max abs diff {np.max(np.abs(g - by_hand)):.1e}")
    print(f"training accuracy {accuracy:.3f}")
    print(f"converged: {bool(res.success and np.linalg.norm(g) < 1e-5)}")


if __name__ == "__main__":
    main()
