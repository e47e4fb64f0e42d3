"""Algebraic rules on elementwise ops: identities, zeros from the adjoint, uniform folding.

NaN/Inf policy. Every rule here is exact in IEEE arithmetic for every input, except the
rules marked ZERO, which replace `x * 0` (and `0 @ x`) by zeros when the zero is a `full`
fill. IEEE gives NaN there when x is Inf or NaN. We fold anyway, assuming finite operands,
because such zeros are the adjoint's symbolic zeros (`full` fills for cotangents that do not
flow); a user's literal `0.0 * x` is a `const` and is left alone, so it stays NaN for inf x:
JAX never multiplies its symbolic zeros (`ad.Zero`) either, so an unused branch contributes
exactly 0 there even when a forward value overflowed. Only a *multiplication* by a known
zero is folded; `0 / x` is kept (0/0 is NaN for a finite x). Results may differ from the
unoptimised graph in the sign of a zero (`x + 0 -> x` keeps x = -0.0).
"""

from __future__ import annotations

import numpy as np

from compiler.ir.graph import Node, Value
from compiler.passes.rewrite import Rewriter, Rule, add_rule
from compiler.primitives import OPS, Kind

RULES: dict[str, list[Rule]] = {}


def rule(*ops: str):
    """Register a rule in this module's table."""
    return add_rule(RULES, *ops)


def _neg(rw: Rewriter, x: Value, node: Node) -> Value:
    return rw.fit(rw.emit("negative", [x]), node.out.type)


# -- uniform folding (applies to every elementwise op) -------------------------------------


def fold_uniform(node: Node, rw: Rewriter) -> Value | None:
    """op(full a, full b, ...) -> full(op(a, b, ...))"""
    # Elementwise ops compute each element from the same-position operands only, so
    # evaluating the reference implementation once, on 0-d operands, is the exact result.
    if not node.inputs:
        return None
    fills = [rw.uniform(v) for v in node.inputs]
    if any(f is None for f in fills):
        return None
    with np.errstate(all="ignore"):
        out = np.asarray(OPS[node.op].impl(*fills, **node.attrs))
    return rw.full(node.out.type, out.astype(node.out.dtype))


for _name, _op in OPS.items():
    if _op.kind is Kind.ELEMENTWISE:
        add_rule(RULES, _name)(fold_uniform)


# -- multiply -------------------------------------------------------------------------------


@rule("multiply")
def mul_one(node: Node, rw: Rewriter) -> Value | None:
    """x * 1 -> x, 1 * x -> x"""
    x, y = node.inputs
    if rw.is_fill(y, 1):
        return rw.fit(x, node.out.type)
    if rw.is_fill(x, 1):
        return rw.fit(y, node.out.type)
    return None


@rule("multiply")
def mul_minus_one(node: Node, rw: Rewriter) -> Value | None:
    """x * -1 -> -x, -1 * x -> -x"""
    x, y = node.inputs
    if rw.is_fill(y, -1):
        return _neg(rw, x, node)
    if rw.is_fill(x, -1):
        return _neg(rw, y, node)
    return None


@rule("multiply")
def mul_zero(node: Node, rw: Rewriter) -> Value | None:
    """x * 0 -> 0, 0 * x -> 0 for a `full` zero (ZERO: assumes finite x, see the module doc)"""
    x, y = node.inputs
    if rw.is_zero_fill(x) or rw.is_zero_fill(y):
        return rw.full(node.out.type, 0)
    return None


@rule("multiply")
def mul_neg_neg(node: Node, rw: Rewriter) -> Value | None:
    """(-x) * (-y) -> x * y"""
    x, y = node.inputs
    if rw.op_of(x) == "negative" and rw.op_of(y) == "negative":
        return rw.emit("multiply", [rw.producer(x).inputs[0], rw.producer(y).inputs[0]])
    return None


@rule("multiply")
def mul_self(node: Node, rw: Rewriter) -> Value | None:
    """x * x -> square(x)"""
    x, y = node.inputs
    if x is y:
        return rw.emit("square", [x])
    return None


# -- add and subtract ---------------------------------------------------------------------------


@rule("add")
def add_zero(node: Node, rw: Rewriter) -> Value | None:
    """x + 0 -> x, 0 + x -> x"""
    x, y = node.inputs
    if rw.is_fill(y, 0):
        return rw.fit(x, node.out.type)
    if rw.is_fill(x, 0):
        return rw.fit(y, node.out.type)
    return None


