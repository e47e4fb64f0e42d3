"""Node budget: the optimized MLP joint graph against a hand-written NumPy backprop."""

from __future__ import annotations

import numpy as np

from compiler import trace
from compiler.passes import run_passes

CONSTANTS = ("const", "full")


def hand_backprop(params, x, y):
    """Textbook backprop for the `mlp` case: 18 forward ops, 22 backward ops."""
    (w1, b1), (w2, b2), (w3, b3) = params
    n = x.shape[0]
    h1 = np.tanh(x @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    z = h2 @ w3 + b3
    zs = z - z.max(axis=1, keepdims=True)
    e = np.exp(zs)
    s = e.sum(axis=1, keepdims=True)
    loss = -np.sum(y * (zs - np.log(s))) / n
    dz = (e / s - y) / n  # softmax - onehot (the max shift has no gradient)
    dw3, db3 = h2.T @ dz, dz.sum(axis=0)
    da2 = (dz @ w3.T) * (1 - h2 * h2)
    dw2, db2 = h1.T @ da2, da2.sum(axis=0)
    da1 = (da2 @ w2.T) * (1 - h1 * h1)
    dw1, db1 = x.T @ da1, da1.sum(axis=0)
    return loss, dw1, db1, dw2, db2, dw3, db3


def _ops(g):
    return [n for n in g.nodes if n.op not in CONSTANTS]


def test_mlp_joint_graph_within_budget_of_hand_written_backprop(cases):
    case = cases["mlp"]
    rng = np.random.default_rng(0)
    params = [
        (rng.normal(size=(4, 8)), np.zeros(8)),
        (rng.normal(size=(8, 8)), np.zeros(8)),
        (rng.normal(size=(8, 3)), np.zeros(3)),
    ]
    hand = trace(hand_backprop, params, rng.normal(size=(5, 4)), np.eye(3)[[0, 1, 2, 0, 1]])
    assert len(_ops(hand)) == 40
    opt = run_passes(case.joint, disable=("fuse",))
    assert len(_ops(opt)) <= 1.3 * len(_ops(hand))
    assert len(opt.nodes) <= 1.3 * len(hand.nodes)
