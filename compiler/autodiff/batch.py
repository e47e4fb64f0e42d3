"""A batched axis for linear sweeps: `graph` run on B stacked inputs at once.

`batch_graph(graph, batched, size)` returns a graph whose inputs at positions `batched` carry
a leading axis of length `size` (the others are shared by every batch element) and whose
outputs all carry it. Jacobians use it to run every tangent (or cotangent) sweep as one pass
over a batch axis instead of one sweep per element.

Each op is rewritten by a rule below: elementwise ops align a batched operand's rank so that
broadcasting keeps the batch axis in front; axis attributes shift by one; shapes gain the
batch axis; `matmul` broadcasts an unbatched operand over the batch. Every rewritten node goes
through the op's shape rule, so a rule that does not fit raises. An op without a rule (a new
op, a `custom` or `fused` node) raises `NotBatchable`, and the caller falls back to one sweep
per element: the same numbers, a bigger graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from compiler.ir.graph import Builder, Graph, Node, ShapeError, Value
from compiler.ir.types import TensorType
from compiler.primitives import OPS, Kind


class NotBatchable(Exception):
    """The graph has an op (or an operand pattern) without a batching rule."""


def batch_graph(graph: Graph, batched: Sequence[int], size: int) -> Graph:
    """`graph` with a leading axis of length `size` on inputs `batched` and on every output."""
    b = Builder()
    env: dict[Value, Value] = {}
    lead: set[Value] = set()  # new values that carry the batch axis
    for i, v in enumerate(graph.inputs):
        if i in batched:
            env[v] = b.add_input(TensorType((size, *v.shape), v.dtype))
            lead.add(env[v])
        else:
            env[v] = b.add_input(v.type)
    for n in graph.nodes:
        ins = [env[v] for v in n.inputs]
        if not any(x in lead for x in ins):
            outs = b.add_node(n.op, ins, n.attrs, [v.type for v in n.outputs], loc=n.loc)
            env.update(zip(n.outputs, outs))
            continue
        rule = _rule(n)
        try:
            out = rule(_Ctx(b, lead, size, n), ins, dict(n.attrs))
        except ShapeError as exc:
            raise NotBatchable(f"{n.op}: {exc}") from None
        if out.type.shape != (size, *n.out.shape):
            raise NotBatchable(f"{n.op}: batched to {out.type}, expected a leading {size}")
        env[n.out] = out
        lead.add(out)
    outs = []
    for v in graph.outputs:
        x = env[v]
        if x not in lead:  # a sweep output that does not depend on the seed
            x = b.add("broadcast_to", [x], {"shape": (size, *v.shape)})
        outs.append(x)
    return b.build(outs)


class _Ctx:
    def __init__(self, b: Builder, lead: set[Value], size: int, n: Node) -> None:
        self.b, self.lead, self.size, self.n = b, lead, size, n

    def add(self, op: str, ins: Sequence[Value], attrs: dict) -> Value:
        return self.b.add(op, ins, attrs, loc=self.n.loc)

    def align(self, x: Value, rank: int) -> Value:
        """A batched value reshaped to rank+1 (ones after the batch axis), so that NumPy's
        right-aligned broadcasting against unbatched operands of rank <= rank keeps it first."""
        extra = rank - (len(x.shape) - 1)
        if x not in self.lead or extra <= 0:
            return x
        shape = (self.size,) + (1,) * extra + x.shape[1:]
        return self.add("reshape", [x], {"shape": shape})

    def full(self, x: Value) -> Value:
        """A value with the batch axis: batched as is, unbatched broadcast over it."""
        if x in self.lead:
            return x
        return self.add("broadcast_to", [x], {"shape": (self.size, *x.shape)})


def _rule(n: Node) -> Callable[[_Ctx, list[Value], dict], Value]:
    rule = _RULES.get(n.op)
    if rule is None:
        if n.op in OPS and OPS[n.op].kind is Kind.ELEMENTWISE:
            return _elementwise
        raise NotBatchable(f"no batching rule for {n.op}")
    return rule


def _elementwise(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    rank = len(c.n.out.shape)
    return c.add(c.n.op, [c.align(x, rank) for x in ins], attrs)


def _shift(axes: Any) -> Any:
    return tuple(a + 1 for a in axes)


def _reduce(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    attrs["axis"] = _shift(attrs["axis"])
    return c.add(c.n.op, ins, attrs)


def _reshape(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    attrs["shape"] = (c.size, *attrs["shape"])
    return c.add("reshape", ins, attrs)


def _broadcast_to(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    attrs["shape"] = (c.size, *attrs["shape"])
    return c.add("broadcast_to", [c.align(ins[0], len(c.n.out.shape))], attrs)


def _transpose(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    attrs["axes"] = (0, *_shift(attrs["axes"]))
    return c.add("transpose", ins, attrs)


def _sliced(c: _Ctx, ins: list[Value], attrs: dict) -> Value:  # slice, set_slice
    attrs["index"] = ((0, 1, c.size), *attrs["index"])
    return c.add(c.n.op, [c.full(x) for x in ins], attrs)


def _take(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    if ins[1] in c.lead:
        raise NotBatchable("take: batched indices")
    attrs["axis"] += 1
    return c.add("take", ins, attrs)


def _scatter(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    x, idx, v = ins
    if idx in c.lead:
        raise NotBatchable(f"{c.n.op}: batched indices")
    attrs["axis"] += 1
    return c.add(c.n.op, [c.full(x), idx, c.full(v)], attrs)


def _concatenate(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    attrs["axis"] += 1
    return c.add("concatenate", [c.full(x) for x in ins], attrs)


def _matmul(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    a, b = ins
    size = c.size
    if a in c.lead and b not in c.lead and len(b.shape) == 2:
        # (B, m, k) @ (k, n): one product with the batch folded into the rows
        rows = c.add("reshape", [a], {"shape": (size * a.shape[1], a.shape[2])})
        out = c.add("matmul", [rows, b], attrs)
        return c.add("reshape", [out], {"shape": (size, a.shape[1], b.shape[1])})
    if b in c.lead and a not in c.lead and len(a.shape) == 2:
        # (m, k) @ (B, k, n) = ((B, n, k) @ (k, m))^T per batch element: again one product
        bt = c.add("transpose", [b], {"axes": (0, 2, 1)})
        rows = c.add("reshape", [bt], {"shape": (size * b.shape[2], b.shape[1])})
        at = c.add("transpose", [a], {"axes": (1, 0)})
        out = c.add("matmul", [rows, at], attrs)
        out = c.add("reshape", [out], {"shape": (size, b.shape[2], a.shape[0])})
        return c.add("transpose", [out], {"axes": (0, 2, 1)})
    # otherwise the primitive needs equal batch dims: broadcast the unbatched operand
    return c.add("matmul", [c.full(x) for x in ins], attrs)


_RULES: dict[str, Callable[[_Ctx, list[Value], dict], Value]] = {
    "sum": _reduce,
    "max": _reduce,
    "min": _reduce,
    "reshape": _reshape,
    "broadcast_to": _broadcast_to,
    "transpose": _transpose,
    "slice": _sliced,
    "set_slice": _sliced,
    "take": _take,
    "scatter": _scatter,
    "scatter_add": _scatter,
    "concatenate": _concatenate,
    "matmul": _matmul,
}
