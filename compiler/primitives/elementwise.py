"""Elementwise ops: unary math, binary arithmetic, comparisons, where, astype."""

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


def _float_unary(name):
    def rule(ts: list[TensorType]) -> TensorType:
        (t,) = ts
        if not t.is_float:
            raise fail(name, "needs a float operand", t)
        return t

    return rule


def _same_unary(ts: list[TensorType]) -> TensorType:
    return ts[0]


def _binary(name, out_dtype=None):
    def rule(ts: list[TensorType]) -> TensorType:
        a, b = ts
        if a.dtype != b.dtype:
            raise fail(name, "operand dtypes differ (the tracer casts first)", a, b)
        return TensorType(broadcast_shapes(name, ts), out_dtype or a.dtype)

    return rule


def _where_rule(ts: list[TensorType]) -> TensorType:
    c, x, y = ts
    if c.dtype != np.bool_:
        raise fail("where", "condition must be bool", c)
    if x.dtype != y.dtype:
        raise fail("where", "branch dtypes differ", x, y)
    return TensorType(broadcast_shapes("where", ts), x.dtype)


def _astype_rule(ts: list[TensorType], *, dtype) -> TensorType:
    return TensorType(ts[0].shape, dtype)


# -- samples ---------------------------------------------------------------------------

_SHAPES = [(), (5,), (3, 4), (2, 3, 2)]
_BIN_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((), (2, 3)), ((4,), (3, 4)), ((5,), ())]


def _unary_samples(lo=-2.0, hi=2.0, avoid=None):
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


def _binary_samples(lo=-2.0, hi=2.0, lo2=None, hi2=None, separate=False):
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


def _mask_samples(rng):
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
    register(
        OpDef(
            name=name,
            shape_rule=rule or _float_unary(name),
            impl=impl,
            vjp=vjp,
            jvp=jvp,
            codegen=ScalarExpr(tmpl),
            kind=Kind.ELEMENTWISE,
            cost=cost,
            samples=samples or _unary_samples(),
            grad_doc=doc,
            differentiable=differentiable,
            library=library,
        )
    )


# d(-x) = -1
_unary(
    "negative",
    np.negative,
    lambda ct, x, *, out: (-ct,),
    lambda t, x, *, out: -t[0],
    "(-{0})",
    rule=_same_unary,
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
    _unary_samples(0.2, 3.0),
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
    _unary_samples(-0.5, 2.0),
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
    _unary_samples(0.2, 3.0),
    doc="ct / (2 sqrt(x)); inf at x = 0",
)
_unary(
    "square",
    np.square,
    lambda ct, x, *, out: (ct * (2.0 * x),),
    lambda t, x, *, out: t[0] * (2.0 * x),
    "({0} * {0})",
    rule=_same_unary,  # integers too, as in NumPy (x**2 on an index array)
    doc="2 x ct",
)
# subgradient at 0 is 0 (sign(0) = 0), as in JAX and PyTorch
_unary(
    "abs",
    np.abs,
    lambda ct, x, *, out: (ct * np.sign(x),),
    lambda t, x, *, out: t[0] * np.sign(x),
    "abs({0})",
    samples=_unary_samples(avoid=0.0),
    rule=_same_unary,
    doc="ct * sign(x); subgradient 0 at x = 0",
)
_unary(
    "sign",
    np.sign,
    None,
    None,
    # typed, and NaN stays NaN (np.sign(nan) is nan)
    "({T}({0} > {T}(0)) - {T}({0} < {T}(0)) if {0} == {0} else {0})",
    samples=_unary_samples(avoid=0.0),
    differentiable=False,
    rule=_same_unary,
    doc="zero gradient (piecewise constant)",
)


# -- binary ops --------------------------------------------------------------------------


def _binop(name, impl, vjp, jvp, tmpl, samples=None, doc="", cost=Cost.CHEAP, library=()):
    register(
        OpDef(
            name=name,
            shape_rule=_binary(name),
            impl=impl,
            vjp=vjp,
            jvp=jvp,
            codegen=ScalarExpr(tmpl),
            kind=Kind.ELEMENTWISE,
            cost=cost,
            samples=samples or _binary_samples(),
            grad_doc=doc,
            library=library,
        )
    )


