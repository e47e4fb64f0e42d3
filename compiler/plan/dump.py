"""`format_plan(plan)`: the planned graph and its decisions, as `gradc ir --stage plan` shows."""

from __future__ import annotations

from compiler.ir.graph import Value
from compiler.ir.printer import format_graph
from compiler.ir.types import dtype_short
from compiler.plan.planner import Plan


def _names(plan: Plan) -> dict[Value, str]:
    """`%N` names, numbered as the printer numbers the planned graph."""
    g = plan.graph
    values = list(g.inputs) + [v for n in g.nodes for v in n.outputs]
    return {v: f"%{i}" for i, v in enumerate(values)}


def _bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n} B ({n / size:.1f} {unit})"
    return f"{n} B"


def format_plan(plan: Plan, *, graph: bool = True) -> str:
    """Stored values with their bytes, recomputed values, slots and the planned peak bytes."""
    g, names = plan.graph, _names(plan)
    producer = {v: n for n in g.nodes for v in n.outputs}
    lines = [
        f"plan ({plan.policy.describe()}): {plan.n_forward} forward nodes, "
        f"{len(g.nodes) - plan.n_forward} backward nodes, "
        f"{plan.recompute_count} recomputed, {plan.segments} checkpoint segments"
    ]
    if plan.budget_met is not None:
        lines.append(f"memory budget {plan.policy.memory_budget} B: met={plan.budget_met}")
    if graph:
        lines.append(format_graph(g, names=dict(names)))
    lines.append(f"stored for the backward: {len(plan.stored)} values, {_bytes(plan.stored_bytes)}")
    for v in plan.stored:
        lines.append(f"  {names[v]:>6} {str(v.type):<16} {v.type.nbytes:>10} B  {producer[v].op}")
    lines.append(f"recomputed in the backward: {plan.recompute_count} nodes")
    for c in plan.recomputed:
        orig = plan.clone_of[c]
        lines.append(f"  {names[c]:>6} {str(c.type):<16} {producer[c].op:<14} again {names[orig]}")
    bufs = plan.buffers
    members: dict[int, list[str]] = {}
    for v, sid in bufs.slot_of.items():
        members.setdefault(sid, []).append(names[v])
    arena = [s for s in bufs.slots if not s.fresh]
    lines.append(
        f"slots: {len(arena)} arena ({_bytes(bufs.peak_bytes)}), "
        f"{len(bufs.slots) - len(arena)} fresh outputs ({_bytes(bufs.output_bytes)}), "
        f"{len(bufs.views)} views"
    )
    for s in bufs.slots:
        kind = "fresh" if s.fresh else "arena"
        vals = " ".join(members.get(s.id, []))
        lines.append(
            f"  slot {s.id:<4} {dtype_short(s.dtype)}[{s.size}] {s.nbytes:>10} B {kind}  {vals}"
        )
    lines.append(
        f"planned peak bytes: {_bytes(bufs.peak_bytes)} "
        f"(live peak {bufs.live_peak_bytes} B, stored {plan.stored_bytes} B)"
    )
    return "\n".join(lines)
