"""Graphs the pass tests run on: real functions, traced, and their joint (autodiff) graphs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler import trace
from compiler.autodiff import vjp_graph
from compiler.interpret import run_graph
from compiler.ir import Graph


def seed_loss(w, x, b, y):
    return np.sum((w * x + b - y) ** 2)


def mlp_loss(params, x, y):
    """A 3-layer tanh MLP with a numerically stable softmax cross-entropy."""
    h = x
    for w, b in params[:-1]:
        h = np.tanh(h @ w + b)
    w, b = params[-1]
    z = h @ w + b
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * logp, axis=1))


def bias_loss(x, b, c):
    """A bias broadcast over rows and a scale broadcast over columns."""
    return np.sum(np.tanh(x + b) * c)


def diamond_loss(x):
    """Fan-out: `a` and `s` are each read by several nodes."""
    a = np.exp(x)
    s = np.sin(a)
    c = a * s
    return np.sum((a + c) * s)


def branches_loss(x, y):
    """Zero adjoints: a where with a constant branch, a slice, and an unused input."""
    return np.sum(np.where(x > 0, x * 2.0, 0.0)) + np.sum(x[1:3] * 1.0)


def rnn_loss(wx, wh, b, xs, h0):
    """A tanh RNN unrolled over the steps of `xs`: `wx` and `wh` are shared by every step."""
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ wx + h @ wh + b)
    return np.mean(h * h)


@dataclass(frozen=True)
class Case:
    name: str
    graph: Graph  # the traced forward graph
    joint: Graph  # forward outputs + gradients w.r.t. every float input

    def random_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Random float inputs, one per joint-graph input."""
        rng = np.random.default_rng(seed)
        return [rng.normal(size=v.shape).astype(v.dtype) for v in self.joint.inputs]


def _case(name: str, fn: Callable, *args, wrt: list[int] | None = None) -> Case:
    g = trace(fn, *args)
    if wrt is None:
        wrt = [i for i, v in enumerate(g.inputs) if v.type.is_float]
    return Case(name, g, vjp_graph(g, wrt=wrt))


def _build_cases() -> dict[str, Case]:
    rng = np.random.default_rng(0)
    params = [
        (rng.normal(size=(4, 8)), np.zeros(8)),
        (rng.normal(size=(8, 8)), np.zeros(8)),
        (rng.normal(size=(8, 3)), np.zeros(3)),
    ]
    onehot = np.eye(3)[[0, 1, 2, 0, 1]]
    cases = [
        _case("seed", seed_loss, rng.normal(size=3), rng.normal(size=3), 0.5, rng.normal(size=3)),
        _case("mlp", mlp_loss, params, rng.normal(size=(5, 4)), onehot, wrt=list(range(6))),
        _case(
            "bias", bias_loss, rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(4, 1))
        ),
        _case("diamond", diamond_loss, rng.normal(size=(2, 3))),
        _case("branches", branches_loss, rng.normal(size=5), rng.normal(size=2)),
        _case(
            "rnn",
            rnn_loss,
            rng.normal(size=(2, 3)),
            rng.normal(size=(3, 3)) / 2,
            rng.normal(size=3),
            rng.normal(size=(3, 2, 2)),
            rng.normal(size=(2, 3)),
        ),
    ]
    return {c.name: c for c in cases}


CASES = _build_cases()


def assert_same_outputs(ref: Graph, new: Graph, args: list[np.ndarray]) -> None:
    """The interpreter gives `new` the same outputs as `ref` (to rounding) on `args`."""
    want = run_graph(ref, args)
    got = run_graph(new, args)
    assert len(got) == len(want)
    for w, g in zip(want, got):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