@rule("add")
def add_neg(node: Node, rw: Rewriter) -> Value | None:
    """x + (-y) -> x - y, (-x) + y -> y - x"""
    x, y = node.inputs
    if rw.op_of(y) == "negative":
        return rw.emit("subtract", [x, rw.producer(y).inputs[0]])
    if rw.op_of(x) == "negative":
        return rw.emit("subtract", [y, rw.producer(x).inputs[0]])
    return None


@rule("subtract")
def sub_zero(node: Node, rw: Rewriter) -> Value | None:
    """x - 0 -> x, 0 - x -> -x"""
    x, y = node.inputs
    if rw.is_fill(y, 0):
        return rw.fit(x, node.out.type)
    if rw.is_fill(x, 0):
        return _neg(rw, y, node)
    return None


@rule("subtract")
def sub_neg(node: Node, rw: Rewriter) -> Value | None:
    """x - (-y) -> x + y"""
    x, y = node.inputs
    if rw.op_of(y) == "negative":
        return rw.emit("add", [x, rw.producer(y).inputs[0]])
    return None


# -- divide, power, negative ------------------------------------------------------------------


@rule("divide")
def div_one(node: Node, rw: Rewriter) -> Value | None:
    """x / 1 -> x, x / -1 -> -x"""
    x, y = node.inputs
    if rw.is_fill(y, 1):
        return rw.fit(x, node.out.type)
    if rw.is_fill(y, -1):
        return _neg(rw, x, node)
    return None


@rule("power")
def pow_small(node: Node, rw: Rewriter) -> Value | None:
    """x ** 0 -> 1, x ** 1 -> x, x ** 2 -> square(x)"""
    # IEEE pow(x, 0) is 1 even for NaN and Inf; pow(x, 2) is exactly x * x.
    x, y = node.inputs
    if rw.is_fill(y, 0):
        return rw.full(node.out.type, 1)
    if rw.is_fill(y, 1):
        return rw.fit(x, node.out.type)
    if rw.is_fill(y, 2):
        return rw.fit(rw.emit("square", [x]), node.out.type)
    return None


@rule("negative")
def neg_neg(node: Node, rw: Rewriter) -> Value | None:
    """-(-x) -> x"""
    (x,) = node.inputs
    if rw.op_of(x) == "negative":
        return rw.producer(x).inputs[0]
    return None


@rule("square")
def square_neg(node: Node, rw: Rewriter) -> Value | None:
    """square(-x) -> square(x)"""
    (x,) = node.inputs
    if rw.op_of(x) == "negative":
        return rw.emit("square", [rw.producer(x).inputs[0]])
    return None


# -- transcendental pairs ---------------------------------------------------------------------


@rule("log")
def log_exp(node: Node, rw: Rewriter) -> Value | None:
    """log(exp(x)) -> x"""
    # Exact in real arithmetic and better in floating point (exp may overflow to Inf).
    # The converse, exp(log(x)) -> x, is never applied: log(x) is NaN for x < 0, and the
    # rewrite would turn that NaN into x without a proof that x is positive.
    (x,) = node.inputs
    if rw.op_of(x) == "exp":
        return rw.producer(x).inputs[0]
    return None


# -- where and astype ---------------------------------------------------------------------------


@rule("where")
def where_same(node: Node, rw: Rewriter) -> Value | None:
    """where(c, x, x) -> x"""
    _, x, y = node.inputs
    if x is y:
        return rw.fit(x, node.out.type)
    ux, uy = rw.uniform(x), rw.uniform(y)
    if ux is not None and uy is not None and bool(ux == uy):
        return rw.full(node.out.type, ux)
    return None


@rule("where")
def where_const_cond(node: Node, rw: Rewriter) -> Value | None:
    """where(True, x, y) -> x, where(False, x, y) -> y"""
    c, x, y = node.inputs
    u = rw.uniform(c)
    if u is None:
        return None
    return rw.fit(x if bool(u) else y, node.out.type)


@rule("astype")
def astype_same(node: Node, rw: Rewriter) -> Value | None:
    """astype(x, x.dtype) -> x"""
    (x,) = node.inputs
    if x.dtype == node.out.dtype:
        return x
    return None
