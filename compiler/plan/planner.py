"""`plan(joint, policy) -> Plan`: store or recompute, checkpoint segments, buffer slots.

The planner tries a few store/recompute decisions and keeps the one whose planned peak
(the bytes of its buffer slots) is lowest, fewer recomputed nodes breaking ties, so that a
plan is never worse than storing everything the backward reads.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from compiler.ir.graph import Graph, Node, Value
from compiler.plan.buffers import Buffers, Slot, assign_buffers
from compiler.plan.remat import (
    Decision,
    Phases,
    Remat,
    decide,
    hoisted,
    internal_values,
    node_cost,
    rematerialize,
    split_phases,
)
from compiler.plan.segments import auto_segments, chain_cuts, user_segments
from compiler.primitives.registry import Cost

MEMORY_MODES = (None, "sqrt")


@dataclass(frozen=True)
class Policy:
    """What the planner may do."""

    recompute: bool = True  # recompute cheap forward values when that saves stored bytes
    checkpoints: bool = True  # honour user `checkpoint` segments
    memory: str | None = None  # "sqrt": automatic checkpoints along the forward chain
    memory_budget: int | None = None  # bytes: least recomputation whose planned peak fits

    def __post_init__(self) -> None:
        if self.memory not in MEMORY_MODES:
            raise ValueError(f"memory={self.memory!r}: expected one of {MEMORY_MODES}")
        if self.memory_budget is not None and self.memory_budget < 0:
            raise ValueError(f"memory_budget={self.memory_budget}: expected bytes >= 0")

    def describe(self) -> str:
        parts = [] if self.recompute else ["no-recompute"]
        if not self.checkpoints:
            parts.append("no-checkpoints")
        if self.memory:
            parts.append(f"memory={self.memory}")
        if self.memory_budget is not None:
            parts.append(f"memory_budget={self.memory_budget}")
        return ", ".join(parts) or "default"


POLICIES = {
    "default": Policy(),
    "none": Policy(recompute=False, checkpoints=False),
    "sqrt": Policy(memory="sqrt"),
}


@dataclass(frozen=True)
class Plan:
    """A planned graph and the decisions behind it (values are the planned graph's)."""

    graph: Graph  # an ordinary graph: forward nodes, then backward nodes and clones
    policy: Policy
    n_forward: int  # the first n_forward nodes are the forward part
    stored: tuple[Value, ...]  # forward values kept live for the backward (not inputs)
    recomputed: tuple[Value, ...]  # clone values computed again in the backward
    clone_of: Mapping[Value, Value]  # clone -> the forward value it recomputes
    recompute_count: int  # nodes cloned into the backward
    segments: int  # checkpoint segments honoured (user and automatic)
    buffers: Buffers
    budget_met: bool | None = None  # with a memory budget: whether the peak fits

    @property
    def stored_bytes(self) -> int:
        return sum(v.type.nbytes for v in self.stored)

    @property
    def peak_bytes(self) -> int:
        """Planned peak bytes of intermediates: the arena slots (inputs and outputs excluded)."""
        return self.buffers.peak_bytes

    @property
    def live_peak_bytes(self) -> int:
        return self.buffers.live_peak_bytes

    @property
    def slots(self) -> tuple[Slot, ...]:
        return self.buffers.slots

    @property
    def slot_of(self) -> Mapping[Value, int]:
        return self.buffers.slot_of


def plan(
    joint: Graph, policy: Policy | str | None = None, *, n_primal_outputs: int | None = None
) -> Plan:
    """Plan a joint graph: store or recompute, checkpoint segments, buffer slots."""
    # `meta["n_primal_outputs"]` marks the primal outputs; a graph without that mark is all
    # forward and only gets buffer slots
    policy = _as_policy(policy)
    n_primal = n_primal_outputs
    if n_primal is None:
        n_primal = joint.meta.get("n_primal_outputs")
    ph = split_phases(joint, n_primal)
    user = user_segments(ph.fwd) if policy.checkpoints else {}
    if policy.memory_budget is not None:
        return _fit_budget(ph, user, policy)
    segs = dict(user)
    if policy.memory == "sqrt":
        segs.update(auto_segments(ph.fwd, set(ph.free), set(ph.needed), user))
    return _best(ph, segs, policy)


def plan_graph(graph: Graph, memory: str | None = None, memory_budget: int | None = None) -> Plan:
    """The pipeline's plan stage: the default policy plus the API's memory options."""
    return plan(graph, Policy(memory=memory, memory_budget=memory_budget))


def _as_policy(policy: Policy | str | None) -> Policy:
    if policy is None:
        return Policy()
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"unknown plan policy {policy!r}; choose one of {list(POLICIES)}")
        return POLICIES[policy]
    return policy


def _best(ph: Phases, segs: Mapping[Node, Hashable], policy: Policy) -> Plan:
    """The lowest-peak plan among storing everything and up to three min-cut rounds."""
    # each round forbids the recomputations the previous one had to hoist
    inside, seg_inputs = internal_values(ph, segs)
    n_segments = len(set(segs.values()))
    fwd_values = [v for n in ph.fwd for v in n.outputs]
    keep_all, _ = _realise(ph, decide(ph, fwd_values, inside), policy, n_segments)
    if not ph.needed or not policy.recompute:
        return keep_all
    expensive = {v for n in ph.fwd if node_cost(n) is Cost.EXPENSIVE for v in n.outputs}
    banned = expensive | seg_inputs
    plans = [keep_all]
    for _ in range(3):
        p, rm = _realise(ph, decide(ph, banned, inside), policy, n_segments)
        plans.append(p)
        more = [v for v in hoisted(rm, ph.needed) if v not in inside and v not in banned]
        if not more:
            break
        banned = banned | set(more)
    return min(plans, key=lambda p: (p.peak_bytes, p.recompute_count))


def _realise(ph: Phases, decision: Decision, policy: Policy, n_segments: int) -> tuple[Plan, Remat]:
    rm = rematerialize(ph, decision.recompute, ph.graph.meta)
    p = Plan(
        graph=rm.graph,
        policy=policy,
        n_forward=rm.n_forward,
        stored=tuple(rm.env[v] for v in decision.stored),
        recomputed=tuple(rm.clones),
        clone_of=rm.clones,
        recompute_count=rm.cloned_nodes,
        segments=n_segments,
        buffers=assign_buffers(rm.graph),
    )
    return p, rm


def _fit_budget(ph: Phases, user: Mapping[Node, Hashable], policy: Policy) -> Plan:
    """The plan with the fewest automatic segments whose planned peak fits the budget."""
    # no segments first, then 1, 2, 4, ... segments; if none fits, the lowest peak found
    # (the sqrt rule included)
    budget = policy.memory_budget
    base = _best(ph, user, policy)
    if base.peak_bytes <= budget:
        return _with_budget(base, True)
    n_cuts = len(chain_cuts(ph.fwd, set(ph.free)))
    counts = sorted({2**k for k in range(int(math.log2(max(1, n_cuts))) + 1)} | {n_cuts})
    best = base
    free, needed = set(ph.free), set(ph.needed)
    for k in [*counts, None]:
        segs = {**user, **auto_segments(ph.fwd, free, needed, user, n_segments=k)}
        p = _best(ph, segs, policy)
        if p.peak_bytes <= budget:
            return _with_budget(p, True)
        if p.peak_bytes < best.peak_bytes:
            best = p
    return _with_budget(best, False)


def _with_budget(p: Plan, met: bool) -> Plan:
    return dataclasses.replace(p, budget_met=met)
