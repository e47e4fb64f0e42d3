"""What each step of a scan stores for its reverse pass: the step-level storage plan.

The forward step graph (inputs: consts, carries, x_t; outputs: the step's outputs, then the
residuals its backward reads) is split per value the backward step needs:

- `const` / `x`: an operand of the step (a const, or a slice of xs): read from the operand,
  never stored;
- `hoist`: computed from consts only (a loop invariant such as `W.T`): computed once before
  the reverse loop, passed to it as a const;
- `recompute`: cheap elementwise or view ops (the planner's rule: `Cost.FREE`/`CHEAP`) on
  values the backward has anyway: replayed inside the backward step (`1 - h*h` from `h`);
- `stack`: everything else: one copy per step, an extra stacked output of the forward scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir.graph import Graph, Node, Value
from compiler.primitives import OPS, Cost, Kind

_RECOMPUTE_KINDS = (Kind.ELEMENTWISE, Kind.SHAPE, Kind.CONST)
_MAX_DEPTH = 8  # a longer chain of cheap ops is stored rather than replayed
_VIEWS = ("reshape", "transpose")


@dataclass(frozen=True)
class ResidualPlan:
    """Where each value the backward step reads comes from (values of the forward step)."""

    consts: tuple[tuple[Value, int], ...]  # (value, const operand index)
    xs: tuple[tuple[Value, int], ...]  # (value, xs operand index)
    hoisted: tuple[Value, ...]  # loop invariants, computed before the reverse loop
    hoist_nodes: tuple[Node, ...]  # the nodes that compute them, in order
    stacked: tuple[Value, ...]  # stored per step
    recompute_nodes: tuple[Node, ...]  # replayed in the backward step, in order
    # (value, i): the step's new carry i, read by the backward as the carry input i of the
    # step after it (its stacked value), handed down the reverse loop as an extra carry
    chained: tuple[tuple[Value, int], ...] = ()


def plan_residuals(fwd: Graph, n_consts: int, n_carry: int, n_out: int) -> ResidualPlan:
    """The storage plan for the residuals `fwd.outputs[n_out:]` (see the module docstring)."""
    pos = {v: i for i, v in enumerate(fwd.inputs)}
    producer = fwd.producers()
    invariant = set(fwd.inputs[:n_consts])
    for n in fwd.nodes:
        if all(v in invariant for v in n.inputs):
            invariant.update(n.outputs)
    res = list(dict.fromkeys(fwd.outputs[n_out:]))

    def is_operand(v: Value) -> bool:  # a const or an x: read, never stored
        i = pos.get(v)
        return i is not None and (i < n_consts or i >= n_consts + n_carry)

    stored = {r for r in res if not is_operand(r) and r not in invariant}
    # the step's new carry (`h_t`, read by tanh's derivative) is the next step's carry input:
    # the reverse loop hands it down from the step after (an extra carry of the reverse loop,
    # started at the final carry), so only the carry inputs are stacked, never h_t as well
    carry_out: dict[Value, int] = {}
    for i in range(n_carry):
        if fwd.outputs[i] is not fwd.inputs[n_consts + i]:
            carry_out.setdefault(fwd.outputs[i], i)
    chained: dict[Value, int] = {}
    for r in list(stored):  # a view of a carry (`h.T`): store the carry, replay the view
        root = r
        while producer.get(root) is not None and producer[root].op in _VIEWS:
            root = producer[root].inputs[0]
        if root is not r and pos.get(root, -1) >= n_consts:
            stored.discard(r)
            if not is_operand(root):  # a carry; an x slice is read from xs
                stored.add(root)

    def cheap(v: Value, avail: set[Value], depth: int) -> bool:
        if v in avail or is_operand(v) or v in invariant or v in carry_out:
            return True
        p = producer.get(v)
        if p is None or depth > _MAX_DEPTH or len(p.outputs) != 1:
            return False
        op = OPS[p.op]
        if op.kind not in _RECOMPUTE_KINDS or op.cost not in (Cost.FREE, Cost.CHEAP):
            return False
        return all(cheap(u, avail, depth + 1) for u in p.inputs)

    for r in res:
        if r in stored and producer.get(r) is not None:
            stored.discard(r)
            if not cheap(r, stored, 0):
                stored.add(r)

    # the backward step's inputs: stored values, operands and invariants that residuals
    # (or the recomputed nodes) read; the recomputed nodes: the cones in between
    need: set[Value] = set()
    recompute: set[Node] = set()

    def visit(v: Value) -> None:
        if v in carry_out:
            chained[v] = i = carry_out[v]
            stored.add(fwd.inputs[n_consts + i])
            visit(fwd.inputs[n_consts + i])
            return
        if v in stored or is_operand(v) or v in invariant:
            need.add(v)
            return
        p = producer[v]
        if p not in recompute:
            recompute.add(p)
            for u in p.inputs:
                visit(u)

    for r in res:
        visit(r)
    hoisted = [v for v in need if v in invariant and not is_operand(v)]
    cone: set[Node] = set()

    def hoist_cone(v: Value) -> None:
        p = producer.get(v)
        if p is not None and p not in cone:
            cone.add(p)
            for u in p.inputs:
                hoist_cone(u)

    for v in hoisted:
        hoist_cone(v)
    order = {v: i for i, v in enumerate(_values(fwd))}
    return ResidualPlan(
        consts=tuple(
            sorted(
                ((v, pos[v]) for v in need if pos.get(v, n_consts) < n_consts), key=lambda p: p[1]
            )
        ),
        xs=tuple(
            sorted(
                (
                    (v, pos[v] - n_consts - n_carry)
                    for v in need
                    if pos.get(v, -1) >= n_consts + n_carry
                ),
                key=lambda p: p[1],
            )
        ),
        hoisted=tuple(sorted(hoisted, key=order.__getitem__)),
        hoist_nodes=tuple(n for n in fwd.nodes if n in cone),
        stacked=tuple(sorted((v for v in need if v in stored), key=order.__getitem__)),
        recompute_nodes=tuple(n for n in fwd.nodes if n in recompute),
        chained=tuple(chained.items()),
    )


def _values(g: Graph) -> list[Value]:
    return [*g.inputs, *(v for n in g.nodes for v in n.outputs)]