def _jvp_sum(*terms):
    terms = [t for t in terms if t is not None]
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


_binop(
    "add",
    np.add,
    lambda ct, x, y, *, out: (ct, ct),
    lambda t, x, y, *, out: _jvp_sum(t[0], t[1]),
    "({0} + {1})",
    doc="ct, ct",
)
_binop(
    "subtract",
    np.subtract,
    lambda ct, x, y, *, out: (ct, -ct),
    lambda t, x, y, *, out: _jvp_sum(t[0], None if t[1] is None else -t[1]),
    "({0} - {1})",
    doc="ct, -ct",
)
_binop(
    "multiply",
    np.multiply,
    lambda ct, x, y, *, out: (ct * y, ct * x),
    lambda t, x, y, *, out: _jvp_sum(
        None if t[0] is None else t[0] * y, None if t[1] is None else x * t[1]
    ),
    "({0} * {1})",
    doc="ct * y, ct * x",
)


def _div_vjp(ct, x, y, *, out):
    g = ct / y
    return (g, -(g * out))  # d(x/y)/dy = -x/y^2 = -out/y


def _div_jvp(t, x, y, *, out):
    a = None if t[0] is None else t[0] / y
    b = None if t[1] is None else -(t[1] * out / y)
    return _jvp_sum(a, b)


_binop(
    "divide",
    np.divide,
    _div_vjp,
    _div_jvp,
    "({0} / {1})",
    _binary_samples(-2, 2, 0.5, 2.0),
    doc="ct / y, -ct * x / y^2",
)


def _safe_log(x):
    # d(x**y)/dy = x**y log x; where x == 0 use 0 so 0**y (y > 0) has a finite gradient
    return np.where(x == 0, np.zeros_like(x), np.log(np.where(x == 0, np.ones_like(x), x)))


def _pow_vjp(ct, x, y, *, out):
    return (ct * y * x ** (y - 1.0), ct * out * _safe_log(x))


def _pow_jvp(t, x, y, *, out):
    a = None if t[0] is None else t[0] * y * x ** (y - 1.0)
    b = None if t[1] is None else t[1] * out * _safe_log(x)
    return _jvp_sum(a, b)


_binop(
    "power",
    np.power,
    _pow_vjp,
    _pow_jvp,
    "({0} ** {1})",
    _binary_samples(0.3, 2.0, -1.5, 2.5),
    cost=Cost.TRANSCENDENTAL,
    doc="ct * y * x^(y-1), ct * x^y * log(x) (0 where x = 0)",
    library=("float32", "float64"),
)


# ties (x == y) send the whole gradient to the first operand, so clip(x, lo, hi)
# = minimum(maximum(x, lo), hi) passes the gradient at both ends of its closed interval
def _max_vjp(ct, x, y, *, out):
    m = x >= y
    return (np.where(m, ct, np.zeros_like(ct)), np.where(m, np.zeros_like(ct), ct))


def _min_vjp(ct, x, y, *, out):
    m = x <= y
    return (np.where(m, ct, np.zeros_like(ct)), np.where(m, np.zeros_like(ct), ct))


def _select_jvp(pick):
    def jvp(t, x, y, *, out):
        m = pick(x, y)
        tx = np.zeros_like(out) if t[0] is None else t[0]
        ty = np.zeros_like(out) if t[1] is None else t[1]
        return np.where(m, tx, ty)

    return jvp


_binop(
    "maximum",
    np.maximum,
    _max_vjp,
    _select_jvp(lambda x, y: x >= y),
    "max({0}, {1}) if not ({0} != {0} or {1} != {1}) else ({0} + {1})",
    _binary_samples(separate=True),
    doc="to x where x >= y, else to y (ties go to x)",
)
_binop(
    "minimum",
    np.minimum,
    _min_vjp,
    _select_jvp(lambda x, y: x <= y),
    "min({0}, {1}) if not ({0} != {0} or {1} != {1}) else ({0} + {1})",
    _binary_samples(separate=True),
    doc="to x where x <= y, else to y (ties go to x)",
)


def _lae_vjp(ct, x, y, *, out):
    return (ct * np.exp(x - out), ct * np.exp(y - out))


