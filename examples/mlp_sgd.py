"""Train a small tanh MLP with plain SGD on a synthetic regression task.

The data come from a fixed random "teacher" network plus noise; the student has the same
shape. Parameters are a dict (a pytree): `grad` returns a dict of the same structure.

    python examples/mlp_sgd.py
"""

from __future__ import annotations

import numpy as np

from compiler import value_and_grad


def init(rng: np.random.Generator, sizes: list[int]) -> dict:
    params = {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"W{i}"] = rng.standard_normal((m, n)) / np.sqrt(m)
        params[f"b{i}"] = np.zeros(n)
    return params


def predict(params: dict, x: np.ndarray) -> np.ndarray:
    h = np.tanh(x @ params["W0"] + params["b0"])
    h = np.tanh(h @ params["W1"] + params["b1"])
    return h @ params["W2"] + params["b2"]


def loss(params: dict, x: np.ndarray, y: np.ndarray) -> float:
    err = predict(params, x) - y
    return np.mean(err * err)


def make_data(rng: np.random.Generator, n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    teacher = init(rng, [4, 16, 16, 2])
    x = rng.standard_normal((n, 4))
    y = predict(teacher, x) + 0.01 * rng.standard_normal((n, 2))  # plain NumPy, no tracing
    return x, y


def main(epochs: int = 30, batch: int = 64, lr: float = 0.1) -> None:
    rng = np.random.default_rng(0)
    x, y = make_data(rng)
    params = init(rng, [4, 16, 16, 2])
    step = value_and_grad(loss)  # traced and compiled on the first call, then reused
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            value, grads = step(params, x[idx], y[idx])
            params = {k: params[k] - lr * grads[k] for k in params}
            total += float(value) * len(idx)
        print(f"epoch {epoch:3d}  loss {total / len(x):.6f}")
    print(f"final full-batch loss {float(loss(params, x, y)):.6f}")


if __name__ == "__main__":
    main()
