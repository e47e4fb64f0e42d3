"""`GRADC_DEBUG_NANS=1`: name the first node that turned NaN-free inputs into a NaN.

Compiled stages run whole, so a NaN in a gradient says nothing about where it came from. When
the variable is set (read once, at import; tests flip `ENABLED`), every call whose outputs
hold a NaN that its inputs did not is replayed node by node on the reference interpreter, over
the graph that still carries each node's user source line (the traced graph, or the joint
graph of a gradient, whose adjoint nodes carry the line of the op they differentiate), and a
`FloatingPointError` names the first node whose output has a NaN while its inputs have none.
Off, it costs one attribute read per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.interpret import run_node
from compiler.ir.graph import Graph, Node
from runtime.env import switch

ENV_VAR = "GRADC_DEBUG_NANS"
ENABLED = switch(ENV_VAR, False)


def has_nan(values: Sequence[Any]) -> bool:
    """Whether any float array or scalar among `values` holds a NaN."""
    for x in values:
        a = np.asarray(x)
        if a.dtype.kind == "f" and a.size and np.isnan(a).any():
            return True
    return False


def check(
    graph: Graph,
    inputs: Sequence[Any],
    outputs: Sequence[Any],
    what: str,
    n_forward: int | None = None,
) -> None:
    """Raise FloatingPointError naming the node that made a NaN in `outputs` (see module doc).

    `graph` takes `inputs` and computes `outputs` with user source lines on its nodes; `what`
    names the call for the message ("value_and_grad(loss)"); in a joint graph the first
    `n_forward` nodes are the forward pass.
    """
    if not has_nan(outputs) or has_nan(inputs):
        return
    found = first_nan_node(graph, inputs)
    if found is None:
        raise FloatingPointError(
            f"gradc {ENV_VAR}: {what} returned NaN from NaN-free inputs, but the reference "
            "interpreter computes no NaN on the same inputs; this is a gradc bug (compare "
            "with backend='interpret' and please report it)"
        )
    pos, node, args, outs = found
    part = ""
    if n_forward is not None:
        part = " (forward pass)" if pos < n_forward else " (backward pass: its gradient)"
    out = next(o for o in outs if np.asarray(o).dtype.kind == "f" and np.isnan(o).any())
    where = np.unravel_index(int(np.argmax(np.isnan(out))), np.shape(out))
    vals = ", ".join(_value_at(a, np.shape(out), where) for a in args)
    at = f" at index {tuple(int(i) for i in where)}" if np.ndim(out) else ""
    raise FloatingPointError(
        f"gradc {ENV_VAR}: {what} produced NaN; the first NaN comes from {node.op} at "
        f"{node.loc or 'an unknown location'}{part}: {node.op}({vals}) = nan{at}, "
        f"from inputs {', '.join(str(v.type) for v in node.inputs) or '(none)'} without NaN"
    )


def _value_at(a: Any, shape: tuple[int, ...], where: tuple[int, ...]) -> str:
    try:
        return repr(np.broadcast_to(a, shape)[where].item())
    except ValueError:  # not broadcast elementwise (a reduction or matmul operand)
        return str(np.asarray(a).dtype) + str(list(np.shape(a)))


def first_nan_node(graph: Graph, inputs: Sequence[Any]) -> tuple[int, Node, list, list] | None:
    """(position, node, its input arrays, its outputs) of the first node whose outputs have a
    NaN and whose inputs have none; None if the interpreter computes no such node."""
    env = {}
    for v, a in zip(graph.inputs, inputs):
        env[v] = np.asarray(a).astype(v.dtype, copy=False)
    for pos, n in enumerate(graph.nodes):
        args = [env[v] for v in n.inputs]
        outs = run_node(n, args)
        env.update(zip(n.outputs, outs))
        if has_nan(outs) and not has_nan(args):
            return pos, n, args, outs
    return None
