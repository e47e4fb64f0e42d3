"""`verify(graph)`: SSA order, single definition, and types that agree with shape rules."""

from __future__ import annotations

from compiler.ir.graph import OUT_TYPES_RULES, SHAPE_RULES, Graph, ShapeError, Value


class VerifyError(AssertionError):
    """The graph breaks an IR invariant."""


def verify(graph: Graph) -> Graph:
    """Check the invariants every pass must keep; return the graph so calls can chain."""
    defined: set[Value] = set()
    for v in graph.inputs:
        if v in defined:
            raise VerifyError(f"input {v} listed twice")
        defined.add(v)
    for i, n in enumerate(graph.nodes):
        for v in n.inputs:
            if v not in defined:
                raise VerifyError(f"node {i} ({n.op}) uses a value before it is defined")
        rule = SHAPE_RULES.get(n.op)
        if n.op in OUT_TYPES_RULES:  # loops, fusion groups: outputs typed by the body (checked)
            _verify_multi(i, n)
        elif rule is not None and len(n.outputs) == 1:
            try:
                expect = rule([v.type for v in n.inputs], **n.attrs)
            except ShapeError as exc:
                raise VerifyError(f"node {i} ({n.op}): {exc}") from None
            if expect != n.out.type:
                raise VerifyError(
                    f"node {i} ({n.op}): output typed {n.out.type}, shape rule says {expect}"
                )
        elif rule is None:
            raise VerifyError(f"node {i}: unknown op {n.op!r}")
        for v in n.outputs:
            if v in defined:
                raise VerifyError(f"node {i} ({n.op}) redefines a value (not SSA)")
            defined.add(v)
    for v in graph.outputs:
        if v not in defined:
            raise VerifyError("a graph output is never defined")
    return graph


def _verify_multi(i: int, n) -> None:
    """A node whose op types all its outputs (loops, fused): check bodies, then the types."""
    for k, sub in n.attr_items():
        if isinstance(sub, Graph):
            try:
                verify(sub)
            except VerifyError as exc:
                raise VerifyError(f"node {i} ({n.op}), in its {k}: {exc}") from None
    try:
        expect = OUT_TYPES_RULES[n.op]([v.type for v in n.inputs], **n.attrs)
    except ShapeError as exc:
        raise VerifyError(f"node {i} ({n.op}): {exc}") from None
    got = [v.type for v in n.outputs]
    if list(expect) != got:
        raise VerifyError(
            f"node {i} ({n.op}): outputs typed {', '.join(map(str, got))}, "
            f"its rule says {', '.join(map(str, expect)) or 'nothing'}"
        )
