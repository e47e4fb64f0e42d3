"""More elementwise math: hyperbolic and inverse trig functions, exp2/log2/log10, cbrt, hypot,
arctan2, fmax/fmin, remainder/fmod/floor_divide, floor/ceil/trunc/rint/round, heaviside, sinc.

Piecewise-constant ops (floor, ceil, trunc, rint, round, floor_divide) have zero gradient:
the derivative is 0 almost everywhere, and gradc uses 0 (the usual subgradient convention, as
JAX and PyTorch) at the jumps too. remainder and fmod are differentiable between their jumps
(d/dx = 1, d/dy = -floor(x/y) or -trunc(x/y)); heaviside passes the gradient to its second
operand only where x == 0. fmax/fmin send the gradient to the operand they return (ties to x).
"""

from __future__ import annotations

import math

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.elementwise import elementwise_op, float_unary
from compiler.primitives.registry import (
    Cost,
    Kind,
    OpDef,
    Sample,
    broadcast_shapes,
    fail,
    register,
)
from compiler.primitives.special import (
    binary_samples,
    register_binary,
    unary_samples,
)

_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _same_unary(ts, **attrs):
    return ts[0]


def _same_binary(name):
    def rule(ts):
        a, b = ts
        if a.dtype != b.dtype:
            raise fail(name, "operand dtypes differ (the tracer casts first)", a, b)
        return TensorType(broadcast_shapes(name, ts), a.dtype)

    return rule


def _unary(name, impl, deriv, tmpl, lo, hi, doc, cost=Cost.TRANSCENDENTAL, rule=None):
    elementwise_op(
        name,
        rule or float_unary(name),
        impl,
        None if deriv is None else (lambda ct, x, *, out: (ct * deriv(x, out),)),
        None if deriv is None else (lambda t, x, *, out: t[0] * deriv(x, out)),
        tmpl,
        cost,
        unary_samples(lo, hi),
        doc,
        deriv is not None,
    )


_UNARY = [
    ("sinh", np.sinh, lambda x, o: np.cosh(x), "math.sinh({0})", -2, 2, "ct * cosh(x)"),
    ("cosh", np.cosh, lambda x, o: np.sinh(x), "math.cosh({0})", -2, 2, "ct * sinh(x)"),
    (
        "arcsin",
        np.arcsin,
        lambda x, o: 1.0 / np.sqrt(1.0 - x * x),
        "math.asin({0})",
        -0.9,
        0.9,
        "ct / sqrt(1 - x^2); inf at |x| = 1",
    ),
    (
        "arccos",
        np.arccos,
        lambda x, o: -1.0 / np.sqrt(1.0 - x * x),
        "math.acos({0})",
        -0.9,
        0.9,
        "-ct / sqrt(1 - x^2); inf at |x| = 1",
    ),
    (
        "arctan",
        np.arctan,
        lambda x, o: 1.0 / (1.0 + x * x),
        "math.atan({0})",
        -3,
        3,
        "ct / (1 + x^2)",
    ),
    (
        "arcsinh",
        np.arcsinh,
        lambda x, o: 1.0 / np.sqrt(x * x + 1.0),
        "math.asinh({0})",
        -3,
        3,
        "ct / sqrt(x^2 + 1)",
    ),
    (
        "arccosh",
        np.arccosh,
        lambda x, o: 1.0 / np.sqrt(x * x - 1.0),
        "math.acosh({0})",
        1.2,
        3,
        "ct / sqrt(x^2 - 1); inf at x = 1",
    ),
    (
        "arctanh",
        np.arctanh,
        lambda x, o: 1.0 / (1.0 - x * x),
        "math.atanh({0})",
        -0.9,
        0.9,
        "ct / (1 - x^2)",
    ),
    ("exp2", np.exp2, lambda x, o: o * _LN2, "np.exp2({0})", -2, 2, "ct * ln 2 * 2^x (reuses out)"),
    ("log2", np.log2, lambda x, o: 1.0 / (x * _LN2), "math.log2({0})", 0.2, 3, "ct / (x ln 2)"),
    (
        "log10",
        np.log10,
        lambda x, o: 1.0 / (x * _LN10),
        "math.log10({0})",
        0.2,
        3,
        "ct / (x ln 10)",
    ),
    # d cbrt = 1 / (3 cbrt(x)^2): inf at 0
    ("cbrt", np.cbrt, lambda x, o: 1.0 / (3.0 * o * o), "np.cbrt({0})", 0.2, 3, "ct / (3 out^2)"),
]
for _row in _UNARY:
    _unary(*_row)


def _sinc_deriv(x, out):
    # d sinc = (cos(pi x) - sinc(x)) / x, and 0 at x = 0 (sinc is even and smooth there)
    zero = x == 0.0
    safe = np.where(zero, np.ones_like(x), x)
    return np.where(zero, np.zeros_like(x), (np.cos(math.pi * x) - out) / safe)


_unary(
    "sinc",
    np.sinc,
    _sinc_deriv,
    "({T}(1) if {0} == {T}(0) else math.sin({T}(3.141592653589793) * {0}) / "
    "({T}(3.141592653589793) * {0}))",
    -2,
    2,
    "ct * (cos(pi x) - sinc(x)) / x; 0 at x = 0",
)

