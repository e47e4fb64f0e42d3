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
    all_array = all(k not in ("float", "generic") for k in grad_kinds)
    value_leaf = out_tree.is_leaf() and n_out == 1
    # per differentiated argument, how its gradient is rebuilt from its leaves: a leaf, a
    # flat tuple (`params = (w, b)`) and a dict of leaves (`params = {"W": ..., "b": ...}`,
    # in the argument's key order) without optree; anything else with its treedef
    rebuild = [_rebuilder(t) for t in grad_trees]
    sizes = [t.num_leaves for t in grad_trees]
    one = single and len(rebuild) == 1

    def grads_of(gl: list) -> Any:
        if one:
            return rebuild[0](gl)
        out, pos = [], 0
        for rb, n in zip(rebuild, sizes):
            out.append(rb(gl[pos : pos + n]))
            pos += n
        return out[0] if single else tuple(out)

    def assemble(outs: Sequence[Any]) -> Any:
        if all_float:
            gl = [float(g) for g in outs[n_out:]]
        elif all_array:
            gl = outs[n_out:]
        else:
            gl = [c(g) for c, g in zip(convs, outs[n_out:])]
        grads = grads_of(gl)
        if not with_value:
            return grads
        if value_leaf:
            return (box(outs[0]) if box is not None else _scalar(outs[0]), grads)
        return (optree.tree_unflatten(out_tree, [_scalar(o) for o in outs[:n_out]]), grads)

    return assemble


def _rebuilder(tree: Any) -> Callable[[Sequence[Any]], Any]:
    """`leaves -> the pytree `tree` describes`, for one differentiated argument."""
    if tree.is_leaf():
        return lambda gl: gl[0]
    if tree.num_nodes == tree.num_leaves + 1:  # one container of leaves
        if tree.kind == optree.PyTreeKind.TUPLE:
            return tuple
        if tree.kind == optree.PyTreeKind.DICT:
            # unflatten restores the insertion order of the dict that made the treedef
            order = list(optree.tree_unflatten(tree, range(tree.num_leaves)).items())
            return lambda gl: {k: gl[i] for k, i in order}
    return lambda gl: optree.tree_unflatten(tree, gl)
