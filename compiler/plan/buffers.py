"""Buffer slots: values whose live ranges do not overlap share one preallocated buffer.

Greedy interval colouring per size class (dtype, element count): walk buffers in order of
definition, free the slots whose last reader came strictly before, and reuse the lowest
free slot of the same class. Within one class this uses exactly as many slots as buffers of
that class are ever live at once; an elementwise output may also overwrite an operand that
dies at its node (as the generated kernels already do). Buffers that escape (graph outputs)
get a slot of their own marked `fresh`: the caller keeps them, so they are allocated per
call, never shared.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from compiler.ir.graph import Graph, Node, Value
from compiler.plan.liveness import Liveness, analyze, live_bytes
from compiler.primitives import OPS
from compiler.primitives.registry import Kind


@dataclass(frozen=True)
class Slot:
    """One buffer: `size` elements of `dtype`; `fresh` slots hold outputs (one per call)."""

    id: int
    dtype: np.dtype
    size: int
    fresh: bool = False

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


@dataclass(frozen=True)
class Buffers:
    """Where every value of a graph lives: a slot, a view of another value, or caller memory."""

    slots: tuple[Slot, ...]  # arena slots (ids 0..k-1) first, then fresh output slots
    slot_of: Mapping[Value, int]  # every buffer-owning value -> slot id
    views: Mapping[Value, Value]  # every view value -> the value that owns its memory
    inplace: Mapping[Value, Value]  # output -> the dying operand whose slot it overwrites
    peak_bytes: int  # bytes of the arena slots: the planned peak of intermediates
    live_peak_bytes: int  # most bytes of intermediates live at one node (a lower bound)
    output_bytes: int  # bytes of the fresh output slots
    liveness: Liveness

    def arena_specs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        """`(shape, dtype)` per arena slot, in slot-id order (what `runtime.Arena` takes)."""
        return [((s.size,), s.dtype) for s in self.slots if not s.fresh]


def _class(v: Value) -> tuple[str, int]:
    return (v.dtype.str, v.type.size)


def _same_index(node: Node) -> bool:
    """Whether the node's output may overwrite an operand shaped like it that dies there."""
    # an elementwise loop reads such an operand at exactly the output's index
    if len(node.outputs) != 1:
        return False
    if node.op == "fused":
        body = node.attrs["body"].nodes
        return all(OPS[n.op].kind in (Kind.ELEMENTWISE, Kind.CONST) for n in body)
    return OPS[node.op].kind is Kind.ELEMENTWISE


def assign_buffers(graph: Graph, *, inplace: bool = True, share: bool = True) -> Buffers:
    """Give each buffer-owning value of `graph` a slot; live values never share one
    (`share=False`: no two values share one, the pipeline's `--disable buffers`)."""
    # except (with `inplace`) an elementwise output taking over a same-shaped operand's slot
    # at the node that reads that operand last
    live = analyze(graph)
    temps = [v for v in live.owners if v not in live.escapes]
    slot_of: dict[Value, int] = {}
    handover: dict[Value, Value] = {}
    taken: set[Value] = set()  # handover's values, kept as a set: a lookup per operand
    slots: list[Slot] = []
    holder: list[int] = []  # per slot: the index (in temps) of its current occupant
    # class -> heap of (end, occupant, slot); an entry is stale once the slot is handed over
    busy: dict[tuple[str, int], list[tuple[int, int, int]]] = {}
    free: dict[tuple[str, int], list[int]] = {}  # class -> heap of free slot ids
    for k, v in enumerate(temps):  # owners are in definition order
        cls, i = _class(v), live.start[v]
        heap, pool = busy.setdefault(cls, []), free.setdefault(cls, [])
        while heap and heap[0][0] < i:
            _, who, sid = heapq.heappop(heap)
            if holder[sid] == who:
                heapq.heappush(pool, sid)
        sid = _donor(live, v, slot_of, handover, taken) if inplace and share else None
        if sid is None:
            if pool and share:
                sid = heapq.heappop(pool)
            else:
                sid = len(slots)
                slots.append(Slot(sid, v.dtype, v.type.size))
                holder.append(-1)
        slot_of[v] = sid
        holder[sid] = k
        heapq.heappush(heap, (live.end[v], k, sid))
    for v in live.owners:
        if v in live.escapes:
            slot_of[v] = len(slots)
            slots.append(Slot(len(slots), v.dtype, v.type.size, fresh=True))
    views = {v: r for v, r in live.root.items() if r is not v}
    # an operand handed over to its node's output is counted once there
    ends = {v: live.end[v] - (v in taken) for v in temps}
    per_node = live_bytes(live, temps, ends)
    return Buffers(
        slots=tuple(slots),
        slot_of=slot_of,
        views=views,
        inplace=handover,
        peak_bytes=sum(s.nbytes for s in slots if not s.fresh),
        live_peak_bytes=max(per_node, default=0),
        output_bytes=sum(s.nbytes for s in slots if s.fresh),
        liveness=live,
    )


def _donor(
    live: Liveness, v: Value, slot_of: dict, handover: dict, taken: set[Value]
) -> int | None:
    """The slot of an operand `v`'s node may overwrite, recording the handover (in
    `handover`, and its operand in `taken`)."""
    i = live.start[v]
    node = live.nodes[i]
    if not _same_index(node):
        return None
    for u in node.inputs:
        if (
            u in slot_of
            and live.end[u] == i
            and u not in taken
            and u.shape == v.shape
            and _class(u) == _class(v)
        ):
            handover[v] = u
            taken.add(u)
            return slot_of[u]
    return None
