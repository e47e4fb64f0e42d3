"""`gradc demo`: the backpropagation walkthrough, L = (w*x + b - y)^2 at w=2, x=3, b=1, y=4."""

from __future__ import annotations

from collections.abc import Callable

from compiler.api import value_and_grad
from compiler.examples import seed
from compiler.ir.printer import format_graph
from compiler.logging_setup import slow

ARGS = {"w": 2.0, "x": 3.0, "b": 1.0, "y": 4.0}
TOL = 1e-6


def _central(f: Callable[..., float], args: list[float], i: int, h: float = 1e-6) -> float:
    hi, lo = list(args), list(args)
    hi[i] += h
    lo[i] -= h
    return (float(f(*hi)) - float(f(*lo))) / (2 * h)


def run_demo(write: Callable[[str], None] = print) -> int:
    """Print the traced and joint IR and the gradients; 0 if they match finite differences."""
    args = list(ARGS.values())
    vg = value_and_grad(seed, argnums=(0, 1, 2, 3))
    with slow(f"demo: compiling value_and_grad on the {vg.backend} backend"):
        value, grads = vg(*args)
    st = vg.stages(*args)
    write("gradc demo: the backpropagation walkthrough")
    write("  L = (w*x + b - y)**2   at   " + ", ".join(f"{k} = {v:g}" for k, v in ARGS.items()))
    write("")
    write("traced IR (%0..%3 are w, x, b, y):")
    write(format_graph(st.traced))
    write("")
    write(
        "joint (gradient) IR: the forward nodes, then the adjoint nodes; outputs L, dL/dw, "
        "dL/dx, dL/db, dL/dy:"
    )
    write(format_graph(st.grad))
    write("")
    gw, gx, gb, gy = (float(g) for g in grads)
    write(f"L = {float(value)}")
    write(f"dL/dw = {gw}  dL/dx = {gx}  dL/db = {gb}  (dL/dy = {gy})")
    fd = [_central(seed, args, i) for i in range(4)]
    err = max(abs(g - f) / max(1.0, abs(f)) for g, f in zip((gw, gx, gb, gy), fd))
    ok = err < TOL and abs(float(value) - float(seed(*args))) < 1e-12
    write("")
    write(
        "central finite differences: " + "  ".join(f"dL/d{k} = {f:.6f}" for k, f in zip(ARGS, fd))
    )
    verdict = "agree" if ok else "DISAGREE"
    write(
        f"gradients (backend {vg.backend}) {verdict} with finite differences "
        f"(max rel err {err:.1e}, tol {TOL:.0e})"
    )
    return 0 if ok else 1