for _name, _fn, _tmpl in [
    ("floor", np.floor, "np.floor({0})"),
    ("ceil", np.ceil, "np.ceil({0})"),
    ("trunc", np.trunc, "np.trunc({0})"),
    ("rint", np.rint, "np.rint({0})"),
]:
    _unary(
        _name,
        _fn,
        None,
        _tmpl,
        -3,
        3,
        "zero gradient (piecewise constant; 0 also at the jumps)",
        Cost.CHEAP,
        _same_unary,
    )


def _round_impl(x, *, decimals):
    return np.round(x, decimals)


register(
    OpDef(
        name="round",
        shape_rule=_same_unary,
        impl=_round_impl,
        codegen="round",
        kind=Kind.ELEMENTWISE,
        cost=Cost.CHEAP,
        samples=lambda rng: [
            Sample((rng.uniform(-3, 3, (3, 4)),), {"decimals": 1}),
            Sample((rng.uniform(-3, 3, (5,)).astype(np.float32),), {"decimals": 0}),
        ],
        differentiable=False,
        grad_doc="zero gradient (piecewise constant; np.round with decimals, from the driver)",
    )
)

# -- binary ------------------------------------------------------------------------------------


def _binop(name, impl, dx, dy, tmpl, samples, doc, differentiable=True, rule=None):
    register_binary(
        name,
        impl,
        dx,
        dy,
        tmpl,
        samples,
        doc,
        cost=Cost.CHEAP,
        differentiable=differentiable,
        rule=rule,
    )


_binop(
    "arctan2",
    np.arctan2,
    lambda y, x, o: x / (x * x + y * y),
    lambda y, x, o: -y / (x * x + y * y),
    "math.atan2({0}, {1})",
    binary_samples(-2, 2, 0.3, 2),
    "ct x / (x^2 + y^2) to y, -ct y / (x^2 + y^2) to x",
)
_binop(
    "hypot",
    np.hypot,
    lambda x, y, o: x / o,
    lambda x, y, o: y / o,
    "math.hypot({0}, {1})",
    binary_samples(0.3, 2, -2, -0.3),
    "ct x / out, ct y / out",
)


def _picks_x(pick):
    # the operand fmax/fmin returns: x when it wins or ties, or when y is nan
    def dx(x, y, o):
        return np.where(pick(x, y) | (y != y), np.ones_like(o), np.zeros_like(o))

    def dy(x, y, o):
        return 1.0 - dx(x, y, o)

    return dx, dy


_fx, _fy = _picks_x(lambda x, y: x >= y)
_binop(
    "fmax",
    np.fmax,
    _fx,
    _fy,
    "({0} if ({0} >= {1} or {1} != {1}) else {1})",
    binary_samples(-2, 2, -2, 2),
    "to the operand returned (x on ties and where y is nan)",
    rule=_same_binary("fmax"),
)
_gx, _gy = _picks_x(lambda x, y: x <= y)
_binop(
    "fmin",
    np.fmin,
    _gx,
    _gy,
    "({0} if ({0} <= {1} or {1} != {1}) else {1})",
    binary_samples(-2, 2, -2, 2),
    "to the operand returned (x on ties and where y is nan)",
    rule=_same_binary("fmin"),
)
_binop(
    "remainder",
    np.remainder,
    lambda x, y, o: np.ones_like(o),
    lambda x, y, o: -np.floor(x / y),
    "({0} % {1})",
    binary_samples(-3, 3, 0.7, 1.3),
    "ct, -ct * floor(x / y) (between the jumps)",
    rule=_same_binary("remainder"),
)
_binop(
    "fmod",
    np.fmod,
    lambda x, y, o: np.ones_like(o),
    lambda x, y, o: -np.trunc(x / y),
    "np.fmod({0}, {1})",
    binary_samples(-3, 3, 0.7, 1.3),
    "ct, -ct * trunc(x / y) (between the jumps)",
    rule=_same_binary("fmod"),
)
_binop(
    "floor_divide",
    np.floor_divide,
    None,
    None,
    "({0} // {1})",
    binary_samples(-3, 3, 0.7, 1.3),
    "zero gradient (piecewise constant)",
    differentiable=False,
    rule=_same_binary("floor_divide"),
)
_binop(
    "heaviside",
    np.heaviside,
    lambda x, y, o: np.zeros_like(o),
    lambda x, y, o: (x == 0.0).astype(o.dtype),
    "({T}(0) if {0} < {T}(0) else ({1} if {0} == {T}(0) else ({T}(1) if {0} > {T}(0) else {0})))",
    lambda rng: [
        # no x == 0 here: a finite difference in x would straddle the step
        Sample((np.array([-1.0, 0.5, 2.0, -0.3]), rng.uniform(0, 1, 4))),
        Sample(
            (np.array([[-1.0], [0.4]], np.float32), rng.uniform(0, 1, (1, 3)).astype(np.float32))
        ),
    ],
    "none to x (a step); ct where x == 0 to the value y",
)
