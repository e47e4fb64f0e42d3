"""Type rules of the loop ops, `scan` and `while_loop`, whose bodies are sub-graphs.

The records themselves are registered by `compiler.autodiff.loops`: their VJP and JVP
rules are graph transforms of the body (they call `vjp_graph`/`jvp_graph`), which live a
layer above the primitives. What a loop node looks like:

    scan        inputs  consts..., init carries..., xs...     (each x: [length, *x_t])
                attrs   body (consts, carries, x_t -> carries, y_t), length, reverse,
                        n_consts, n_carry, save_every, checkpoint
                outputs final carries..., ys... ([length, *y_t]),
                        then, with save_every = k > 0, the carry entering each block of k
                        positions ([length // k, *carry]) for every carry
    while_loop  inputs  consts..., init carries...
                attrs   cond (consts, carries -> bool[]), body (consts, carries -> carries),
                        n_consts, max_steps (0: unbounded), record
                outputs final carries..., then with record: the trip count (i64[]) and the
                        carry entering each step ([max_steps, *carry]) for every carry
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from compiler.ir.graph import Graph, ShapeError
from compiler.ir.types import TensorType

LOOP_OPS = ("scan", "while_loop")


def _types(ts: Sequence[TensorType]) -> str:
    return ", ".join(str(t) for t in ts) or "nothing"


@dataclass(frozen=True)
class ScanLayout:
    """How a scan node's inputs and outputs are grouped."""

    n_consts: int
    n_carry: int
    n_xs: int
    n_ys: int
    n_saved: int

    def split_inputs(self, xs: Sequence) -> tuple[list, list, list]:
        a, b = self.n_consts, self.n_consts + self.n_carry
        return list(xs[:a]), list(xs[a:b]), list(xs[b:])

    def split_outputs(self, xs: Sequence) -> tuple[list, list, list]:
        a, b = self.n_carry, self.n_carry + self.n_ys
        return list(xs[:a]), list(xs[a:b]), list(xs[b:])


def scan_layout(n_inputs: int, body: Graph, n_consts: int, n_carry: int, save_every: int):
    """The grouping of a scan node with `n_inputs` operands and this body."""
    n_xs = n_inputs - n_consts - n_carry
    n_ys = len(body.outputs) - n_carry
    return ScanLayout(n_consts, n_carry, n_xs, n_ys, n_carry if save_every else 0)


def scan_types(
    ts: Sequence[TensorType],
    *,
    body: Graph,
    length: int,
    reverse: bool,
    n_consts: int,
    n_carry: int,
    save_every: int,
    checkpoint: int,
) -> list[TensorType]:
    """The output types of a scan node; ShapeError naming both sides when they disagree."""
    lay = scan_layout(len(ts), body, n_consts, n_carry, save_every)
    if lay.n_xs < 0 or lay.n_ys < 0 or length < 0:
        raise ShapeError(f"scan: malformed node ({len(ts)} operands, n_carry={n_carry})")
    consts, carries, xs = lay.split_inputs(list(ts))
    x_t = []
    for x in xs:
        if x.ndim == 0 or x.shape[0] != length:
            raise ShapeError(f"scan: xs operand {x} does not have leading axis {length}")
        x_t.append(TensorType(x.shape[1:], x.dtype))
    want_in = [*consts, *carries, *x_t]
    got_in = [v.type for v in body.inputs]
    if want_in != got_in:
        raise ShapeError(f"scan: body takes ({_types(got_in)}), operands give ({_types(want_in)})")
    out_carry = [v.type for v in body.outputs[:n_carry]]
    if out_carry != list(carries):
        raise ShapeError(
            f"scan: body returns carry ({_types(out_carry)}) for carry ({_types(carries)})"
        )
    if save_every and (save_every < 1 or length % save_every):
        raise ShapeError(f"scan: save_every={save_every} does not divide length {length}")
    ys = [TensorType((length, *v.shape), v.dtype) for v in body.outputs[n_carry:]]
    if not save_every:
        return [*carries, *ys]
    return [
        *carries,
        *ys,
        *[TensorType((length // save_every, *c.shape), c.dtype) for c in carries],
    ]


def while_types(
    ts: Sequence[TensorType],
    *,
    cond: Graph,
    body: Graph,
    n_consts: int,
    max_steps: int,
    record: bool,
) -> list[TensorType]:
    """The output types of a while_loop node (see the module docstring)."""
    carries = list(ts[n_consts:])
    got_c = [v.type for v in cond.inputs]
    got_b = [v.type for v in body.inputs]
    if got_c != list(ts) or got_b != list(ts):
        raise ShapeError(
            f"while_loop: cond takes ({_types(got_c)}) and body ({_types(got_b)}), "
            f"operands give ({_types(ts)})"
        )
    c_out = [v.type for v in cond.outputs]
    if c_out != [TensorType((), np.dtype(bool))]:
        raise ShapeError(f"while_loop: cond returns ({_types(c_out)}), expected bool[]")
    b_out = [v.type for v in body.outputs]
    if b_out != carries:
        raise ShapeError(f"while_loop: body returns ({_types(b_out)}) for ({_types(carries)})")
    if not record:
        return carries
    if max_steps < 1:
        raise ShapeError("while_loop: recording the carries needs max_steps >= 1")
    hist = [TensorType((max_steps, *c.shape), c.dtype) for c in carries]
    return [*carries, TensorType((), np.dtype(np.int64)), *hist]


def first(rule):
    """A one-output shape rule from a many-output one (what `Builder.add` expects)."""

    def shape_rule(ts, **attrs):
        outs = rule(ts, **attrs)
        if not outs:
            raise ShapeError("loop node with no outputs")
        return outs[0]

    return shape_rule
