"""`fused`: a fusion group, whose `body` graph codegen runs as one loop nest.

The `fuse` pass makes these after autodiff and planning, so the record has no derivative
rules; its types are read from its body, and its reference implementation runs the body's
ops one by one (what `backend="interpret"` does, through the interpreter's own loop).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compiler.ir.graph import Graph
from compiler.ir.types import TensorType
from compiler.primitives.control import first
from compiler.primitives.registry import OPS, Cost, Kind, Lowering, OpDef, fail, register


def fused_types(ts: Sequence[TensorType], *, body: Graph) -> list[TensorType]:
    """The node's output types: its body's, once the operands match the body's inputs."""
    if [v.type for v in body.inputs] != list(ts):
        raise fail("fused", "body inputs do not match node inputs", *ts)
    return [v.type for v in body.outputs]


def run_body(*args: np.ndarray, body: Graph) -> list[np.ndarray]:
    """Evaluate the body on the operands with each op's reference; one array per output."""
    env = dict(zip(body.inputs, args))
    with np.errstate(all="ignore"):
        for n in body.nodes:
            out = OPS[n.op].impl(*[env[v] for v in n.inputs], **n.attrs)
            env[n.out] = np.asarray(out).astype(n.out.dtype, copy=False)
    return [env[v] for v in body.outputs]


register(
    OpDef(
        name="fused",
        shape_rule=first(fused_types),
        out_types=fused_types,
        impl=run_body,
        kind=Kind.FUSED,
        lowering=Lowering.CUSTOM,
        codegen="fused",
        cost=Cost.CHEAP,
        differentiable=False,
        grad_doc="fusion groups are formed after autodiff (`fuse` pass)",
    )
)


def rowfused_types(
    ts: Sequence[TensorType], *, body: Graph, z: int, r: int, emit: tuple, gshape: tuple
) -> list[TensorType]:
    """`rowfused`'s outputs: the emitted body outputs, then the gradient `X.T @ r`."""
    x, w, *rest = ts
    n = body.inputs[z].shape[0] if body.inputs[z].ndim == 1 else -1
    ok = (
        x.ndim == 2
        and x.shape[0] == n
        and w.shape in ((x.shape[1], 1), (x.shape[1],))
        and x.dtype == w.dtype == body.inputs[z].dtype == body.outputs[r].dtype
        and tuple(gshape) in ((x.shape[1], 1), (x.shape[1],))
        and body.outputs[r].shape == (n,)
    )
    others = [v.type for k, v in enumerate(body.inputs) if k != z]
    if not ok or others != list(rest):
        raise fail("rowfused", "operands do not match the body (X [n,d], w [d,1], z [n])", *ts)
    return [body.outputs[k].type for k in emit] + [TensorType(tuple(gshape), x.dtype)]


def run_rowfused(
    x: np.ndarray, w: np.ndarray, *rest: np.ndarray, body: Graph, z: int, r: int, emit: tuple,
    gshape: tuple,
) -> list[np.ndarray]:  # fmt: skip
    """z = X @ w, the body row by row, g = X.T @ r: what the fused loop computes."""
    args = list(rest)
    with np.errstate(all="ignore"):  # as the interpreter runs every op: NaN and inf flow
        args.insert(z, (x @ w).reshape(body.inputs[z].shape))
        outs = run_body(*args, body=body)
        g = (x.T @ outs[r].reshape(-1, 1)).reshape(gshape)
    return [outs[k] for k in emit] + [g]


# `rowfuse` (codegen/rowfuse.py) makes these after `fuse`: a matrix-vector product, the
# elementwise loop over its rows, and the transposed product of that loop's row cotangent
# with the same matrix, as one pass over the matrix's rows (codegen/rowloop.py)
register(
    OpDef(
        name="rowfused",
        shape_rule=first(rowfused_types),
        out_types=rowfused_types,
        impl=run_rowfused,
        kind=Kind.FUSED,
        lowering=Lowering.CUSTOM,
        codegen="rowfused",
        cost=Cost.EXPENSIVE,
        differentiable=False,
        grad_doc="formed after autodiff (`rowfuse` pass)",
    )
)
