"""Built-in example functions for the CLI (`gradc ir --example mlp`, `gradc check --example rnn`).

Each example is a plain-NumPy function plus default argument specs in the CLI's `--arg`
syntax (`f64[32,64]` is random data of that type, `2.0` a Python float, `3` a static int)
and the argument positions that are parameters (differentiated by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Example:
    name: str
    fun: Callable
    args: dict[str, str]  # argument name -> spec, in the function's parameter order
    argnums: tuple[int, ...]
    doc: str


def seed(w, x, b, y):
    """The walkthrough loss L = (w*x + b - y)^2 (backpropagation.txt)."""
    u = w * x
    z = u + b
    r = z - y
    return r**2


def mlp(W1, b1, W2, b2, x, y):
    """Two-layer tanh MLP, softmax cross-entropy against soft targets `y`."""
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    logz = np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m
    p = np.exp(y - np.max(y, axis=1, keepdims=True))
    p = p / np.sum(p, axis=1, keepdims=True)
    return -np.mean(np.sum(p * (logits - logz), axis=1))


def logreg(w, b, X, y):
    """Logistic regression: mean log(1 + exp(-t z)) with labels t = sign(y) in {-1, +1}."""
    z = X @ w + b
    t = np.where(y > 0, 1.0, -1.0)
    return np.mean(np.logaddexp(0.0, -t * z)) + 1e-3 * np.sum(w * w)


def rnn(Wx, Wh, b, xs, h0):
    """Elman RNN unrolled over the time axis of `xs`; loss is the mean squared final state."""
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ Wx + h @ Wh + b)
    return np.mean(h**2)


def inplace(x, scale):
    """In-place NumPy code (functionalized by the tracer): slices written with `+=` and `[]=`."""
    out = np.zeros_like(x)
    out[:, 1:] = x[:, :-1] * scale
    out[:, 0] += np.sum(x, axis=1)
    out *= 0.5
    return np.sum(np.sin(out))


EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in [
        Example(
            "seed",
            seed,
            {"w": "2.0", "x": "3.0", "b": "1.0", "y": "4.0"},
            (0, 1, 2, 3),
            "L = (w*x + b - y)**2 at w=2, x=3, b=1, y=4",
        ),
        Example(
            "mlp",
            mlp,
            {
                "W1": "f64[32,64]",
                "b1": "f64[64]",
                "W2": "f64[64,10]",
                "b2": "f64[10]",
                "x": "f64[128,32]",
                "y": "f64[128,10]",
            },
            (0, 1, 2, 3),
            "tanh MLP with softmax cross-entropy",
        ),
        Example(
            "logreg",
            logreg,
            {"w": "f64[20]", "b": "0.0", "X": "f64[200,20]", "y": "f64[200]"},
            (0, 1),
            "L2-regularised logistic regression",
        ),
        Example(
            "rnn",
            rnn,
            {
                "Wx": "f64[8,16]",
                "Wh": "f64[16,16]",
                "b": "f64[16]",
                "xs": "f64[10,4,8]",
                "h0": "f64[4,16]",
            },
            (0, 1, 2),
            "Elman RNN unrolled over 10 steps",
        ),
        Example(
            "inplace",
            inplace,
            {"x": "f64[6,5]", "scale": "1.5"},
            (0, 1),
            "in-place slice updates, functionalized",
        ),
    ]
}


def get_example(name: str) -> Example:
    """The built-in example called `name` (ValueError listing the choices otherwise)."""
    try:
        return EXAMPLES[name]
    except KeyError:
        raise ValueError(
            f"unknown example {name!r}; choose one of: {', '.join(EXAMPLES)}"
        ) from None
