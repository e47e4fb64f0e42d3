"""A small rule engine: local rewrites keyed by op, applied in one forward sweep.

A rule is `rule(node, rw) -> Value | None`. `node` is the node with its inputs already
rewritten (so a rule sees simplified operands), and `rw` is the `Rewriter` that builds the
new graph. A rule returns a Value of the node's exact type to replace the node's output, or
None to leave it. Its docstring states the formula (`x * 1 -> x`).

Invariant: replacement nodes are emitted through `rw.emit`, which runs the rules on them
too, so every node of the result is in normal form with respect to its inputs; with rules
that look only at operands (never at users), running the rewrite twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from compiler.ir.graph import SHAPE_RULES, Builder, Const, Graph, Node, Value
from compiler.ir.types import TensorType

Rule = Callable[[Node, "Rewriter"], "Value | None"]
RuleTable = Mapping[str, Sequence[Rule]]

# Nesting limit for rules that fire on the nodes other rules emit; a chain this deep means
# two rules undo each other, and stopping keeps the result correct (just less simplified).
_MAX_DEPTH = 32


def add_rule(table: dict[str, list[Rule]], *ops: str) -> Callable[[Rule], Rule]:
    """Decorator: append a rule to `table` under each of `ops`."""

    def deco(fn: Rule) -> Rule:
        for op in ops:
            table.setdefault(op, []).append(fn)
        return fn

    return deco


def merge_tables(*tables: RuleTable) -> dict[str, list[Rule]]:
    """One table with the rules of all `tables`, in order."""
    out: dict[str, list[Rule]] = {}
    for t in tables:
        for op, rules in t.items():
            out.setdefault(op, []).extend(rules)
    return out


def copy_node(b: Builder, node: Node, inputs: Sequence[Value]) -> tuple[Value, ...]:
    """Append `node` with new `inputs` to `b`; fused (and other multi-output) nodes keep
    their output types, other ops are re-typed by their shape rule."""
    if node.op in SHAPE_RULES and len(node.outputs) == 1:
        return (b.add(node.op, inputs, node.attrs, loc=node.loc, tags=node.tags),)
    return b.copy(node, inputs)


class Rewriter:
    """Builds the rewritten graph; rules call its helpers to inspect operands and emit."""

    def __init__(self, rules: RuleTable) -> None:
        self.rules = rules
        self.b = Builder()
        self._producer: dict[Value, Node] = {}
        self._uniform: dict[Value, np.ndarray | None] = {}
        self._depth = 0
        self.fired = 0  # rules that returned a replacement

    # -- the sweep --------------------------------------------------------------------------
    def run(self, graph: Graph) -> Graph:
        """Rewrite `graph`; return it unchanged (same object) when no rule fires."""
        env: dict[Value, Value] = {v: self.b.add_input(v.type) for v in graph.inputs}
        for n in graph.nodes:
            inputs = tuple(env[v] for v in n.inputs)
            if n.op in ("fused", "rowfused") or len(n.outputs) != 1:
                outs = copy_node(self.b, n, inputs)  # opaque: fused bodies are left alone
                self._note(outs)
                env.update(zip(n.outputs, outs))
                continue
            self.b.loc, self.b.tags = n.loc, n.tags
            env[n.out] = self._rewrite(Node(n.op, inputs, n.attrs, n.outputs, n.loc, n.tags))
        self.b.loc, self.b.tags = None, {}
        if not self.fired:
            return graph
        return self.b.build([env[v] for v in graph.outputs], meta=graph.meta)

    def _rewrite(self, node: Node) -> Value:
        if self._depth < _MAX_DEPTH:
            self._depth += 1
            try:
                for rule in self.rules.get(node.op, ()):
                    new = rule(node, self)
                    if new is not None:
                        if new.type != node.out.type:
                            raise AssertionError(
                                f"rule {rule.__name__} replaced {node.op} -> {node.out.type} "
                                f"with a value typed {new.type}"
                            )
                        self.fired += 1
                        return new
            finally:
                self._depth -= 1
        (out,) = copy_node(self.b, node, node.inputs)
        self._note((out,))
        return out

    def _note(self, outs: Sequence[Value]) -> None:
        node = self.b.nodes[-1]
        for v in outs:
            self._producer[v] = node

    # -- helpers for rules --------------------------------------------------------------------
    def emit(self, op: str, inputs: Sequence[Value], **attrs: Any) -> Value:
        """Emit `op(*inputs, **attrs)`, simplified by the same rules."""
        t = SHAPE_RULES[op]([v.type for v in inputs], **attrs)
        return self._rewrite(Node(op, tuple(inputs), attrs, (Value(t),), self.b.loc, self.b.tags))

    def producer(self, v: Value) -> Node | None:
        """The node that defines `v` in the new graph (None for a graph input)."""
        return self._producer.get(v)

    def op_of(self, v: Value) -> str | None:
        """The op that defines `v` (None for a graph input)."""
        p = self._producer.get(v)
        return None if p is None else p.op

    def uniform(self, v: Value) -> np.ndarray | None:
        """The one value every element of `v` holds (a 0-d array of v's dtype), if `v` is a
        `full` or a uniform `const`; else None. NaN fills never count as uniform."""
        if v in self._uniform:
            return self._uniform[v]
        p = self._producer.get(v)
        out = None
        if p is not None and p.op == "full":
            out = np.asarray(p.attrs["fill"], dtype=v.dtype)
        elif p is not None and p.op == "const":
            a = p.attrs["value"].array
            if a.size and np.all(a == a.flat[0]):
                out = np.asarray(a.flat[0], dtype=v.dtype)
        if out is not None and out != out:  # NaN: x * NaN is not NaN-for-all-x to fold safely
            out = None
        self._uniform[v] = out
        return out

    def is_fill(self, v: Value, value: float) -> bool:
        """True when every element of `v` is known to equal `value`."""
        u = self.uniform(v)
        return u is not None and bool(u == value)

    def is_zero_fill(self, v: Value) -> bool:
        """True when `v` is a `full` node of zeros: the adjoint's symbolic zeros (and
        `np.zeros` arrays). A user's literal `0.0` is a `const`, so `0.0 * x` is not folded
        and stays NaN for infinite x, as in NumPy."""
        return self.op_of(v) == "full" and self.is_fill(v, 0)

    def constant(self, array: Any, dtype: Any = None) -> Value:
        """A constant node: `full` for a uniform array of more than one element, else
        `const` (the tracer's convention, so folded and traced constants print alike)."""
        a = np.asarray(array, dtype=dtype)
        if a.size > 1 and np.all(a == a.flat[0]):
            return self.full(TensorType(a.shape, a.dtype), a.flat[0])
        return self.emit("const", [], value=Const(a))

    def full(self, t: TensorType, fill: Any) -> Value:
        """A value of type `t` with every element `fill` (a const when it has one element)."""
        fill = np.asarray(fill, dtype=t.dtype)
        if t.size <= 1:
            return self.emit("const", [], value=Const(np.full(t.shape, fill, dtype=t.dtype)))
        return self.emit("full", [], shape=t.shape, dtype=t.dtype, fill=fill.item())

    def fit(self, v: Value, t: TensorType) -> Value:
        """`v` broadcast to `t`'s shape (as the op it replaces would have); dtypes must agree."""
        if v.shape == t.shape:
            return v
        return self.emit("broadcast_to", [v], shape=t.shape)


def rewrite(graph: Graph, rules: RuleTable) -> Graph:
    """Apply `rules` in one forward sweep; the same object back when none fires."""
    return Rewriter(rules).run(graph)
