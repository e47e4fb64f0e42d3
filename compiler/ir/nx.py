"""The only bridge between the IR and networkx: analysis views and DOT export."""

from __future__ import annotations

import networkx as nx

from compiler.ir.graph import Graph


def to_networkx(graph: Graph) -> nx.DiGraph:
    """A DiGraph with one vertex per node (index) and per input (`in<k>`); edges follow data."""
    g = nx.DiGraph()
    where: dict = {}
    for k, v in enumerate(graph.inputs):
        g.add_node(f"in{k}", op="input", type=str(v.type))
        where[v] = f"in{k}"
    for i, n in enumerate(graph.nodes):
        g.add_node(i, op=n.op, type=",".join(str(v.type) for v in n.outputs))
        for v in n.inputs:
            g.add_edge(where[v], i)
        for v in n.outputs:
            where[v] = i
    for k, v in enumerate(graph.outputs):
        g.add_node(f"out{k}", op="output", type=str(v.type))
        g.add_edge(where[v], f"out{k}")
    return g


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text of the graph (renders with `dot -Tsvg`)."""
    lines = ["digraph gradc {", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    g = to_networkx(graph)
    for vid, data in g.nodes(data=True):
        label = f"{data['op']}\\n{data['type']}"
        shape = "ellipse" if data["op"] in ("input", "output") else "box"
        lines.append(f'  "{vid}" [label="{label}", shape={shape}];')
    for a, b in g.edges():
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines)
