"""Activation storage planning: store or recompute, checkpoint segments, buffer slots."""

from compiler.plan.buffers import Buffers, Slot, assign_buffers
from compiler.plan.dump import format_plan, plan_json
from compiler.plan.liveness import VIEW_OPS, Liveness, analyze
from compiler.plan.planner import POLICIES, Plan, Policy, plan, plan_graph
from compiler.plan.segments import mark_segment
from compiler.plan.split import split_plan

__all__ = [
    "POLICIES",
    "VIEW_OPS",
    "Buffers",
    "Liveness",
    "Plan",
    "Policy",
    "Slot",
    "analyze",
    "assign_buffers",
    "format_plan",
    "plan_json",
    "mark_segment",
    "plan",
    "plan_graph",
    "split_plan",
]
