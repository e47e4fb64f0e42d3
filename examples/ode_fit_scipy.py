"""Fit the stiffness and damping of an oscillator to noisy observations: the ODE is integrated
with `fori_loop` (explicit Euler), the fit is scipy's L-BFGS-B with gradc's gradient.

    x'' = -k x - c x'        observed: x at every step, with noise

The loss accumulates the squared error inside the loop, so the trajectory is never stored by
the user; reverse mode stores the per-step residuals itself and runs the loop backwards.

    python examples/ode_fit_scipy.py
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from compiler import fori_loop, value_and_grad

DT, STEPS = 0.02, 400


def simulate(theta, obs):
    """Mean squared error between the Euler trajectory for theta = (log k, log c) and obs."""
    k, c = np.exp(theta[0]), np.exp(theta[1])

    def body(i, s):
        x, v, err = s
        x, v = x + DT * v, v + DT * (-k * x - c * v)
        return x, v, err + (x - obs[i]) ** 2

    _, _, err = fori_loop(0, STEPS, body, (1.0, 0.0, 0.0))
    return err / STEPS


def observe(k: float, c: float, rng: np.random.Generator) -> np.ndarray:
    x, v, out = 1.0, 0.0, []
    for _ in range(STEPS):
        x, v = x + DT * v, v + DT * (-k * x - c * v)
        out.append(x)
    return np.array(out) + 0.01 * rng.standard_normal(STEPS)


def main() -> None:
    rng = np.random.default_rng(0)
    k_true, c_true = 9.0, 0.6
    obs = observe(k_true, c_true, rng)
    fun = value_and_grad(simulate)
    theta0 = np.log([4.0, 0.2])
    # the gradient against a central difference, at the start
    _, g = fun(theta0, obs)
    eps = 1e-6
    fd = [
        (fun(theta0 + eps * e, obs)[0] - fun(theta0 - eps * e, obs)[0]) / (2 * eps)
        for e in np.eye(2)
    ]
    print(f"gradient at start {g}, finite differences {np.array(fd)}")
    res = minimize(
        fun,
        theta0,
        args=(obs,),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15},
    )
    k, c = np.exp(res.x)
    print(f"scipy: {res.message} after {res.nit} iterations")
    print(f"converged: {res.success}")
    print(f"fitted k = {k:.4f} (true {k_true}), c = {c:.4f} (true {c_true})")
    print(f"final mse {res.fun:.3e} (noise variance {0.01**2:.1e})")


if __name__ == "__main__":
    main()
