"""Train a small tanh RNN to predict the next sample of a sine wave, with `scan` and Adam.

`scan` traces the recurrence step once and compiles it to a loop, so the gradient (BPTT: a
reverse loop over the stored per-step states) compiles in the same time for 50 steps or
5,000; a Python `for` loop over the steps would be unrolled into a graph that grows with T.

    python examples/rnn_sine_scan.py
"""

from __future__ import annotations

import numpy as np

from compiler import scan, value_and_grad

T, BATCH, HIDDEN = 60, 16, 16


def loss(p, xs, ys):
    """Mean squared error of the one-step-ahead predictions over the whole sequence."""

    def step(h, x):
        h = np.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"])
        return h, h @ p["Wo"] + p["bo"]

    h0 = np.zeros((xs.shape[1], p["Wh"].shape[0]))
    _, preds = scan(step, h0, xs)  # preds: [T, batch, 1]
    return np.mean((preds - ys) ** 2)


def make_batch(rng: np.random.Generator):
    """Sine waves with random phase and frequency; target = the next sample."""
    phase = rng.uniform(0, 2 * np.pi, size=(1, BATCH, 1))
    freq = rng.uniform(0.15, 0.3, size=(1, BATCH, 1))
    t = np.arange(T + 1).reshape(-1, 1, 1)
    wave = np.sin(freq * t + phase)
    return wave[:-1], wave[1:]


def init(rng: np.random.Generator) -> dict:
    return {
        "Wx": rng.standard_normal((1, HIDDEN)) * 0.5,
        "Wh": rng.standard_normal((HIDDEN, HIDDEN)) * (0.9 / np.sqrt(HIDDEN)),
        "b": np.zeros(HIDDEN),
        "Wo": rng.standard_normal((HIDDEN, 1)) * 0.1,
        "bo": np.zeros(1),
    }


def main() -> None:
    rng = np.random.default_rng(0)
    p = init(rng)
    fn = value_and_grad(loss)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    lr, b1, b2 = 0.02, 0.9, 0.999
    for it in range(1, 301):
        xs, ys = make_batch(rng)
        value, g = fn(p, xs, ys)
        for k in p:  # Adam
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            mh, vh = m[k] / (1 - b1**it), v[k] / (1 - b2**it)
            p[k] = p[k] - lr * mh / (np.sqrt(vh) + 1e-8)
        if it % 20 == 0 or it == 1:
            print(f"step {it:4d}  loss {value:.5f}")
    xs, ys = make_batch(np.random.default_rng(1))
    print(f"held-out loss {loss(p, xs, ys):.5f} (predicting 0 gives {np.mean(ys**2):.5f})")


if __name__ == "__main__":
    main()
