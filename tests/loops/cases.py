"""Loop workloads written twice: with `scan` and as the Python loop it replaces (unrolled
at trace time), so every gradient has an independent reference."""

from __future__ import annotations

import numpy as np

from compiler import scan

T, H = 7, 3


def rnn_scan(W, U, xs, h0):
    """A tanh RNN: h_t = tanh(W h_{t-1} + U x_t); loss = sum of squared states."""

    def step(h, x):
        h = np.tanh(h @ W + x @ U)
        return h, np.sum(h * h)

    h, ys = scan(step, h0, xs)
    return np.sum(ys) + np.sum(h)


def rnn_loop(W, U, xs, h0):
    h, tot = h0, 0.0
    for t in range(xs.shape[0]):
        h = np.tanh(h @ W + xs[t] @ U)
        tot = tot + np.sum(h * h)
    return tot + np.sum(h)


def leaky_scan(w, tau, us, x0):
    """A leaky integrator dx/dt = (-x + tanh(w x + u(t))) / tau, explicit Euler, dt = 0.1."""

    def step(x, u):
        x = x + 0.1 * (-x + np.tanh(w * x + u)) / tau
        return x, x

    x, xs = scan(step, x0, us)
    return np.sum((xs - 0.5) ** 2) + x


def leaky_loop(w, tau, us, x0):
    x, tot = x0, 0.0
    for t in range(us.shape[0]):
        x = x + 0.1 * (-x + np.tanh(w * x + us[t])) / tau
        tot = tot + (x - 0.5) ** 2
    return tot + x


def cumprod_scan(xs, wts):
    """Cumulative products y_t = prod_{s<=t} x_s, weighted."""
    _, ys = scan(lambda c, x: (c * x, c * x), np.ones(xs.shape[1]), xs)
    return np.sum(ys * wts)


def cumprod_loop(xs, wts):
    c, tot = np.ones(xs.shape[1]), 0.0
    for t in range(xs.shape[0]):
        c = c * xs[t]
        tot = tot + np.sum(c * wts[t])
    return tot


def nested_scan(A, M):
    """A scan over rows whose step is a scan over the row's entries."""

    def row(c, r):
        def col(s, a):
            s = np.sin(s * c + a)
            return s, s * s

        s, sq = scan(col, c, r)
        return c + 0.5 * s, np.sum(sq)

    c, ys = scan(row, np.float64(0.3), A * M)
    return np.sum(ys) + c


def nested_loop(A, M):
    c, tot = np.float64(0.3), 0.0
    B = A * M
    for i in range(B.shape[0]):
        s = c
        for j in range(B.shape[1]):
            s = np.sin(s * c + B[i, j])
            tot = tot + s * s
        c = c + 0.5 * s
    return tot + c


def rnn_args(rng, t=T):
    return (
        rng.normal(size=(H, H)) * 0.5,
        rng.normal(size=(2, H)) * 0.5,
        rng.normal(size=(t, 2)),
        rng.normal(size=H) * 0.1,
    )


def leaky_args(rng):
    return (0.8, 1.5, rng.normal(size=12), 0.2)


def cumprod_args(rng):
    return (rng.uniform(0.5, 1.5, size=(6, 2)), rng.normal(size=(6, 2)))


def nested_args(rng):
    return (rng.normal(size=(4, 3)), rng.uniform(0.5, 1.0, size=(4, 3)))


def batch_rnn_args(rng):
    """A batch of 2 sequences: 2-D carries, so the weight gradients batch into one GEMM."""
    return (
        rng.normal(size=(H, H)) * 0.5,
        rng.normal(size=(2, H)) * 0.5,
        rng.normal(size=(T, 2, 2)),
        rng.normal(size=(2, H)) * 0.1,
    )


CASES = {
    "rnn": (rnn_scan, rnn_loop, rnn_args),
    "rnn_batch": (rnn_scan, rnn_loop, batch_rnn_args),
    "leaky": (leaky_scan, leaky_loop, leaky_args),
    "cumprod": (cumprod_scan, cumprod_loop, cumprod_args),
    "nested": (nested_scan, nested_loop, nested_args),
}
