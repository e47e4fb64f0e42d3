"""The three properties every pass keeps, on every case graph (forward and joint)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler import trace
from compiler.autodiff import vjp_graph
from compiler.ir import verify
from compiler.passes import DEFAULT_PASSES, PASSES, run_passes
from tests.passes.cases import assert_same_outputs
from tests.strategies import INTERP, arrays, mutually_broadcastable_shapes

OWN_PASSES = ("simplify", "fold", "batch", "cse", "dce")


@pytest.mark.parametrize("name", OWN_PASSES)
@pytest.mark.parametrize("which", ["graph", "joint"])
def test_pass_preserves_meaning_and_types(name, which, case):
    g = getattr(case, which)
    out = verify(PASSES[name](g))
    assert [v.type for v in out.outputs] == [v.type for v in g.outputs]
    assert out.meta == g.meta
    for seed in range(3):
        args = case.random_inputs(seed)[: len(g.inputs)]
        assert_same_outputs(g, out, args)


@pytest.mark.parametrize("name", OWN_PASSES)
def test_pass_is_idempotent(name, case):
    once = PASSES[name](case.joint)
    twice = PASSES[name](once)
    assert twice.fingerprint() == once.fingerprint()
    assert twice is once  # a pass that changes nothing returns the same object


@pytest.mark.parametrize("name", DEFAULT_PASSES)
def test_pipeline_correct_with_pass_disabled(name, case):
    out = run_passes(case.joint, disable=(name,), check=True)
    assert_same_outputs(case.joint, out, case.random_inputs(1))


def test_pipeline_correct_and_smaller(case):
    out = run_passes(case.joint, check=True)
    assert_same_outputs(case.joint, out, case.random_inputs(2))
    assert len(out.nodes) < len(case.joint.nodes)


def test_pipeline_is_idempotent(case):
    once = run_passes(case.joint, disable=("fuse",))
    assert run_passes(once, disable=("fuse",)) is once


@INTERP
@given(data=st.data(), shapes=mutually_broadcastable_shapes(num_shapes=3, max_side=3))
def test_pipeline_broadcasting_joint_graphs(data, shapes):
    def f(x, b, c):
        big = np.broadcast_to(b, np.broadcast_shapes(x.shape, b.shape))
        return np.sum(np.tanh(x * b + c) * (b - 1.0)) + np.sum(big * 0.5)

    args = [data.draw(arrays(s)) for s in shapes]
    joint = vjp_graph(trace(f, *args), wrt=[0, 1, 2])
    out = run_passes(joint, check=True)
    assert_same_outputs(joint, out, args)
