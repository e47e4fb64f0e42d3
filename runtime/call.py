"""The call fast path: flat compiled outputs -> the user's result, with no tracing, hashing
of array contents or needless allocation. Assemblers are built once per signature."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree


def _scalar(x: Any) -> Any:
    return x[()] if type(x) is np.ndarray and x.ndim == 0 else x


def _converter(kind: str) -> Callable[[Any], Any]:
    """How a gradient leaf is returned: Python float args get floats, NumPy scalars get NumPy
    scalars, arrays get arrays."""
    if kind == "float":
        return float
    if kind == "generic":
        return _scalar
    return lambda g: g


def grad_assembler(
    n_out: int,
    out_tree: Any,
    grad_trees: Sequence[Any],
    grad_kinds: Sequence[str],
    single: bool,
    with_value: bool,
    value_dtype: Any = None,
) -> Callable[[Sequence[Any]], Any]:
    """`outs -> (value, grads)` (or `grads`) for value_and_grad / grad without has_aux.

    `outs` are 0-d arrays or arrays, or (with `value_dtype` given) plain scalars from an
    all-scalar kernel, whose value is then returned as a NumPy scalar of that dtype."""
    box = np.dtype(value_dtype).type if value_dtype is not None else None
    convs = [_converter(k) for k in grad_kinds]
    all_float = all(k == "float" for k in grad_kinds)
    value_leaf = out_tree.is_leaf() and n_out == 1
    sizes = [t.num_leaves for t in grad_trees]
    leafy = [t.is_leaf() for t in grad_trees]
    # a flat tuple of leaves (`params = (w, b)`) is rebuilt without optree
    flat_tuple = [
        t.kind == optree.PyTreeKind.TUPLE and t.num_nodes == t.num_leaves + 1 for t in grad_trees
    ]
    trees = list(grad_trees)

    all_leaves = all(leafy)

    one_flat_tuple = single and flat_tuple[0]

    def grads_of(gl: list) -> Any:
        if all_leaves:
            return gl[0] if single else tuple(gl)
        if one_flat_tuple:
            return tuple(gl)
        out, pos = [], 0
        for t, n, leaf, ft in zip(trees, sizes, leafy, flat_tuple):
            if leaf:
                out.append(gl[pos])
            elif ft:
                out.append(tuple(gl[pos : pos + n]))
            else:
                out.append(optree.tree_unflatten(t, gl[pos : pos + n]))
            pos += n
        return out[0] if single else tuple(out)

    def assemble(outs: Sequence[Any]) -> Any:
        if all_float:
            gl = [float(g) for g in outs[n_out:]]
        else:
            gl = [c(g) for c, g in zip(convs, outs[n_out:])]
        grads = grads_of(gl)
        if not with_value:
            return grads
        if value_leaf:
            return (box(outs[0]) if box is not None else _scalar(outs[0]), grads)
        return (optree.tree_unflatten(out_tree, [_scalar(o) for o in outs[:n_out]]), grads)

    return assemble
