"""Minimize a small smooth function with Newton's method, using gradc's `hessian`.

Newton's step solves H(x) dx = -g(x). Near the minimum it converges quadratically: the
gradient norm roughly squares at each step. The Hessian is compiled once (forward mode over
the reverse-mode gradient) and reused at every step; it is checked against finite
differences of the gradient at the start.

    python examples/newton_hessian.py
"""

from __future__ import annotations

import numpy as np

from compiler import grad, hessian


def loss(x, A, b):
    """A strictly convex function: a quadratic plus a smooth penalty log(e^x + e^-x)."""
    return 0.5 * x @ A @ x - b @ x + np.sum(np.logaddexp(x, -x))


def main() -> None:
    rng = np.random.default_rng(0)
    n = 4
    M = rng.standard_normal((n, n))
    A = M @ M.T / n + np.eye(n)  # symmetric positive definite
    b = rng.standard_normal(n)
    g, H = grad(loss), hessian(loss)

    x = np.full(n, 2.0)
    eps = 1e-6
    fd = np.stack([(g(x + eps * e, A, b) - g(x - eps * e, A, b)) / (2 * eps) for e in np.eye(n)])
    diff = np.max(np.abs(H(x, A, b) - fd))
    print(f"hessian vs finite differences of grad: max abs diff {diff:.1e}")

    norms = []
    for it in range(8):
        gx = g(x, A, b)
        norms.append(float(np.linalg.norm(gx)))
        print(f"step {it}  loss {loss(x, A, b):.12f}  |grad| {norms[-1]:.3e}")
        if norms[-1] < 1e-12:
            break
        x = x - np.linalg.solve(H(x, A, b), gx)
    print(f"converged: {norms[-1] < 1e-12}")


if __name__ == "__main__":
    main()
