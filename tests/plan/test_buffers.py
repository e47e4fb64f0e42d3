"""Liveness and buffer slots: shared slots never hold two live values at once."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from compiler.autodiff import vjp_graph
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType
from compiler.plan import analyze, assign_buffers, plan
from tests.plan.util import (
    F64,
    assert_same,
    check_plan_runs,
    random_graphs,
    random_inputs,
    run_in_slots,
)


def _check_slots(graph) -> None:
    bufs = assign_buffers(graph)
    live = analyze(graph)
    by_slot: dict[int, list] = {}
    for v, sid in bufs.slot_of.items():
        by_slot.setdefault(sid, []).append(v)
        slot = bufs.slots[sid]
        assert (slot.dtype, slot.size) == (v.dtype, v.type.size)
        assert v not in bufs.views
    for sid, vals in by_slot.items():
        if bufs.slots[sid].fresh:
            assert len(vals) == 1  # an output's buffer is its own
        for i, a in enumerate(vals):
            for c in vals[i + 1 :]:
                if bufs.inplace.get(c) is a or bufs.inplace.get(a) is c:
                    first, then = (a, c) if bufs.inplace.get(c) is a else (c, a)
                    assert live.end[first] == live.start[then]  # dies where it is overwritten
                    assert first in live.nodes[live.start[then]].inputs
                else:
                    assert not live.overlaps(a, c), "two live values share a slot"
    owners = set(live.owners)
    assert set(bufs.slot_of) == owners
    assert bufs.peak_bytes >= bufs.live_peak_bytes


@settings(deadline=None, max_examples=150)
@given(random_graphs())
def test_buffers_shared_slots_never_overlap_live_ranges(graph):
    _check_slots(graph)
    args = random_inputs(graph)
    assert_same(run_in_slots(graph, assign_buffers(graph), args), run_graph(graph, args))


@settings(deadline=None, max_examples=40)
@given(random_graphs(max_nodes=12))
def test_buffers_planned_joint_graphs_run_in_their_slots(graph):
    out = graph.outputs[0]
    b = Builder()
    ins = [b.add_input(v.type) for v in graph.inputs]
    from compiler.ir.graph import copy_into

    (y,) = copy_into(b, graph.with_meta(), ins)[:1]
    loss = b.add("sum", [b.add("tanh", [y])], {"axis": tuple(range(out.ndim)), "keepdims": False})
    fwd = b.build([loss])
    joint = vjp_graph(fwd, list(range(len(fwd.inputs))))
    args = random_inputs(joint)
    for policy in ("none", "default", "sqrt"):
        p = plan(joint, policy)
        _check_slots(p.graph)
        check_plan_runs(p, joint, args)


def test_buffers_views_take_no_slot_and_extend_their_base():
    b = Builder()
    x = b.add_input(TensorType((3, 4), F64))
    y = b.add("tanh", [x])
    t = b.add("transpose", [y], {"axes": (1, 0)})
    z = b.add("negative", [x])
    w = b.add("multiply", [b.add("transpose", [z], {"axes": (1, 0)}), t])
    bufs = assign_buffers(b.build([w]))
    assert t not in bufs.slot_of and bufs.views[t] is y
    assert bufs.slot_of[y] != bufs.slot_of[z]  # y is read (through t) after z is made
    assert bufs.liveness.end[y] == 4


def test_buffers_reshape_of_an_input_gets_a_buffer_of_a_result_a_view():
    b = Builder()
    x = b.add_input(TensorType((3, 4), F64))
    r_in = b.add("reshape", [x], {"shape": (12,)})
    y = b.add("tanh", [x])
    r_out = b.add("reshape", [y], {"shape": (12,)})
    bufs = assign_buffers(b.build([b.add("add", [r_in, r_out])]))
    assert r_in in bufs.slot_of  # an input may be strided: reshape can copy
    assert bufs.views[r_out] is y


def test_buffers_elementwise_chain_reuses_one_slot_in_place():
    b = Builder()
    x = b.add_input(TensorType((64,), F64))
    v = x
    for op in ["tanh", "negative", "square", "tanh"]:
        v = b.add(op, [v])
    s = b.add("sum", [v], {"axis": (0,), "keepdims": False})
    bufs = assign_buffers(b.build([s]))
    arena = [sl for sl in bufs.slots if not sl.fresh]
    assert len(arena) == 1 and bufs.peak_bytes == 64 * 8
    assert len(bufs.inplace) == 3
    without = assign_buffers(b.build([s]), inplace=False)
    assert without.peak_bytes == 2 * 64 * 8


def test_buffers_arena_specs_match_the_runtime_arena():
    from runtime.arena import Arena

    b = Builder()
    x = b.add_input(TensorType((3, 4), F64))
    y = b.add("matmul", [b.add("tanh", [x]), b.add("transpose", [x], {"axes": (1, 0)})])
    bufs = assign_buffers(b.build([b.add("sum", [y], {"axis": (0, 1), "keepdims": False})]))
    arena = Arena(bufs.arena_specs())
    assert arena.nbytes == bufs.peak_bytes
    sets = arena.acquire()
    assert [a.size for a in sets] == [s.size for s in bufs.slots if not s.fresh]
    assert np.all([not s.fresh for s in bufs.slots[: len(sets)]])
