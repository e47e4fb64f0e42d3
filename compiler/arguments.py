"""The arguments and outputs a transformation accepts: which leaves are differentiated
(checked), the gradients' layout, and the scalar-output check, each with a clear error."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree

from compiler.trace import FLOAT, STATIC, Tracer


def arg_names(fun: Callable, n: int) -> list[str]:
    """The parameter names of `fun` for `n` positional arguments (`#i` past its signature)."""
    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"#{i}" for i in range(n)]


def describe(x: Any) -> str:
    """A few words on what a function returned, for error messages."""
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    if isinstance(x, Tracer):
        return f"an array {x.type}"
    return f"a {type(x).__name__}"


def checked_fun(fun: Callable, has_aux: bool, mode: str) -> Callable:
    """`fun`, checking that with has_aux it returns an (output, aux) pair."""

    def wrapped(*a: Any, **k: Any) -> Any:
        out = fun(*a, **k)
        if has_aux and not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                f"{mode}(has_aux=True) needs the function to return a pair "
                f"(output, aux); it returned {describe(out)}"
            )
        return out

    return wrapped


def wrt_leaves(
    fun: Callable, mode: str, argnums: Sequence[int], args: tuple, kinds: list[str]
) -> list[int]:
    """Leaf positions (among all leaves) of the differentiated arguments, checked."""
    names = arg_names(fun, len(args))
    for a in argnums:
        if not -len(args) <= a < len(args):
            raise ValueError(
                f"{mode}: argnums={a} is out of range for a function "
                f"called with {len(args)} positional arguments"
            )
    starts, pos = [], 0
    for a in args:
        starts.append(pos)
        pos += optree.tree_flatten(a, none_is_leaf=False)[1].num_leaves
    out = []
    for a in argnums:
        a %= len(args)
        sub, _ = optree.tree_flatten(args[a], none_is_leaf=False)
        for j, leaf in enumerate(sub):
            i = starts[a] + j
            kind = kinds[i]
            dt = getattr(leaf, "dtype", None)
            if (
                kind == STATIC
                or (dt is not None and np.dtype(dt).kind != "f")
                or (dt is not None and np.dtype(dt) == np.float16)
            ):
                what = f"dtype {np.dtype(dt)}" if dt is not None else f"type {type(leaf).__name__}"
                raise TypeError(
                    f"{mode}: argument {names[a]!r} (argnums={a}) has {what}; "
                    "gradients need float32/float64 arrays or Python floats"
                )
            out.append(i)
    return out


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
