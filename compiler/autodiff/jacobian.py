"""Jacobians inside a trace: every row (reverse) or column (forward) in one graph.

Forward mode differentiates the traced function once (`jvp_graph`), splits the result into
its primal part and its tangent part (`split_joint`), splices the primal part once and the
tangent part once per input element, each time with a one-hot tangent constant. Reverse mode
does the same with `vjp_graph` and one-hot cotangents, once per output element. So a
Jacobian is one compiled function: the primal work is done once, the linear sweeps read its
residuals, and the passes fold each one-hot constant into its sweep (the zero entries drop out
of elementwise products). Block (o, i) of the result has shape `out[o].shape + arg[i].shape`,
as in JAX.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.autodiff.inline import Sub, splice
from compiler.autodiff.jvp import jvp_graph
from compiler.autodiff.partition import split_joint
from compiler.autodiff.vjp import vjp_graph
from compiler.trace import Tracer, ops

FORWARD, REVERSE = "forward", "reverse"


def _size(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _one_hot(k: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    e = np.zeros(_size(shape), dtype=dtype)
    e[k] = 1
    return e.reshape(shape)


def _block(columns: list[Tracer], lead: tuple[int, ...], trail: tuple[int, ...], dtype, axis):
    """Stack per-element results into a `lead + trail` block (zeros when there are none)."""
    shape = lead + trail
    if not columns:
        return np.zeros(shape, dtype=dtype)
    return ops.reshape(ops.stack(columns, axis=axis), shape)


def choose_mode(sub: Sub, wrt: Sequence[int]) -> tuple[str, int, int]:
    """(mode, inputs, outputs): forward when the differentiated inputs have no more elements
    than the float outputs (one sweep per input element vs one per output element)."""
    g = sub.graph
    n_in = sum(_size(g.inputs[p].shape) for p in wrt)
    n_out = sum(_size(v.shape) for v in g.outputs[: sub.n_primal] if v.type.is_float)
    return (FORWARD if n_in <= n_out else REVERSE), n_in, n_out


def jacobian_blocks(sub: Sub, wrt: Sequence[int], mode: str) -> tuple[list, list[list[Any]]]:
    """(all output tracers, blocks[o][i]) for primal output o and `wrt` input position i."""
    return (_forward if mode == FORWARD else _reverse)(sub, wrt)


def _forward(sub: Sub, wrt: Sequence[int]) -> tuple[list, list[list[Any]]]:
    g, ins = sub.graph, sub.inputs()
    n_out = len(g.outputs)
    outs: list = []
    cols: list[list[Any]] = [[None] * len(wrt) for _ in range(sub.n_primal)]
    for j, p in enumerate(wrt):
        x = g.inputs[p]
        split = split_joint(jvp_graph(g, [p]), len(g.inputs), n_out)
        fwd = splice(split.forward, ins, "jacfwd")
        outs, res = fwd[:n_out], fwd[n_out:]
        sweeps = [
            splice(split.backward, res + [_one_hot(k, x.shape, x.dtype)], "jacfwd")
            for k in range(_size(x.shape))
        ]
        for o in range(sub.n_primal):
            v = g.outputs[o]
            dtype = v.dtype if v.type.is_float else x.dtype
            if not v.type.is_float:
                cols[o][j] = np.zeros(v.shape + x.shape, dtype=dtype)
                continue
            cols[o][j] = _block([s[o] for s in sweeps], v.shape, x.shape, dtype, axis=-1)
    return outs or splice(g, ins, "jacfwd"), cols


def _reverse(sub: Sub, wrt: Sequence[int]) -> tuple[list, list[list[Any]]]:
    g, ins = sub.graph, sub.inputs()
    n_out = len(g.outputs)
    outs: list = []
    rows: list[list[Any]] = [[None] * len(wrt) for _ in range(sub.n_primal)]
    for o in range(sub.n_primal):
        v = g.outputs[o]
        if not v.type.is_float:  # an integer output has no cotangent: zero rows
            for j, p in enumerate(wrt):
                x = g.inputs[p]
                rows[o][j] = np.zeros(v.shape + x.shape, dtype=x.dtype)
            continue
        joint = vjp_graph(g, list(wrt), seeds="input", ct_outputs=(o,))
        split = split_joint(joint, len(g.inputs), n_out)
        fwd = splice(split.forward, ins, "jacrev")
        outs, res = fwd[:n_out], fwd[n_out:]
        sweeps = [
            splice(split.backward, res + [_one_hot(k, v.shape, v.dtype)], "jacrev")
            for k in range(_size(v.shape))
        ]
        for j, p in enumerate(wrt):
            x = g.inputs[p]
            rows[o][j] = _block([s[j] for s in sweeps], v.shape, x.shape, x.dtype, axis=0)
    return outs or splice(g, ins, "jacrev"), rows
