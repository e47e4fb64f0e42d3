"""Rules on shape, reduction, index and matmul ops: view chains, broadcast-then-sum, and
fills flowing through (the zero-adjoint propagation that makes unused branches vanish).

All rules are exact except `sum_broadcast` (a sum of n equal terms becomes `n * x`, which
may differ in the last bits) and the ZERO rule for matmul (see arith_rules' module doc).
"""

from __future__ import annotations

import math

import numpy as np

from compiler.ir.graph import Node, Value
from compiler.ir.types import TensorType
from compiler.passes.rewrite import Rewriter, Rule, add_rule
from compiler.primitives import OPS, Kind
from compiler.primitives.reduce import keep_shape

RULES: dict[str, list[Rule]] = {}


def rule(*ops: str):
    """Register a rule in this module's table."""
    return add_rule(RULES, *ops)


def _strip_ones(shape: tuple[int, ...]) -> tuple[int, ...]:
    i = 0
    while i < len(shape) and shape[i] == 1:
        i += 1
    return shape[i:]


# -- fills through data movement ------------------------------------------------------------


@rule("reshape", "transpose", "broadcast_to", "slice", "take", "max", "min")
def move_fill(node: Node, rw: Rewriter) -> Value | None:
    """reshape/transpose/broadcast_to/slice/take/max/min(full c) -> full c"""
    u = rw.uniform(node.inputs[0])
    return None if u is None else rw.full(node.out.type, u)


@rule("set_slice", "scatter", "concatenate")
def write_fill(node: Node, rw: Rewriter) -> Value | None:
    """set_slice/scatter(full c, .., full c), concatenate(full c, ..) -> full c"""
    data = node.inputs if node.op == "concatenate" else (node.inputs[0], node.inputs[-1])
    fills = [rw.uniform(v) for v in data]
    if any(f is None for f in fills) or not all(bool(f == fills[0]) for f in fills):
        return None
    return rw.full(node.out.type, fills[0])


@rule("scatter_add")
def scatter_add_zeros(node: Node, rw: Rewriter) -> Value | None:
    """scatter_add(0, i, 0) -> 0, scatter_add(x, i, 0) -> x"""
    x, _, v = node.inputs
    if rw.is_fill(v, 0):
        return x
    return None


@rule("sum")
def sum_fill(node: Node, rw: Rewriter) -> Value | None:
    """sum(full c, axis) -> full(c * n), n the number of summed elements"""
    (x,) = node.inputs
    u = rw.uniform(x)
    if u is None:
        return None
    n = math.prod(x.shape[a] for a in node.attrs["axis"])
    return rw.full(node.out.type, np.asarray(u * n).astype(x.dtype))


@rule("matmul")
def matmul_zero(node: Node, rw: Rewriter) -> Value | None:
    """0 @ x -> 0, x @ 0 -> 0 (ZERO: assumes finite x)"""
    a, b = node.inputs
    if rw.is_zero_fill(a) or rw.is_zero_fill(b):
        return rw.full(node.out.type, 0)
    return None


# -- view chains ------------------------------------------------------------------------------


@rule("reshape")
def reshape_chain(node: Node, rw: Rewriter) -> Value | None:
    """reshape(x, x.shape) -> x, reshape(reshape(x, s1), s2) -> reshape(x, s2)"""
    (x,) = node.inputs
    shape = node.out.shape
    if x.shape == shape:
        return x
    if rw.op_of(x) == "reshape":
        return rw.emit("reshape", [rw.producer(x).inputs[0]], shape=shape)
    return None


@rule("reshape")
def reshape_of_sum(node: Node, rw: Rewriter) -> Value | None:
    """reshape(sum(x, A), keepdims shape) -> sum(x, A, keepdims=True)"""
    (s,) = node.inputs
    p = rw.producer(s)
    if p is None or p.op != "sum" or p.attrs["keepdims"]:
        return None
    (x,) = p.inputs
    if node.out.shape != keep_shape(x.shape, p.attrs["axis"]):
        return None
    # Rules never look at users (that keeps the sweep idempotent), so where the un-kept sum
    # has other users too, both sums stay: one extra reduction in code that reshapes a sum
    # and also uses it as is. The autodiff's unbroadcast (sum, then reshape) never does.
    return rw.emit("sum", [x], axis=p.attrs["axis"], keepdims=True)


@rule("transpose")
def transpose_chain(node: Node, rw: Rewriter) -> Value | None:
    """transpose(x, id) -> x, transpose(transpose(x, p), q) -> transpose(x, p[q])"""
    (x,) = node.inputs
    q = tuple(node.attrs["axes"])
    if q == tuple(range(len(q))):
        return x
    if rw.op_of(x) == "transpose":
        inner = rw.producer(x)
        p = tuple(inner.attrs["axes"])
        return rw.emit("transpose", [inner.inputs[0]], axes=tuple(p[i] for i in q))
    return None


