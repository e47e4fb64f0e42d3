"""An exact, process-independent digest of a graph: the key of the compiled-stages cache.

`Graph.fingerprint` hashes the printed graph, which abbreviates large constants and prints
unknown attribute objects with `str`: good for golden dumps, not for a cache key, where two
graphs with the same key must compute the same thing. `exact_digest` hashes every constant's
bytes, every float exactly (`float.hex`), loop bodies recursively, tags and source locations
(a cached stage carries them into error messages), and values by position. An attribute it
cannot encode exactly (a Python function in a custom rule, an arbitrary object) makes the
graph uncacheable: `exact_digest` returns None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from compiler.ir.graph import Const, Graph, Value


class _Opaque(Exception):
    """An attribute with no exact, stable encoding."""


def _array(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    if a.dtype.hasobject:
        raise _Opaque
    return f"A{a.dtype.str}{a.shape}:{hashlib.blake2b(a.tobytes(), digest_size=20).hexdigest()}"


def _enc(x: Any) -> str:
    # exact and stable across processes: no id(), no hash(), no lossy str()
    if x is None or isinstance(x, (bool, int, str)):
        return f"{type(x).__name__}:{x!r}"
    if isinstance(x, float):
        return f"f:{x.hex()}"
    if isinstance(x, np.generic):
        if x.dtype.hasobject:
            raise _Opaque
        return f"g{x.dtype.str}:{x.tobytes().hex()}"
    if isinstance(x, np.dtype):
        return f"d:{x.str}"
    if isinstance(x, Const):
        return _array(x.array)
    if isinstance(x, np.ndarray):
        return _array(x)
    if isinstance(x, Graph):
        return f"G:{_graph(x)}"
    if isinstance(x, (tuple, list)):
        return f"{type(x).__name__[0]}(" + ",".join(_enc(e) for e in x) + ")"
    if isinstance(x, slice):
        return f"s({_enc(x.start)},{_enc(x.stop)},{_enc(x.step)})"
    if isinstance(x, Mapping):
        items = sorted((str(k), _enc(v)) for k, v in x.items())
        return "m{" + ",".join(f"{k}={v}" for k, v in items) + "}"
    raise _Opaque


def _graph(g: Graph) -> str:
    h = hashlib.sha256()
    names: dict[Value, str] = {}
    types: dict[Any, str] = {}  # a warm process digests every traced graph: keep it cheap

    def name(v: Value) -> str:
        s = names.get(v)
        if s is None:
            s = names[v] = str(len(names))
        return s

    def ty(v: Value) -> str:
        t = v.type
        s = types.get(t)
        if s is None:
            s = types[t] = f"{v.dtype.str}{v.shape}"
        return s

    h.update(("in " + " ".join(f"{name(v)}:{ty(v)}" for v in g.inputs) + "\n").encode())
    lines = []
    for n in g.nodes:
        ins = ",".join([name(v) for v in n.inputs])
        outs = ",".join([f"{name(v)}:{ty(v)}" for v in n.outputs])
        attrs = _enc(dict(n.attrs)) if n.attrs else "m{}"
        tags = _enc(dict(n.tags)) if n.tags else "m{}"
        lines.append(f"{outs}={n.op}({ins}){attrs}{tags}@{n.loc!r}\n")
    h.update("".join(lines).encode())
    h.update(("out " + ",".join(name(v) for v in g.outputs)).encode())
    return h.hexdigest()


def exact_digest(graph: Graph) -> str | None:
    """The sha256 of everything `graph` computes with (see module doc), or None when an
    attribute has no exact encoding."""
    try:
        return _graph(graph)
    except _Opaque:
        return None


__all__ = ["exact_digest"]
