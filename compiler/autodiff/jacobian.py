"""Jacobians inside a trace: all rows (reverse) or columns (forward) in one graph.

Forward mode differentiates the traced function once (`jvp_graph`) and splits the result into
its primal part and its linear tangent part (`split_joint`); the primal part is spliced once,
and the tangent part runs once over a batch axis (`batch_graph`) seeded with the identity's
rows, so the graph does not grow with the number of inputs. Reverse mode does the same with
`vjp_graph`, the cotangent part and the rows of the identity over the output. When the
linear part holds an op without a batching rule, it is spliced once per element with a
one-hot seed instead (the same numbers, a graph that grows with n); a note in the trace says
which. Block (o, i) of the result has shape `out[o].shape + arg[i].shape`, as in JAX.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.autodiff.batch import NotBatchable, batch_graph
from compiler.autodiff.inline import Sub, current_trace, splice
from compiler.autodiff.jvp import jvp_graph
from compiler.autodiff.partition import split_joint
from compiler.autodiff.vjp import vjp_graph
from compiler.ir.graph import Graph
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


def _batched_sweeps(linear: Graph, res: list, shape: tuple, dtype, what: str) -> list | None:
    """Every sweep of `linear` (residuals, then one seed -> results) as one batched sweep over
    the identity's rows; None when the graph has an op without a batching rule."""
    n = _size(shape)
    if n == 0:
        return None
    try:
        batched = batch_graph(linear, [len(res)], n)
    except NotBatchable as exc:
        current_trace(what).notes.append(f"{what}: {n} unrolled sweeps ({exc})")
        return None
    eye = np.eye(n, dtype=dtype).reshape((n, *shape))
    return splice(batched, [*res, eye], what)


def _unrolled_sweeps(linear: Graph, res: list, shape: tuple, dtype, what: str) -> list[list]:
    """One splice of `linear` per element, each seeded with a one-hot constant."""
    return [splice(linear, [*res, _one_hot(k, shape, dtype)], what) for k in range(_size(shape))]


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
        batched = _batched_sweeps(split.backward, res, x.shape, x.dtype, "jacfwd")
        if batched is None:
            sweeps = _unrolled_sweeps(split.backward, res, x.shape, x.dtype, "jacfwd")
        for o in range(sub.n_primal):
            v = g.outputs[o]
            if not v.type.is_float:
                cols[o][j] = np.zeros(v.shape + x.shape, dtype=x.dtype)
            elif batched is not None:  # (n, *out) -> (*out, n) -> out.shape + x.shape
                r = len(v.shape)
                t = ops.transpose(batched[o], (*range(1, r + 1), 0)) if r else batched[o]
                cols[o][j] = ops.reshape(t, v.shape + x.shape)
            else:
                cols[o][j] = _block([s[o] for s in sweeps], v.shape, x.shape, v.dtype, axis=-1)
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
        batched = _batched_sweeps(split.backward, res, v.shape, v.dtype, "jacrev")
        if batched is None:
            sweeps = _unrolled_sweeps(split.backward, res, v.shape, v.dtype, "jacrev")
        for j, p in enumerate(wrt):
            x = g.inputs[p]
            if batched is not None:  # (m, *x) -> out.shape + x.shape
                rows[o][j] = ops.reshape(batched[j], v.shape + x.shape)
            else:
                rows[o][j] = _block([s[j] for s in sweeps], v.shape, x.shape, x.dtype, axis=0)
    return outs or splice(g, ins, "jacrev"), rows
