"""`checkpoint(fun)`: a marked segment stores only its inputs and is recomputed backward."""

from __future__ import annotations

import numpy as np
import pytest

import compiler
from compiler import checkpoint, grad
from compiler.pipeline import optimize
from compiler.plan import plan
from compiler.plan.segments import CHECKPOINT
from tests.plan.util import assert_same, check_plan_runs, deep_args, joint_of


def layer(h, W, b):
    return h + np.tanh(h @ W + b)


block = checkpoint(layer)


def net(params, x, y, ck=True):
    h = x
    for W, b in params:
        h = (block if ck else layer)(h, W, b)
    return np.mean((h - y) ** 2)


def _producers(g):
    return {v: n for n in g.nodes for v in n.outputs}


def test_checkpoint_segment_is_recomputed_and_not_stored():
    joint, flat = joint_of(net, *deep_args(3))
    p = plan(joint)
    prod = _producers(p.graph)
    assert p.segments == 3
    # every segment's matmul, bias add and tanh run again in the backward ...
    again = [prod[c].op for c in p.recomputed]
    assert again.count("matmul") == 3 and again.count("tanh") == 3
    assert p.recompute_count == 9
    # ... and none of them is stored: only segment boundaries (the h's) and the loss residual
    assert {prod[v].op for v in p.stored} <= {"add", "subtract"}
    fwd_matmuls = [n.out for n in p.graph.nodes[: p.n_forward] if n.op == "matmul"]
    assert not set(fwd_matmuls) & set(p.stored)
    assert len(p.stored) == 3  # h1, h2 (segment inputs) and h3 - y
    check_plan_runs(p, joint, flat)


def test_checkpoint_stores_less_than_the_unmarked_net():
    args = deep_args(8)
    marked, _ = joint_of(net, *args)
    plain, _ = joint_of(lambda *a: net(*a, ck=False), *args)
    assert plan(marked).stored_bytes < plan(plain).stored_bytes / 1.5


def test_checkpoint_gradients_equal_unmarked():
    args = deep_args(4)
    want = grad(net, backend="interpret")(*args, ck=False)
    got = grad(net, backend="interpret")(*args, ck=True)
    for a, b in zip(got, want):
        assert_same(a, b)
    gx = grad(net, argnums=1, backend="interpret")
    assert_same([gx(*args, ck=True)], [gx(*args, ck=False)])


def test_checkpoint_tags_survive_vjp_and_passes():
    joint, flat = joint_of(net, *deep_args(3))
    opt = optimize(joint)
    p = plan(opt)
    assert p.segments == 3 and p.recompute_count >= 3
    check_plan_runs(p, joint, flat)


def test_checkpoint_outside_a_trace_just_calls_the_function():
    W, b = np.eye(3), np.zeros(3)
    x = np.ones((2, 3))
    np.testing.assert_array_equal(block(x, W, b), layer(x, W, b))
    assert block.__name__ == "layer" and block.__wrapped__ is layer
    with pytest.raises(TypeError, match="callable"):
        checkpoint(3)


def test_checkpoint_nested_segments_become_the_outer_one():
    @checkpoint
    def two(h, W, b):
        return block(block(h, W, b), W, b)

    def f(W, b, x):
        return np.sum(two(x, W, b) ** 2)

    rng = np.random.default_rng(0)
    args = (rng.normal(size=(3, 3)), rng.normal(size=3), rng.normal(size=(4, 3)))
    g = compiler.trace(f, *args)
    tags = {n.tags.get(CHECKPOINT) for n in g.nodes if n.op != "const"}
    assert len(tags - {None}) == 1
    joint, flat = joint_of(f, *args)
    p = plan(joint)
    assert p.segments == 1
    check_plan_runs(p, joint, flat)


def test_checkpoint_recomputes_even_what_default_would_store():
    @checkpoint
    def act(z):
        return np.exp(np.sin(z))

    def f(x):
        return np.sum(act(x * x))

    joint, flat = joint_of(f, np.linspace(-1, 1, 12))
    p = plan(joint)
    prod = _producers(p.graph)
    assert {prod[c].op for c in p.recomputed} >= {"sin", "exp"}
    check_plan_runs(p, joint, flat)


def test_checkpoint_under_grad_of_grad():
    @checkpoint
    def cube(x):
        return np.sin(x) * x * x

    def f(x):
        return np.sum(cube(x))

    def plain(x):
        return np.sum(np.sin(x) * x * x)

    x = np.linspace(-1.0, 1.0, 5)
    got = grad(lambda x: np.sum(grad(f)(x)), backend="interpret")(x)
    want = grad(lambda x: np.sum(grad(plain)(x)), backend="interpret")(x)
    np.testing.assert_allclose(got, want)


def test_checkpoint_is_a_node_tag_kept_by_copies_and_printed():
    def f(x):
        return np.sum(checkpoint(np.sin)(x) * x)

    g = compiler.trace(f, np.ones(3))
    (sin,) = [n for n in g.nodes if n.op == "sin"]
    assert sin.tags == {CHECKPOINT: sin.tags[CHECKPOINT]} and "f.py" not in (sin.loc or "x")
    assert "[checkpoint=" in str(g)
    joint, _ = joint_of(f, np.ones(3))
    tagged = [n.op for n in joint.nodes if CHECKPOINT in n.tags]
    assert tagged.count("sin") == 1 and "cos" in tagged  # the adjoint of sin is tagged too
