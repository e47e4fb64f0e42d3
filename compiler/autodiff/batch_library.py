"""Batching rules (see `batch.py`) for the library ops: LAPACK, scans, products, sorting.

LAPACK ops already take leading batch axes, so their rule gives every operand the batch axis
and calls the same op; ops with an `axis` attribute shift it by one; `searchsorted` (its
sorted array must be 1-d) runs once per batch element and stacks the results.
"""

from __future__ import annotations

from compiler.autodiff.batch import _RULES, _Ctx, _reduce
from compiler.ir.graph import Value


def _leading(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    return c.add(c.n.op, [c.full(x) for x in ins], attrs)


def _axis(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    attrs["axis"] = attrs["axis"] + 1
    return c.add(c.n.op, [c.full(x) for x in ins], attrs)


def _per_element(c: _Ctx, ins: list[Value], attrs: dict) -> Value:
    """One node per batch element on its slices, stacked: exact for any op."""
    parts = []
    for j in range(c.size):
        sliced = []
        for x in ins:
            if x in c.lead:
                index = ((j, 1, 1), *((0, 1, d) for d in x.shape[1:]))
                x = c.add("slice", [x], {"index": index})
                x = c.add("reshape", [x], {"shape": x.shape[1:]})
            sliced.append(x)
        y = c.add(c.n.op, sliced, dict(attrs))
        parts.append(c.add("reshape", [y], {"shape": (1, *y.shape)}))
    return parts[0] if len(parts) == 1 else c.add("concatenate", parts, {"axis": 0})


for _name in (
    "solve",
    "inv",
    "logabsdet",
    "det_sign",
    "cholesky",
    "solve_triangular",
    "eigh",
    "svd",
    "qr",
):
    _RULES[_name] = _leading
for _name in ("cumsum", "cumprod", "argsort", "argmax", "argmin"):
    _RULES[_name] = _axis
_RULES["prod"] = _reduce
_RULES["searchsorted"] = _per_element