@rule("broadcast_to")
def broadcast_chain(node: Node, rw: Rewriter) -> Value | None:
    """broadcast_to(x, x.shape) -> x, broadcast_to(x, s) -> reshape(x, s) when no element
    repeats, broadcast_to(broadcast_to(x, s1), s2) -> broadcast_to(x, s2),
    broadcast_to(reshape(x, (1,..) + x.shape), s) -> broadcast_to(x, s)"""
    (x,) = node.inputs
    shape = node.out.shape
    if x.shape == shape:
        return x
    if x.type.size == node.out.type.size:  # only 1s added: the same elements in C order
        return rw.emit("reshape", [x], shape=shape)
    p = rw.producer(x)
    if p is None:
        return None
    if p.op == "broadcast_to":
        return rw.emit("broadcast_to", [p.inputs[0]], shape=shape)
    if p.op == "reshape":
        (y,) = p.inputs
        # a reshape that only adds or drops leading 1s is what broadcasting does anyway
        if (
            _strip_ones(y.shape) == _strip_ones(x.shape)
            and y.ndim <= len(shape)
            and np.broadcast_shapes(y.shape, shape) == shape
        ):
            return rw.emit("broadcast_to", [y], shape=shape)
    return None


# -- reductions ---------------------------------------------------------------------------------


@rule("sum", "max", "min")
def reduce_nothing(node: Node, rw: Rewriter) -> Value | None:
    """sum/max/min(x, axis=()) -> x"""
    (x,) = node.inputs
    if not node.attrs["axis"]:
        return x
    return None


@rule("sum")
def sum_broadcast(node: Node, rw: Rewriter) -> Value | None:
    """sum(broadcast_to(x, s), A) -> n * x (reshaped; broadcast over the other axes),
    when every summed axis is one that the broadcast created; n = prod(s[a] for a in A)"""
    (bx,) = node.inputs
    p = rw.producer(bx)
    if p is None or p.op != "broadcast_to":
        return None
    (x,) = p.inputs
    shape, axes = bx.shape, node.attrs["axis"]
    lead = len(shape) - x.ndim
    if not all(a < lead or x.shape[a - lead] == 1 for a in axes):
        return None
    n = math.prod(shape[a] for a in axes)
    v = x
    if n != 1:
        v = rw.emit("multiply", [v, rw.full(TensorType((), x.dtype), n)])
    # x aligned to s has 1s on the summed axes: drop them (or keep them as 1s), then
    # broadcast over the axes the sum keeps
    aligned = (1,) * lead + x.shape
    if node.attrs["keepdims"]:
        small = keep_shape(aligned, axes)
    else:
        small = tuple(d for i, d in enumerate(aligned) if i not in axes)
    v = rw.emit("reshape", [v], shape=small)
    return rw.emit("broadcast_to", [v], shape=node.out.shape)


# -- elementwise ops absorb broadcasts ------------------------------------------------------------


def _broadcast_source(rw: Rewriter, v: Value) -> Value | None:
    """y when v = broadcast_to(y, s) or v = reshape(y, s) that only adds or drops leading 1s
    (either way, NumPy broadcasting of y gives the same elements)."""
    p = rw.producer(v)
    if p is None or p.op not in ("broadcast_to", "reshape"):
        return None
    (y,) = p.inputs
    if p.op == "reshape" and _strip_ones(y.shape) != _strip_ones(v.shape):
        return None
    return y


def absorb_broadcast(node: Node, rw: Rewriter) -> Value | None:
    """f(broadcast_to(x, s), y) -> f(x, y) when f's own broadcasting gives the same shape
    (likewise a reshape that only adds leading 1s); f(broadcast_to(x, s)) ->
    broadcast_to(f(x), s) for unary f (less work, same values)"""
    ins = list(node.inputs)
    if len(ins) == 1:
        if rw.op_of(ins[0]) != "broadcast_to":
            return None
        inner = rw.emit(node.op, rw.producer(ins[0]).inputs, **node.attrs)
        return rw.emit("broadcast_to", [inner], shape=node.out.shape)
    changed = False
    for i, v in enumerate(ins):
        src = _broadcast_source(rw, v)
        if src is None:
            continue
        trial = ins[:i] + [src] + ins[i + 1 :]
        if np.broadcast_shapes(*[t.shape for t in trial]) == node.out.shape:
            ins, changed = trial, True
    return rw.emit(node.op, ins, **node.attrs) if changed else None


for _name, _op in OPS.items():
    if _op.kind is Kind.ELEMENTWISE:
        add_rule(RULES, _name)(absorb_broadcast)
