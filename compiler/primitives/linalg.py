"""Matrix products. `matmul` takes (..., m, k) @ (..., k, n) with equal batch dims; the
tracer reshapes 1-D operands and broadcasts batch dims first. Codegen calls BLAS."""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.registry import Cost, Kind, Lowering, OpDef, Sample, bind, fail, register


def _matmul_rule(ts):
    a, b = ts
    if a.dtype != b.dtype or not a.is_float:
        raise fail("matmul", "operands must share a float dtype", a, b)
    if a.ndim < 2 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]:
        raise fail("matmul", "needs (..., m, k) @ (..., k, n) with equal batch dims", a, b)
    if a.shape[-1] != b.shape[-2]:
        raise fail("matmul", f"inner dimensions differ ({a.shape[-1]} != {b.shape[-2]})", a, b)
    return TensorType(a.shape[:-1] + b.shape[-1:], a.dtype)


def mT(x):
    """Swap the last two axes (a view)."""
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return bind("transpose", x, axes=axes)


def _matmul_vjp(ct, a, b, *, out):
    # grad_A = ct B^T, grad_B = A^T ct
    return (bind("matmul", ct, mT(b)), bind("matmul", mT(a), ct))


def _matmul_jvp(t, a, b, *, out):
    terms = []
    if t[0] is not None:
        terms.append(bind("matmul", t[0], b))
    if t[1] is not None:
        terms.append(bind("matmul", a, t[1]))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


register(
    OpDef(
        name="matmul",
        shape_rule=_matmul_rule,
        impl=np.matmul,
        vjp=_matmul_vjp,
        jvp=_matmul_jvp,
        kind=Kind.LINALG,
        cost=Cost.EXPENSIVE,
        codegen="matmul",
        lowering=Lowering.CUSTOM,
        samples=lambda rng: [
            Sample((rng.normal(size=(3, 4)), rng.normal(size=(4, 5)))),
            Sample((rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 2)))),
            Sample(
                (
                    rng.normal(size=(3, 4)).astype(np.float32),
                    rng.normal(size=(4, 2)).astype(np.float32),
                )
            ),
        ],
        grad_doc="ct @ B^T to A, A^T @ ct to B",
    )
)
