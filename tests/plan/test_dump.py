"""`format_plan`: what `gradc ir --stage plan` prints."""

from __future__ import annotations

import re

from compiler.ir import format_graph
from compiler.plan import format_plan, plan
from tests.plan.test_checkpoint import net
from tests.plan.util import deep, deep_args, joint_of


def test_dump_lists_stored_recomputed_slots_and_peak():
    joint, _ = joint_of(net, *deep_args(2))
    p = plan(joint)
    text = format_plan(p)
    assert text.startswith("plan (default):")
    assert format_graph(p.graph) in text
    assert f"stored for the backward: {len(p.stored)} values, {p.stored_bytes} B" in text
    assert f"recomputed in the backward: {p.recompute_count} nodes" in text
    assert re.search(r"matmul\s+again %\d+", text)
    assert f"planned peak bytes: {p.peak_bytes} B" in text
    assert len(re.findall(r"^  slot \d+ ", text, re.M)) == len(p.slots)


def test_dump_is_deterministic_and_can_omit_the_graph():
    a = format_plan(plan(joint_of(deep, *deep_args(4))[0], "sqrt"), graph=False)
    b = format_plan(plan(joint_of(deep, *deep_args(4))[0], "sqrt"), graph=False)
    assert a == b and "graph(" not in a and "memory=sqrt" in a
