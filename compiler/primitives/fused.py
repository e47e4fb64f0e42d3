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
