"""What a compile needs to know about a transformation's outputs and gradients: the
scalar-output check of grad/value_and_grad and the gradients' layout (the differentiated
arguments are checked by `compiler.autodiff.inline.differentiable_leaves`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optree

from compiler.trace import FLOAT


def check_scalar_output(mode: str, has_aux: bool, tr: Any) -> int:
    """Number of leaves of the primal output part; checks it is a float scalar."""
    g = tr.graph
    val_tree = tr.out_tree
    if has_aux:
        val_tree = optree.tree_structure(
            optree.tree_unflatten(tr.out_tree, list(range(tr.out_tree.num_leaves)))[0],
            none_is_leaf=False,
        )
    n_val = val_tree.num_leaves
    v = g.outputs[0] if g.outputs else None
    # a tuple/list/dict output (even of one scalar) is an error, as in JAX: without
    # has_aux only the first leaf would be differentiated and the rest dropped
    if not val_tree.is_leaf() or v is None or v.shape != () or not v.type.is_float:
        shape = (
            f"a pytree {val_tree} (use has_aux=True to return extra values)"
            if not val_tree.is_leaf()
            else (f"shape {v.shape} dtype {v.dtype}" if v is not None else "nothing")
        )
        raise TypeError(
            f"{mode} needs a function returning a float scalar; it "
            f"returned {shape}. For non-scalar outputs use "
            "compiler.vjp (or sum the output)"
        )
    return n_val


def grad_layout(
    argnums: Sequence[int], args: tuple, wrt: list[int], kinds: list[str], leaves: list
) -> tuple[list[Any], list[str]]:
    """The pytree of each differentiated argument, and how each gradient leaf is returned
    (`float` for Python floats, `generic` for NumPy scalars, `array`)."""
    trees = [optree.tree_structure(args[a % len(args)], none_is_leaf=False) for a in argnums]
    grad_kinds = []
    for i in wrt:
        x = leaves[i]
        grad_kinds.append(
            "float" if kinds[i] == FLOAT else ("generic" if isinstance(x, np.generic) else "array")
        )
    return trees, grad_kinds
