"""Stable text form of a graph: one line per node, values numbered by position."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir.graph import Graph, Value
from compiler.ir.types import dtype_short


def _fmt_attr(v: Any) -> str:
    if isinstance(v, np.dtype):
        return dtype_short(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ",".join(_fmt_attr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, slice):
        return f"{v.start}:{v.stop}:{v.step}"
    return repr(v) if isinstance(v, str) else str(v)


def format_graph(
    graph: Graph, *, locs: bool = False, indent: str = "", names: dict[Value, str] | None = None
) -> str:
    """Return the dump; `%N` names follow input order then node order, so it is stable."""
    names = dict(names or {})
    lines: list[str] = []

    def name(v: Value) -> str:
        if v not in names:
            names[v] = f"%{len(names)}"
        return names[v]

    params = ", ".join(f"{name(v)}:{v.type}" for v in graph.inputs)
    lines.extend(f"{indent}# {note}" for note in graph.meta.get("notes", ()))
    lines.append(f"{indent}graph({params}) {{")
    for n in graph.nodes:
        outs = ", ".join(f"{name(v)}:{v.type}" for v in n.outputs)
        args = ", ".join(name(v) for v in n.inputs)
        attrs = {k: a for k, a in n.attr_items() if not isinstance(a, Graph)}
        text = f"{indent}  {outs} = {n.op}"
        if args:
            text += f" {args}"
        if attrs:
            text += " {" + ", ".join(f"{k}={_fmt_attr(a)}" for k, a in attrs.items()) + "}"
        if n.tags:
            text += " [" + ", ".join(f"{k}={_fmt_attr(a)}" for k, a in sorted(n.tags.items())) + "]"
        if locs and n.loc:
            text += f"  # {n.loc}"
        lines.append(text)
        for k, sub in n.attr_items():
            if isinstance(sub, Graph):
                lines.append(f"{indent}    {k}:")
                lines.append(format_graph(sub, locs=locs, indent=indent + "    "))
    lines.append(f"{indent}  return " + ", ".join(name(v) for v in graph.outputs))
    lines.append(f"{indent}}}")
    return "\n".join(lines)
