"""The plan stage as text (`format_plan`) and as JSON (`plan_json`): the planner's decisions
(stored and recomputed values) and the buffer plan of each graph codegen compiles."""

from __future__ import annotations

from collections.abc import Sequence

from compiler.ir.graph import Graph, Value
from compiler.ir.printer import format_graph
from compiler.ir.types import dtype_short
from compiler.plan.buffers import Buffers
from compiler.plan.planner import Plan

# one compiled graph: (stage name, the graph codegen renders, its buffer plan or None)
Compiled = tuple[str, Graph, Buffers | None]


def value_names(g: Graph) -> dict[Value, str]:
    """`%N` names, numbered as the printer numbers `g`'s top level."""
    values = list(g.inputs) + [v for n in g.nodes for v in n.outputs]
    return {v: f"%{i}" for i, v in enumerate(values)}


def _bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n} B ({n / size:.1f} {unit})"
    return f"{n} B"


def _decisions(plan: Plan, graph: bool) -> list[str]:
    g, names = plan.graph, value_names(plan.graph)
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
    return lines


def _slots(name: str, g: Graph, bufs: Buffers | None, graph: bool) -> list[str]:
    lines = [f"compiled stage {name}: {len(g.nodes)} nodes"]
    if bufs is None:
        lines.append("  all-scalar: values live in registers, no arena")
        lines.append("planned peak bytes: 0 B")
        return lines
    names = value_names(g)
    if graph:
        lines.append(format_graph(g, names=dict(names)))
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
        f"planned peak bytes: {_bytes(bufs.peak_bytes)} (the compiled stage's arena; "
        f"live peak {bufs.live_peak_bytes} B)"
    )
    return lines


def format_plan(plan: Plan | None, compiled: Sequence[Compiled] = (), *, graph: bool = True) -> str:
    """The planner's decisions (a joint graph's plan; None for jit), then each compiled
    graph with its buffer slots and planned peak bytes (the arena it allocates)."""
    lines = [] if plan is None else _decisions(plan, graph)
    if plan is not None and not compiled:
        lines += _slots("planned graph", plan.graph, plan.buffers, graph=False)
    for name, g, bufs in compiled:
        lines += _slots(name, g, bufs, graph)
    return "\n".join(lines)


def _buffers_json(name: str, g: Graph, bufs: Buffers | None) -> dict:
    names = value_names(g)
    if bufs is None:
        return {"name": name, "peak_bytes": 0, "slots": [], "values": []}
    slots = [
        {
            "id": s.id,
            "dtype": s.dtype.name,
            "size": s.size,
            "bytes": s.nbytes,
            "fresh": s.fresh,
            "values": sorted(
                (names[v] for v, sid in bufs.slot_of.items() if sid == s.id),
                key=lambda n: int(n[1:]),
            ),
        }
        for s in bufs.slots
    ]
    values = []
    for v, vn in names.items():
        entry = {"value": vn, "type": str(v.type)}
        if v in bufs.slot_of:
            entry["slot"] = bufs.slot_of[v]
        elif v in bufs.views:
            entry["view_of"] = names[bufs.views[v]]
        values.append(entry)
    return {
        "name": name,
        "peak_bytes": bufs.peak_bytes,
        "live_peak_bytes": bufs.live_peak_bytes,
        "output_bytes": bufs.output_bytes,
        "slots": slots,
        "values": values,
    }


def plan_json(plan: Plan | None, compiled: Sequence[Compiled]) -> dict:
    """The plan stage as a JSON-able dict: per compiled stage `peak_bytes` (its arena's bytes)
    and slots; for the joint graph, whether each forward value is stored or recomputed."""
    out: dict = {"stages": [_buffers_json(*c) for c in compiled]}
    if plan is None:
        return out
    g, names = plan.graph, value_names(plan.graph)
    stored, recomputed = set(plan.stored), set(plan.recomputed)
    fwd = {v for n in g.nodes[: plan.n_forward] for v in n.outputs}
    values = []
    for n in g.nodes:
        for v in n.outputs:
            if v in stored:
                what = "stored"
            elif v in recomputed:
                what = "recomputed"
            elif v in fwd:
                what = "forward"  # read only inside the forward (or a graph output)
            else:
                what = "backward"
            entry = {"value": names[v], "type": str(v.type), "op": n.op, "storage": what}
            if v in recomputed:
                entry["recomputes"] = names[plan.clone_of[v]]
            values.append(entry)
    out["plan"] = {
        "policy": plan.policy.describe(),
        "n_forward": plan.n_forward,
        "recompute_count": plan.recompute_count,
        "segments": plan.segments,
        "stored_bytes": plan.stored_bytes,
        "budget_met": plan.budget_met,
        "values": values,
    }
    return out
