"""Elementwise ops: the shape rules and samples they share, and unary math (binary ops,
comparisons, where and astype are in `binary.py`)."""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.registry import (
    Cost,
    Kind,
    OpDef,
    Sample,
    ScalarExpr,
    broadcast_shapes,
    fail,
    register,
)

# -- shape rules -----------------------------------------------------------------------


def float_unary(name):
    def rule(ts: list[TensorType], **attrs) -> TensorType:
        (t,) = ts
        if not t.is_float:
            raise fail(name, "needs a float operand", t)
        return t

    return rule


def same_unary(ts: list[TensorType]) -> TensorType:
    return ts[0]


def binary_rule(name, out_dtype=None):
    def rule(ts: list[TensorType]) -> TensorType:
        a, b = ts
        if a.dtype != b.dtype:
            raise fail(name, "operand dtypes differ (the tracer casts first)", a, b)
        return TensorType(broadcast_shapes(name, ts), out_dtype or a.dtype)

    return rule


def where_rule(ts: list[TensorType]) -> TensorType:
    c, x, y = ts
    if c.dtype != np.bool_:
        raise fail("where", "condition must be bool", c)
    if x.dtype != y.dtype:
        raise fail("where", "branch dtypes differ", x, y)
    return TensorType(broadcast_shapes("where", ts), x.dtype)


def astype_rule(ts: list[TensorType], *, dtype) -> TensorType:
    return TensorType(ts[0].shape, dtype)


# -- samples ---------------------------------------------------------------------------

_SHAPES = [(), (5,), (3, 4), (2, 3, 2)]
_BIN_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((), (2, 3)), ((4,), (3, 4)), ((5,), ())]


def unary_samples(lo=-2.0, hi=2.0, avoid=None):
    def gen(rng):
        out = []
        for s in _SHAPES:
            x = rng.uniform(lo, hi, size=s)
            if avoid is not None:
                x = np.where(np.abs(x - avoid) < 0.2, x + 0.5, x)
            out.append(Sample((np.asarray(x, dtype=np.float64),)))
        out.append(Sample((rng.uniform(lo, hi, size=(4, 3)).astype(np.float32),)))
        return out

    return gen


def binary_samples(lo=-2.0, hi=2.0, lo2=None, hi2=None, separate=False):
    lo2 = lo if lo2 is None else lo2
    hi2 = hi if hi2 is None else hi2

    def gen(rng):
        out = []
        for sa, sb in _BIN_SHAPES:
            a = np.asarray(rng.uniform(lo, hi, size=sa))
            b = np.asarray(rng.uniform(lo2, hi2, size=sb))
            if separate:  # keep kinks (x == y) away from finite-difference steps
                b = (
                    np.where(
                        np.abs(np.broadcast_to(a, np.broadcast_shapes(sa, sb)).mean() - b) < 0.1,
                        b + 0.3,
                        b,
                    )
                    if b.ndim == 0
                    else b
                )
            out.append(Sample((a, b)))
        out.append(
            Sample(
                (
                    rng.uniform(lo, hi, (2, 3)).astype(np.float32),
                    rng.uniform(lo2, hi2, (2, 3)).astype(np.float32),
                )
            )
        )
        return out

    return gen


def mask_samples(rng):
    return [Sample((rng.uniform(-1, 1, s) > 0, rng.uniform(-1, 1, s) > 0)) for s in [(4,), (2, 3)]]


# -- unary ops ---------------------------------------------------------------------------


def _unary(
    name,
    impl,
    vjp,
    jvp,
    tmpl,
    cost=Cost.CHEAP,
    samples=None,
    doc="",
    differentiable=True,
    rule=None,
    library=(),
):
    rule = rule or float_unary(name)
    samples = samples or unary_samples()
    elementwise_op(name, rule, impl, vjp, jvp, tmpl, cost, samples, doc, differentiable, library)


def elementwise_op(
    name,
    rule,
    impl,
    vjp,
    jvp,
    tmpl,
    cost,
    samples,
    doc,
    differentiable=True,
    library=(),
    *,
    ufunc=None,
    commutative=False,
):
    """Register an elementwise op whose loop lowering is the scalar expression `tmpl`
    (`ufunc`: the ufunc the tracer maps onto it, when `impl` is not that ufunc itself)."""
    register(
        OpDef(
            name=name,
            shape_rule=rule,
            impl=impl,
            vjp=vjp,
            jvp=jvp,
            codegen=ScalarExpr(tmpl),
            kind=Kind.ELEMENTWISE,
            cost=cost,
            samples=samples,
            grad_doc=doc,
            differentiable=differentiable,
            library=library,
            ufunc=ufunc,
            commutative=commutative,
        )
    )


