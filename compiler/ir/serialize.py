"""JSON round trip for graphs (constants as base64, fused bodies nested)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from compiler.ir.graph import Const, Graph, Node, Value
from compiler.ir.types import TensorType


def _enc(v: Any) -> Any:
    if isinstance(v, Const):
        a = np.ascontiguousarray(v.array)
        return {
            "$const": base64.b64encode(a.tobytes()).decode(),
            "dtype": a.dtype.str,
            "shape": list(v.array.shape),  # ascontiguousarray makes 0-d arrays 1-d
        }
    if isinstance(v, Graph):
        return {"$graph": graph_to_json(v)}
    if isinstance(v, np.dtype):
        return {"$dtype": v.str}
    if isinstance(v, tuple):
        return {"$tuple": [_enc(x) for x in v]}
    if isinstance(v, slice):
        return {"$slice": [v.start, v.stop, v.step]}
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    raise TypeError(f"cannot serialise attribute {v!r}")


def _dec(v: Any) -> Any:
    if isinstance(v, dict):
        if "$const" in v:
            raw = base64.b64decode(v["$const"])
            arr = np.frombuffer(raw, dtype=np.dtype(v["dtype"])).reshape(v["shape"])
            return Const(arr)
        if "$graph" in v:
            return graph_from_json(v["$graph"])
        if "$dtype" in v:
            return np.dtype(v["$dtype"])
        if "$tuple" in v:
            return tuple(_dec(x) for x in v["$tuple"])
        if "$slice" in v:
            return slice(*v["$slice"])
    return v


def _type(v: Value) -> list:
    return [list(v.shape), v.dtype.str]


def graph_to_json(graph: Graph) -> dict:
    ids: dict[Value, int] = {}
    for v in graph.inputs:
        ids[v] = len(ids)
    nodes = []
    for n in graph.nodes:
        for v in n.outputs:
            ids[v] = len(ids)
        nodes.append(
            {
                "op": n.op,
                "inputs": [ids[v] for v in n.inputs],
                "attrs": {k: _enc(a) for k, a in n.attr_items()},
                "outputs": [_type(v) for v in n.outputs],
                "loc": n.loc,
                **({"tags": {k: _enc(a) for k, a in sorted(n.tags.items())}} if n.tags else {}),
            }
        )
    return {
        "inputs": [_type(v) for v in graph.inputs],
        "nodes": nodes,
        "outputs": [ids[v] for v in graph.outputs],
    }


def graph_from_json(data: dict) -> Graph:
    vals: list[Value] = [Value(TensorType(tuple(s), np.dtype(d))) for s, d in data["inputs"]]
    inputs = tuple(vals)
    nodes = []
    for nd in data["nodes"]:
        outs = tuple(Value(TensorType(tuple(s), np.dtype(d))) for s, d in nd["outputs"])
        nodes.append(
            Node(
                nd["op"],
                tuple(vals[i] for i in nd["inputs"]),
                {k: _dec(a) for k, a in nd["attrs"].items()},
                outs,
                nd.get("loc"),
                {k: _dec(a) for k, a in nd.get("tags", {}).items()},
            )
        )
        vals.extend(outs)
    return Graph(inputs, tuple(nodes), tuple(vals[i] for i in data["outputs"]))
