"""User-defined derivative rules as `custom` nodes, and their expansion before the passes.

A call of a `custom_vjp` / `custom_jvp` function (or `stop_gradient`) inside a trace becomes
one `custom` node per output leaf. The node's `body` attribute is the traced function (its
inputs: the call's array arguments; one output), and its `rule` attribute is a `CustomRule`
whose `vjp` and `jvp` methods replace the op rules of `OPS`. So the autodiff drivers apply
the user's rule at every level of nesting (`grad(grad(f))` uses it twice), and everything
downstream of differentiation sees only primitives: `expand_custom` inlines each body before
the pass pipeline, so passes, planning and codegen never meet a `custom` node.

One node per output leaf keeps every node single-output (as the drivers and passes assume);
a rule for a multi-output function is called once per output with the other outputs'
cotangents zero, which gives the same sum because a VJP is linear in its cotangent.
"""

from __future__ import annotations

from typing import Any

from compiler.ir.graph import SHAPE_RULES, Builder, Graph, Node, Value
from compiler.ir.types import TensorType
from compiler.primitives import OPS

CUSTOM = "custom"


class CustomRule:
    """The derivative rules of one output of a custom function (subclassed by the API)."""

    differentiable = True

    def vjp(self, ct: Any, *xs: Any, out: Any, **attrs: Any) -> tuple:
        """One cotangent (or None) per node input, for output cotangent `ct`."""
        raise NotImplementedError

    def jvp(self, tangents: list, *xs: Any, out: Any, **attrs: Any) -> Any:
        """The output tangent for input tangents (None where an input carries none)."""
        raise NotImplementedError


def _custom_shape(types: list[TensorType], *, body: Graph, rule: CustomRule) -> TensorType:
    """The body's output type (its inputs are the node's inputs, checked by `verify`)."""
    if [v.type for v in body.inputs] != list(types):
        raise TypeError(f"custom node {rule}: inputs do not match its body's inputs")
    return body.outputs[0].type


SHAPE_RULES[CUSTOM] = _custom_shape


def rule_of(n: Node) -> Any:
    """The object holding `n`'s vjp/jvp rules and `differentiable` flag."""
    return n.attrs["rule"] if n.op == CUSTOM else OPS[n.op]


def has_custom(graph: Graph) -> bool:
    """Whether a `custom` node is in `graph` or in a sub-graph a node holds (a loop body)."""
    return any(
        n.op == CUSTOM or any(isinstance(a, Graph) and has_custom(a) for a in n.attrs.values())
        for n in graph.nodes
    )


def expand_custom(graph: Graph) -> Graph:
    """`graph` with every `custom` node replaced by its body (recursively); the same object
    when there is none, so graphs without custom rules cost one scan."""
    if not has_custom(graph):
        return graph
    b = Builder()
    env: dict[Value, Value] = {v: b.add_input(v.type) for v in graph.inputs}
    _expand_into(b, graph, env)
    return b.build([env[v] for v in graph.outputs], meta=graph.meta)


def _expand_into(b: Builder, graph: Graph, env: dict[Value, Value]) -> None:
    for n in graph.nodes:
        if n.op == CUSTOM:
            body = n.attrs["body"]
            inner = dict(zip(body.inputs, [env[v] for v in n.inputs], strict=True))
            _expand_into(b, body, inner)
            env[n.out] = inner[body.outputs[0]]
            continue
        attrs = {k: expand_custom(a) if isinstance(a, Graph) else a for k, a in n.attrs.items()}
        ins = [env[v] for v in n.inputs]
        outs = b.add_node(n.op, ins, attrs, [v.type for v in n.outputs], n.loc, n.tags)
        env.update(zip(n.outputs, outs))
