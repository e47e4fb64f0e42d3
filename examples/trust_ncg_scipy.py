"""Minimize the Rosenbrock function with scipy's trust-region Newton-CG, using gradc for the
gradient and for Hessian-vector products.

`value_and_grad(f)` is what `minimize(..., jac=True)` wants, and `hvp(f)(x, p)` is what
`hessp=` wants: H(x) @ p, computed as a forward-mode derivative of the gradient without ever
forming H. Each is compiled once and reused at every iteration.

    python examples/trust_ncg_scipy.py
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, rosen, rosen_der, rosen_hess_prod

from compiler import hvp, value_and_grad


def rosenbrock(x):
    """sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2, minimum 0 at x = 1."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def main() -> None:
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.5, -0.3])
    fun, hessp = value_and_grad(rosenbrock), hvp(rosenbrock)
    res = minimize(fun, x0, jac=True, hessp=hessp, method="trust-ncg", options={"gtol": 1e-10})
    print(f"scipy: {res.message} after {res.nit} iterations")
    print(f"minimum at {np.array2string(res.x, precision=8)}")
    print(f"distance to the true minimum {np.max(np.abs(res.x - 1.0)):.1e}")
    # scipy ships the Rosenbrock derivatives written by hand: compare at the start point
    value, g = fun(x0)
    p = np.linspace(-1.0, 1.0, x0.size)
    print(f"value vs scipy.optimize.rosen: diff {abs(value - rosen(x0)):.1e}")
    print(f"grad vs scipy.optimize.rosen_der: max abs diff {np.max(np.abs(g - rosen_der(x0))):.1e}")
    diff = np.max(np.abs(hessp(x0, p) - rosen_hess_prod(x0, p)))
    print(f"hvp vs scipy.optimize.rosen_hess_prod: max abs diff {diff:.1e}")
    print(f"converged: {bool(res.success)}")


if __name__ == "__main__":
    main()
