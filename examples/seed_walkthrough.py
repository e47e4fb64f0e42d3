"""The backpropagation walkthrough: L = (w*x + b - y)^2 at w=2, x=3, b=1, y=4.

Forward: u = w*x = 6, z = u + b = 7, r = z - y = 3, L = r^2 = 9.
Backward: dL/dr = 2r = 6 flows unchanged through the add and subtract nodes, then the
multiply node sends dL/du * x = 18 to w and dL/du * w = 12 to x.

    python examples/seed_walkthrough.py
"""

from __future__ import annotations

from compiler import grad, value_and_grad


def loss(w, x, b, y):
    u = w * x
    z = u + b
    r = z - y
    return r**2


def main() -> None:
    args = (2.0, 3.0, 1.0, 4.0)
    value, (gw, gx, gb, gy) = value_and_grad(loss, argnums=(0, 1, 2, 3))(*args)
    print(f"L = {value}")
    print(f"dL/dw = {gw}  dL/dx = {gx}  dL/db = {gb}  (dL/dy = {gy})")

    # grad with the default argnums=0 differentiates w only; Python floats give floats back
    dw = grad(loss)(*args)
    print(f"grad(loss)(2, 3, 1, 4) = {dw!r}")

    # the compiled function specialises on the signature: new float values reuse it
    print(f"dL/dw at w=1: {grad(loss)(1.0, 3.0, 1.0, 4.0)}")  # 2 (1*3 + 1 - 4) * 3 = 0.0


if __name__ == "__main__":
    main()
