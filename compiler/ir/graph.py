"""Value, Node, Graph and Builder: the frozen SSA data model.

Only `Builder` creates nodes, and each `add` runs the op's shape rule, so every
Value is typed when it is made. Passes build new graphs; they never edit one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.ir.types import TensorType

# Filled by compiler.primitives.registry.register; kept here so that the IR
# does not import the layer above it.
SHAPE_RULES: dict[str, Callable[..., TensorType]] = {}
# Ops with several outputs (loops) also give the types of all of them, for `verify`.
OUT_TYPES_RULES: dict[str, Callable[..., list[TensorType]]] = {}


class ShapeError(ValueError):
    """An op was applied to operands whose shapes or dtypes it does not accept."""


class Value:
    """An SSA value: one result of one node (or a graph input). Hashed by identity."""

    __slots__ = ("type",)

    def __init__(self, type: TensorType) -> None:
        self.type = type

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> np.dtype:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    def __repr__(self) -> str:
        return f"Value({self.type}, id={id(self) & 0xFFFF:04x})"


class Const:
    """A constant array held in a node attribute; hashed and compared by content."""

    __slots__ = ("array", "_key")

    def __init__(self, array: Any) -> None:
        arr = np.array(array)  # always a private copy: the graph owns it
        arr.setflags(write=False)
        self.array = arr
        digest = hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]
        self._key = (arr.dtype.str, arr.shape, digest)

    @property
    def digest(self) -> str:
        return self._key[2]

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Const) and self._key == other._key

    def __repr__(self) -> str:
        a = self.array
        if a.size <= 4:
            return repr(a.tolist())
        return f"<{a.dtype.name}{list(a.shape)} #{self.digest[:8]}>"


@dataclass(frozen=True, eq=False)
class Node:
    """One op application: `outputs = op(*inputs, **attrs)`. `loc` is the user's source line.

    `tags` record what is known about the node that is not an argument of the op (so never
    passed to its rules): `checkpoint=k` (it belongs to user checkpoint segment k, see
    `plan.segments`), `route="library"` (the `route` pass). Copies of a node keep them.
    """

    op: str
    inputs: tuple[Value, ...]
    attrs: Mapping[str, Any]
    outputs: tuple[Value, ...]
    loc: str | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def out(self) -> Value:
        """The single output (most ops have exactly one)."""
        return self.outputs[0]

    def attr_items(self) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted(self.attrs.items()))


@dataclass(frozen=True, eq=False)
class Graph:
    """A frozen graph: typed inputs, nodes in SSA order, outputs.

    `meta` carries what is not part of the computation (pytree structures, argument
    names); it is excluded from the fingerprint.
    """

    inputs: tuple[Value, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[Value, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    # -- queries -------------------------------------------------------------------------
    def producers(self) -> dict[Value, Node]:
        return {v: n for n in self.nodes for v in n.outputs}

    def users(self) -> dict[Value, list[Node]]:
        out: dict[Value, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v, []).append(n)
        return out

    def num_values(self) -> int:
        return len(self.inputs) + sum(len(n.outputs) for n in self.nodes)

    def live_values(self) -> set[Value]:
        """Values from which some graph output is reachable (inputs included)."""
        live = set(self.outputs)
        for n in reversed(self.nodes):
            if any(v in live for v in n.outputs):
                live.update(n.inputs)
        return live

    def keep_nodes(self, pred: Callable[[Node], bool]) -> Graph:
        return Graph(self.inputs, tuple(n for n in self.nodes if pred(n)), self.outputs, self.meta)

    def with_meta(self, **meta: Any) -> Graph:
        return Graph(self.inputs, self.nodes, self.outputs, {**self.meta, **meta})

    def fingerprint(self) -> str:
        """A stable hash of the printed graph (value numbering is positional)."""
        from compiler.ir.printer import format_graph

        return hashlib.sha256(format_graph(self).encode()).hexdigest()[:20]

    def __str__(self) -> str:
        from compiler.ir.printer import format_graph

        return format_graph(self)

    # -- serialisation --------------------------------------------------------------------
    def to_json(self) -> dict:
        from compiler.ir.serialize import graph_to_json

        return graph_to_json(self)

    @staticmethod
    def from_json(data: dict) -> Graph:
        from compiler.ir.serialize import graph_from_json

        return graph_from_json(data)

    def to_networkx(self):
        from compiler.ir.nx import to_networkx

        return to_networkx(self)


class Builder:
    """Appends typed nodes; `build` freezes them into a Graph."""

    def __init__(self) -> None:
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.loc: str | None = None  # source location attached to the next nodes
        self.tags: Mapping[str, Any] = {}  # tags attached to the next nodes (see Node)

    def add_input(self, type: TensorType) -> Value:
        v = Value(type)
        self.inputs.append(v)
        return v

    def add(
        self,
        op: str,
        inputs: Sequence[Value],
        attrs: Mapping[str, Any] | None = None,
        loc: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Value:
        """Append `op(*inputs, **attrs)`, typed by the op's shape rule; return its output."""
        attrs = dict(attrs or {})
        rule = SHAPE_RULES.get(op)
        if rule is None:
            raise KeyError(f"unknown op {op!r}")
        try:
            out_type = rule([v.type for v in inputs], **attrs)
        except ShapeError as exc:
            where = f" (at {loc or self.loc})" if (loc or self.loc) else ""
            raise ShapeError(f"{exc}{where}") from None
        return self.add_node(op, inputs, attrs, (out_type,), loc=loc, tags=tags)[0]

    def add_node(
        self,
        op: str,
        inputs: Sequence[Value],
        attrs: Mapping[str, Any],
        out_types: Iterable[TensorType],
        loc: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> tuple[Value, ...]:
        """Append a node whose output types are given (fused groups, multi-output ops)."""
        outs = tuple(Value(t) for t in out_types)
        tags = self.tags if tags is None else tags
        node = Node(op, tuple(inputs), dict(attrs), outs, loc or self.loc, dict(tags))
        self.nodes.append(node)
        return outs

    def copy(self, n: Node, inputs: Sequence[Value]) -> tuple[Value, ...]:
        """Append a copy of node `n` (op, attrs, types, loc, tags) reading `inputs`."""
        return self.add_node(n.op, inputs, n.attrs, [v.type for v in n.outputs], n.loc, n.tags)

    def const(self, array: Any, dtype: Any = None) -> Value:
        arr = np.asarray(array, dtype=dtype)
        return self.add("const", [], {"value": Const(arr)})

    def build(self, outputs: Sequence[Value], meta: Mapping[str, Any] | None = None) -> Graph:
        return Graph(tuple(self.inputs), tuple(self.nodes), tuple(outputs), dict(meta or {}))


def copy_into(b: Builder, graph: Graph, args: Sequence[Value]) -> list[Value]:
    """Replay `graph`'s nodes into builder `b` with inputs bound to `args`; return its outputs."""
    env: dict[Value, Value] = dict(zip(graph.inputs, args, strict=True))
    for n in graph.nodes:
        env.update(zip(n.outputs, b.copy(n, [env[v] for v in n.inputs])))
    return [env[v] for v in graph.outputs]
