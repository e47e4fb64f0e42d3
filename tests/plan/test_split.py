"""vjp's stages from a plan: the forward returns exactly the planned residuals."""

from __future__ import annotations

import numpy as np
import pytest

import compiler
from compiler.autodiff import vjp_graph
from compiler.interpret import run_graph
from compiler.passes import run_passes
from compiler.pipeline import optimize
from compiler.plan import plan, split_plan
from tests.plan.test_checkpoint import block
from tests.plan.util import assert_same, deep_args, flat_args


def stack(params, x, y):
    h = x
    for W, b in params:
        h = h + np.tanh(h @ W + b)
    return h * y


def stack_ck(params, x, y):
    h = x
    for W, b in params:
        h = block(h, W, b)
    return h * y


@pytest.mark.parametrize("fun", [stack, stack_ck])
@pytest.mark.parametrize("policy", ["none", "default", "sqrt"])
@pytest.mark.parametrize("passes", [False, True], ids=["joint", "passes"])
def test_split_residuals_are_the_plan(fun, policy, passes):
    args = deep_args(12)
    g = compiler.trace(fun, *args)
    flat = flat_args(args)
    n_in = len(g.inputs)
    joint = vjp_graph(g, list(range(n_in)), seeds="input", ct_outputs=(0,))
    if passes:  # fusing before the split would merge forward and backward loops
        joint = optimize(joint, disable=("fuse",))
    ct = np.random.default_rng(3).normal(size=g.outputs[0].shape)
    want = run_graph(joint, [*flat, ct])
    p = plan(joint, policy)
    s = split_plan(p, n_in, 1)
    compiler.verify(s.forward)
    compiler.verify(s.backward)
    fwd = run_graph(s.forward, flat)
    assert_same(fwd[:1], want[:1])
    assert_same(run_graph(s.backward, [*fwd[1:], ct]), want[1:])
    residuals = s.forward.outputs[1:]
    assert len(residuals) == s.n_residuals
    # the residuals are the stored values plus primal inputs and outputs the backward reads
    extra = set(s.forward.inputs) | set(s.forward.outputs[:1])
    kept = [v for v in residuals if v not in extra]
    assert len(kept) == len(set(kept)) and set(kept) == set(p.stored)
    # no clone was hoisted into the forward stage
    assert len(s.forward.nodes) == p.n_forward


def test_split_plan_refuses_a_forward_node_that_reads_a_cotangent():
    args = deep_args(2)
    g = compiler.trace(stack, *args)
    n_in = len(g.inputs)
    # fused before the split (the default passes, fuse included): the pipeline never does
    joint = run_passes(vjp_graph(g, list(range(n_in)), seeds="input", ct_outputs=(0,)))
    assert any(n.op == "fused" for n in joint.nodes)
    with pytest.raises(ValueError, match="cotangent"):
        split_plan(plan(joint), n_in, 1)


def test_split_plan_stores_less_than_storing_everything_with_checkpoints():
    args = deep_args(12)
    g = compiler.trace(stack_ck, *args)
    n_in = len(g.inputs)
    joint = vjp_graph(g, list(range(n_in)), seeds="input", ct_outputs=(0,))

    def residual_bytes(split):
        ins = set(split.forward.inputs)
        return sum(v.type.nbytes for v in split.forward.outputs[1:] if v not in ins)

    assert (
        residual_bytes(split_plan(plan(joint), n_in, 1))
        < residual_bytes(split_plan(plan(joint, "none"), n_in, 1)) / 2
    )