# d(-x) = -1
_unary(
    "negative",
    np.negative,
    lambda ct, x, *, out: (-ct,),
    lambda t, x, *, out: -t[0],
    "(-{0})",
    rule=same_unary,
    doc="-ct",
)
# d exp = exp
_unary(
    "exp",
    np.exp,
    lambda ct, x, *, out: (ct * out,),
    lambda t, x, *, out: t[0] * out,
    "math.exp({0})",
    Cost.TRANSCENDENTAL,
    doc="ct * exp(x) (reuses the output)",
    library=("float32", "float64"),
)
# d log = 1/x
_unary(
    "log",
    np.log,
    lambda ct, x, *, out: (ct / x,),
    lambda t, x, *, out: t[0] / x,
    "math.log({0})",
    Cost.TRANSCENDENTAL,
    unary_samples(0.2, 3.0),
    doc="ct / x",
    library=("float32", "float64"),
)
_unary(
    "log1p",
    np.log1p,
    lambda ct, x, *, out: (ct / (1.0 + x),),
    lambda t, x, *, out: t[0] / (1.0 + x),
    "math.log1p({0})",
    Cost.TRANSCENDENTAL,
    unary_samples(-0.5, 2.0),
    doc="ct / (1 + x)",
    library=("float32", "float64"),
)
_unary(
    "expm1",
    np.expm1,
    lambda ct, x, *, out: (ct * (out + 1.0),),
    lambda t, x, *, out: t[0] * (out + 1.0),
    "math.expm1({0})",
    Cost.TRANSCENDENTAL,
    doc="ct * (expm1(x) + 1)",
    library=("float32", "float64"),
)
# d tanh = 1 - tanh^2
_unary(
    "tanh",
    np.tanh,
    lambda ct, x, *, out: (ct * (1.0 - out * out),),
    lambda t, x, *, out: t[0] * (1.0 - out * out),
    "math.tanh({0})",
    Cost.TRANSCENDENTAL,
    doc="ct * (1 - tanh(x)^2) (reuses the output)",
    library=("float32", "float64"),
)
_unary(
    "sin",
    np.sin,
    lambda ct, x, *, out: (ct * np.cos(x),),
    lambda t, x, *, out: t[0] * np.cos(x),
    "math.sin({0})",
    Cost.TRANSCENDENTAL,
    doc="ct * cos(x)",
    library=("float32",),
)
_unary(
    "cos",
    np.cos,
    lambda ct, x, *, out: (-(ct * np.sin(x)),),
    lambda t, x, *, out: -(t[0] * np.sin(x)),
    "math.cos({0})",
    Cost.TRANSCENDENTAL,
    doc="-ct * sin(x)",
    library=("float32",),
)
# d sqrt = 1 / (2 sqrt x); infinite at 0, as in NumPy's own arithmetic
_unary(
    "sqrt",
    np.sqrt,
    lambda ct, x, *, out: (ct / (2.0 * out),),
    lambda t, x, *, out: t[0] / (2.0 * out),
    "math.sqrt({0})",
    Cost.TRANSCENDENTAL,
    unary_samples(0.2, 3.0),
    doc="ct / (2 sqrt(x)); inf at x = 0",
)
_unary(
    "square",
    np.square,
    lambda ct, x, *, out: (ct * (2.0 * x),),
    lambda t, x, *, out: t[0] * (2.0 * x),
    "({0} * {0})",
    rule=same_unary,  # integers too, as in NumPy (x**2 on an index array)
    doc="2 x ct",
)
# subgradient at 0 is 0 (sign(0) = 0), as in JAX and PyTorch
_unary(
    "abs",
    np.abs,
    lambda ct, x, *, out: (ct * np.sign(x),),
    lambda t, x, *, out: t[0] * np.sign(x),
    "abs({0})",
    samples=unary_samples(avoid=0.0),
    rule=same_unary,
    doc="ct * sign(x); subgradient 0 at x = 0",
)
_unary(
    "sign",
    np.sign,
    None,
    None,
    # typed, and NaN stays NaN (np.sign(nan) is nan)
    "({T}({0} > {T}(0)) - {T}({0} < {T}(0)) if {0} == {0} else {0})",
    samples=unary_samples(avoid=0.0),
    differentiable=False,
    rule=same_unary,
    doc="zero gradient (piecewise constant)",
)
