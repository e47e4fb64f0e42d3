"""Store or recompute: every policy gives the joint graph's gradients, decided deliberately."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.passes import run_passes
from compiler.pipeline import optimize
from compiler.plan import Policy, plan
from compiler.plan.remat import split_phases
from tests.plan.util import check_plan_runs, deep, deep_args, joint_of


def gelu(z):
    return 0.5 * z * (1.0 + np.tanh(0.79788456 * (z + 0.044715 * z**3)))


def gelu_mlp(Ws, x):
    h = x
    for W in Ws:
        h = gelu(h @ W)
    return np.sum(h**2)


def softmax_xent(W, b, x, y):
    logits = x @ W + b
    m = np.max(logits, axis=1, keepdims=True)
    e = np.exp(logits - m)
    p = e / np.sum(e, axis=1, keepdims=True)
    return -np.mean(np.sum(y * np.log(p), axis=1))


def sliced(x, w):
    a = np.tanh(x[:, :2] * w)
    c = np.concatenate([a, np.exp(x[:, 2:])], axis=1)
    return np.sum(c.T @ c) + np.sum(c[::2] ** 3)


def _cases():
    rng = np.random.default_rng(1)
    y = np.eye(5)[rng.integers(0, 5, size=7)]
    return {
        "deep": (deep, deep_args(6)),
        "gelu_mlp": (
            gelu_mlp,
            ([rng.normal(size=(5, 5)) / 2 for _ in range(4)], rng.normal(size=(6, 5))),
        ),
        "softmax_xent": (
            softmax_xent,
            (rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=(7, 4)), y),
        ),
        "sliced": (sliced, (rng.normal(size=(6, 4)), rng.normal(size=2))),
        "deep_f32": (
            deep,
            tuple(
                [(W.astype(np.float32), b.astype(np.float32)) for W, b in deep_args(5)[0]]
                if i == 0
                else a.astype(np.float32)
                for i, a in enumerate(deep_args(5))
            ),
        ),
    }


POLICIES = {
    "none": "none",
    "default": "default",
    "sqrt": "sqrt",
    "budget": Policy(memory_budget=1),
    "no-recompute-sqrt": Policy(recompute=False, memory="sqrt"),
}


@pytest.mark.parametrize("case", sorted(_cases()))
@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("passes", [False, True], ids=["joint", "passes"])
def test_remat_every_policy_gives_the_joint_gradients(case, policy, passes):
    fun, args = _cases()[case]
    joint, flat = joint_of(fun, *args)
    if passes:
        joint = optimize(joint)
    p = plan(joint, POLICIES[policy])
    check_plan_runs(p, joint, flat)
    assert p.graph.meta["n_primal_outputs"] == 1
    # forward nodes come first and are what the primal output needs
    ph = split_phases(p.graph, 1)
    assert len(ph.fwd) == p.n_forward and all(a is b for a, b in zip(ph.fwd, p.graph.nodes))


def test_remat_default_keeps_matmuls_and_recomputes_cheap_elementwise():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(6, 6)) / 3 for _ in range(8)]
    joint, flat = joint_of(gelu_mlp, Ws, rng.normal(size=(8, 6)))
    none, default = plan(joint, "none"), plan(joint, "default")
    producer = {v: n for n in default.graph.nodes for v in n.outputs}
    assert {producer[v].op for v in default.stored} == {"matmul"}
    assert len(default.stored) == 8  # one stored array per layer instead of several
    assert len(none.stored) > 3 * len(default.stored)
    assert default.recompute_count > 0
    assert {producer[c].op for c in default.recomputed} <= {"multiply", "add", "tanh", "power"}
    assert default.peak_bytes < none.peak_bytes / 2
    check_plan_runs(default, joint, flat)


def test_remat_clones_sit_right_before_their_first_backward_use():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(6, 6)) for _ in range(3)]
    joint, _ = joint_of(gelu_mlp, Ws, rng.normal(size=(8, 6)))
    p = plan(joint)
    nodes = p.graph.nodes
    clones = set(p.recomputed)
    pos = {v: i for i, n in enumerate(nodes) for v in n.outputs}
    for c in clones:
        assert pos[c] >= p.n_forward
        users = [i for i, n in enumerate(nodes) if c in n.inputs]
        # between the clone and its first reader there are only other clones
        first = min(users)
        assert all(n.outputs[0] in clones for n in nodes[pos[c] + 1 : first])
    # the forward originals are no longer read by the backward
    originals = {p.clone_of[c] for c in clones}
    for n in nodes[p.n_forward :]:
        assert not originals & set(n.inputs) or n.outputs[0] in clones


def test_remat_is_never_worse_than_storing_everything():
    for depth in (2, 8, 32):
        joint, _ = joint_of(deep, *deep_args(depth))
        assert plan(joint).peak_bytes <= plan(joint, "none").peak_bytes


def test_remat_residual_stream_is_not_recomputed_as_a_chain():
    # storing only the matmul outputs would recompute every h from x at once in the backward
    joint, _ = joint_of(deep, *deep_args(16))
    p = plan(joint)
    assert p.recompute_count <= 2 * 16
    assert p.peak_bytes <= plan(joint, "none").peak_bytes


def test_remat_graph_without_primal_mark_only_gets_slots():
    joint, flat = joint_of(deep, *deep_args(3))
    fwd_only = joint.with_meta(n_primal_outputs=None)
    p = plan(fwd_only)
    assert p.recompute_count == 0 and p.stored == () and p.n_forward == len(p.graph.nodes)
    check_plan_runs(p, joint, flat)


def test_remat_planning_twice_changes_nothing_more():
    joint, flat = joint_of(gelu_mlp, [np.eye(4) * 0.5] * 3, np.ones((3, 4)))
    p1 = plan(joint)
    p2 = plan(p1.graph)
    assert p2.recompute_count == 0 and p2.peak_bytes <= p1.peak_bytes
    check_plan_runs(p2, joint, flat)


def test_remat_policy_rejects_unknown_options():
    with pytest.raises(ValueError, match="memory="):
        Policy(memory="log")
    with pytest.raises(ValueError, match="unknown plan policy"):
        plan(joint_of(deep, *deep_args(1))[0], "fast")


def test_remat_recomputes_fused_groups_after_the_fuse_pass():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(6, 6)) / 3 for _ in range(6)]
    joint, flat = joint_of(gelu_mlp, Ws, rng.normal(size=(8, 6)))
    opt = run_passes(joint)  # the default passes, fuse included
    assert any(n.op == "fused" for n in opt.nodes)
    p = plan(opt)
    producer = {v: n for n in p.graph.nodes for v in n.outputs}
    assert any(producer[c].op == "fused" for c in p.recomputed)
    assert p.peak_bytes < plan(opt, "none").peak_bytes
    check_plan_runs(p, joint, flat)