def _lae_jvp(t, x, y, *, out):
    a = None if t[0] is None else t[0] * np.exp(x - out)
    b = None if t[1] is None else t[1] * np.exp(y - out)
    return _jvp_sum(a, b)


_binop(
    "logaddexp",
    np.logaddexp,
    _lae_vjp,
    _lae_jvp,
    "_logaddexp({0}, {1})",
    cost=Cost.TRANSCENDENTAL,
    doc="ct * exp(x - out), ct * exp(y - out)",
)

# -- comparisons and masks: no gradient ----------------------------------------------------

for _name, _fn, _sym in [
    ("less", np.less, "<"),
    ("less_equal", np.less_equal, "<="),
    ("greater", np.greater, ">"),
    ("greater_equal", np.greater_equal, ">="),
    ("equal", np.equal, "=="),
    ("not_equal", np.not_equal, "!="),
]:
    register(
        OpDef(
            name=_name,
            shape_rule=_binary(_name, np.dtype(bool)),
            impl=_fn,
            kind=Kind.ELEMENTWISE,
            codegen=ScalarExpr(f"({{0}} {_sym} {{1}})"),
            samples=_binary_samples(),
            differentiable=False,
            grad_doc="no gradient (boolean mask)",
        )
    )

for _name, _fn, _sym in [
    ("logical_and", np.logical_and, "and"),
    ("logical_or", np.logical_or, "or"),
]:
    register(
        OpDef(
            name=_name,
            shape_rule=_binary(_name),
            impl=_fn,
            kind=Kind.ELEMENTWISE,
            codegen=ScalarExpr(f"({{0}} {_sym} {{1}})"),
            samples=_mask_samples,
            differentiable=False,
            grad_doc="no gradient (boolean mask)",
        )
    )

register(
    OpDef(
        name="logical_not",
        shape_rule=_same_unary,
        impl=np.logical_not,
        kind=Kind.ELEMENTWISE,
        codegen=ScalarExpr("(not {0})"),
        samples=lambda rng: [Sample((rng.uniform(-1, 1, (3, 2)) > 0,))],
        differentiable=False,
        grad_doc="no gradient (boolean mask)",
    )
)


# -- where and astype ------------------------------------------------------------------------


def _where_vjp(ct, c, x, y, *, out):
    z = np.zeros_like(ct)
    return (None, np.where(c, ct, z), np.where(c, z, ct))


def _where_jvp(t, c, x, y, *, out):
    tx = np.zeros_like(out) if t[1] is None else t[1]
    ty = np.zeros_like(out) if t[2] is None else t[2]
    return np.where(c, tx, ty)


def _where_samples(rng):
    return [
        Sample((rng.uniform(-1, 1, (3, 4)) > 0, rng.normal(size=(3, 4)), rng.normal(size=(4,)))),
        Sample((rng.uniform(-1, 1, (3, 1)) > 0, rng.normal(size=()), rng.normal(size=(1, 5)))),
    ]


register(
    OpDef(
        name="where",
        shape_rule=_where_rule,
        impl=np.where,
        kind=Kind.ELEMENTWISE,
        vjp=_where_vjp,
        jvp=_where_jvp,
        codegen=ScalarExpr("({1} if {0} else {2})"),
        samples=_where_samples,
        grad_doc="to x where cond, else to y; none to cond",
    )
)


def _astype_impl(x, *, dtype):
    return np.asarray(x).astype(dtype)


def _astype_vjp(ct, x, *, out, dtype):
    return (ct.astype(x.dtype),) if x.dtype in (np.float32, np.float64) else (None,)


def _astype_jvp(t, x, *, out, dtype):
    return t[0].astype(dtype)


register(
    OpDef(
        name="astype",
        shape_rule=_astype_rule,
        impl=_astype_impl,
        kind=Kind.ELEMENTWISE,
        vjp=_astype_vjp,
        jvp=_astype_jvp,
        codegen=ScalarExpr("{T}({0})"),
        samples=lambda rng: [
            Sample((rng.normal(size=(3, 4)),), {"dtype": np.dtype("float32")}),
            Sample((rng.normal(size=(5,)).astype(np.float32),), {"dtype": np.dtype("float64")}),
        ],
        grad_doc="ct cast back to the input dtype; none from int/bool",
    )
)
