"""What a background compile warms its stage up on (docs/tiers.md, "Warm-up").

The job calls the compiled stage once before the switch, so that Numba compiles every kernel
for the argument types. Types, not values, decide what compiles; values matter only where they
steer what runs: a `while_loop`'s trip count, indices, LAPACK's failures on a singular
matrix. A stage with none of that warms up on zeros (`runtime.tier.zeros_sample`: calloc'd,
no copy, nothing touched on the caller's thread); any other stage warms up on a private copy
of its first call's inputs (`runtime.tier.sample_of`). The copy is the caller's cost: on the
`deep` benchmark, 32 MiB of parameters, 17-114 ms of its first call.
"""

from __future__ import annotations

from compiler.ir.graph import Graph
from compiler.primitives import OPS, Kind

# kinds whose ops compute the same code path for any float values (NaN and inf included:
# kernels use error_model="numpy", and the warm-up runs with NumPy's warnings off)
_VALUE_FREE_KINDS = frozenset({Kind.ELEMENTWISE, Kind.REDUCE, Kind.SHAPE, Kind.CONST, Kind.FUSED})
# and ops of other kinds that read no value as an index, a count or a matrix to factor
_VALUE_FREE_OPS = frozenset({"matmul", "concatenate", "set_slice", "cumsum", "cumprod", "prod"})


def values_matter(graph: Graph) -> bool:
    """Whether running `graph` on zeros in place of its inputs could take another path than
    on the real inputs (fail, loop, index elsewhere): a non-float input, a non-float value
    other than an elementwise op's bool, or an op outside the value-free kinds and ops above,
    anywhere in it (fused bodies included).

    An elementwise bool (a comparison, `x == max(x)` in the gradient of `max`, a mask) is
    value-free itself, and whatever could let it steer (an index, a loop's condition) is an
    op outside the value-free set, caught here anyway; the `mlp` benchmark's softmax had one,
    and copied its 17 MB of inputs on its first call for it."""
    if any(not v.type.is_float for v in graph.inputs):
        return True
    for n in graph.nodes:
        d = OPS.get(n.op)
        if d is None or (d.kind not in _VALUE_FREE_KINDS and n.op not in _VALUE_FREE_OPS):
            return True
        mask = d.kind is Kind.ELEMENTWISE
        if any(not v.type.is_float and not (mask and v.dtype == bool) for v in n.outputs):
            return True
        if n.op == "fused" and values_matter(n.attrs["body"]):
            return True
    return False
