"""memory="sqrt" and memory budgets: stored activations grow like sqrt(depth)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import grad, value_and_grad
from compiler.plan import Policy, plan, plan_graph
from compiler.plan.remat import split_phases
from compiler.plan.segments import chain_cuts
from tests.plan.util import assert_same, check_plan_runs, deep, deep_args, joint_of

DEPTHS = (16, 64, 256)


@pytest.fixture(scope="module")
def deep_plans():
    out = {}
    for depth in DEPTHS:
        joint, flat = joint_of(deep, *deep_args(depth))
        out[depth] = (joint, flat, plan(joint), plan(joint, "sqrt"))
    return out


def test_memory_sqrt_peak_grows_like_sqrt_depth(deep_plans):
    peaks = {d: (p.peak_bytes, s.peak_bytes) for d, (_, _, p, s) in deep_plans.items()}
    for lo, hi in zip(DEPTHS, DEPTHS[1:]):  # depth x4 each step
        default_ratio = peaks[hi][0] / peaks[lo][0]
        sqrt_ratio = peaks[hi][1] / peaks[lo][1]
        assert 3.6 < default_ratio < 4.4, peaks  # O(depth)
        assert 1.6 < sqrt_ratio < 2.5, peaks  # O(sqrt(depth)): x2
    assert peaks[256][1] < peaks[256][0] / 8


def test_memory_sqrt_costs_about_one_extra_forward(deep_plans):
    for depth, (_, _, _, s) in deep_plans.items():
        assert s.segments >= 3
        assert s.recompute_count <= s.n_forward  # at most one forward pass again
        assert s.recompute_count >= 0.6 * 4 * depth  # most layers really are recomputed


def test_memory_sqrt_gradients_equal_default(deep_plans):
    joint, flat, _, s = deep_plans[64]
    check_plan_runs(s, joint, flat)


def test_memory_chain_cuts_find_the_residual_stream():
    joint, _ = joint_of(deep, *deep_args(8))
    ph = split_phases(joint, 1)
    cuts = [c for c, _ in chain_cuts(ph.fwd, set(ph.free))]
    # each layer is matmul, add, tanh, add: every h = h + tanh(...) is a cut
    residual = [4 * k + 3 for k in range(8)]
    assert set(residual) <= set(cuts)
    assert all(ph.fwd[c].op == "add" for c in residual)


def test_memory_budget_is_met_with_the_fewest_segments():
    joint, flat = joint_of(deep, *deep_args(32))
    default, sqrt = plan(joint), plan(joint, "sqrt")
    roomy = plan(joint, Policy(memory_budget=default.peak_bytes))
    assert roomy.budget_met and roomy.recompute_count == default.recompute_count
    mid = (default.peak_bytes + sqrt.peak_bytes) // 2
    fit = plan(joint, Policy(memory_budget=mid))
    assert fit.budget_met and fit.peak_bytes <= mid and fit.segments >= 1
    check_plan_runs(fit, joint, flat)
    tight = plan(joint, Policy(memory_budget=1))
    assert tight.budget_met is False and tight.peak_bytes <= sqrt.peak_bytes


def test_memory_api_options_give_equal_gradients():
    args = deep_args(12)
    want = grad(deep, backend="interpret")(*args)
    for opts in ({"memory": "sqrt"}, {"memory_budget": 4096}):
        got = grad(deep, backend="interpret", **opts)(*args)
        for (gw, gb), (ww, wb) in zip(got, want):
            assert_same([gw, gb], [ww, wb])
    f = value_and_grad(deep, argnums=(0, 1), backend="interpret", memory="sqrt")
    val, (gp, gx) = f(*args)
    assert np.isclose(val, deep(*args))
    stages = f.stages(*args)
    sqrt = plan_graph(stages.passes, memory="sqrt")
    assert sqrt.peak_bytes < plan(stages.passes).peak_bytes
    assert stages.plan.graph.meta["n_primal_outputs"] == 1
    assert stages.plan.peak_bytes == sqrt.peak_bytes  # the API planned with memory="sqrt"


def test_memory_api_rejects_bad_options():
    with pytest.raises(ValueError, match="memory="):
        grad(deep, memory="half")
    with pytest.raises(ValueError, match="memory_budget"):
        grad(deep, memory_budget=-1)
