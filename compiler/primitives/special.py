"""SciPy's special functions that losses use: expit, logit, erf, erfc, erfinv, ndtr, log_ndtr,
gammaln, polygamma (digamma is polygamma of order 0), xlogy, xlog1py.

The references are SciPy's ufuncs (wrapped, so the driver never mistakes them for NumPy's),
named by path and imported on first use: `import scipy.special` costs more than the rest of
`import compiler` (docs/caching.md), and a process whose loss uses none of these never pays it;
the Numba templates use `math`, so these fuse into loop nests, except polygamma, which runs
SciPy's own routine from the driver. logsumexp, softmax and log_softmax are compositions of
existing primitives (compiler/trace/scipy_api.py), not records.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.elementwise import elementwise_op, float_unary
from compiler.primitives.registry import (
    Cost,
    Kind,
    OpDef,
    Sample,
    ScalarExpr,
    bind,
    broadcast_shapes,
    fail,
    register,
)

_SQRT_2_OVER_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _float_binary(name):
    def rule(ts: list[TensorType]) -> TensorType:
        a, b = ts
        if a.dtype != b.dtype or not a.is_float:
            raise fail(name, "operands must share a float dtype (the tracer casts first)", a, b)
        return TensorType(broadcast_shapes(name, ts), a.dtype)

    return rule


def unary_samples(lo: float, hi: float):
    """Two small cases (a float64 matrix, a float32 vector): each costs Numba compiles."""

    def gen(rng):
        return [
            Sample((rng.uniform(lo, hi, (3, 4)),)),
            Sample((rng.uniform(lo, hi, (5,)).astype(np.float32),)),
        ]

    return gen


def binary_samples(lo: float, hi: float, lo2: float, hi2: float):
    def gen(rng):
        return [
            Sample((rng.uniform(lo, hi, (3, 4)), rng.uniform(lo2, hi2, (3, 4)))),
            Sample((rng.uniform(lo, hi, (3, 1)), rng.uniform(lo2, hi2, (1, 4)))),
            Sample(
                (
                    rng.uniform(lo, hi, (2, 3)).astype(np.float32),
                    rng.uniform(lo2, hi2, (2, 3)).astype(np.float32),
                )
            ),
        ]

    return gen


def _sp():
    """scipy.special, imported on first use (the module doc)."""
    sp = sys.modules.get("scipy.special")
    if sp is None:
        import scipy.special as sp
    return sp


def _ref(name):
    """SciPy's ufunc `name` as a plain function, keeping the input's float dtype."""

    def impl(*xs, **attrs):
        with np.errstate(all="ignore"):
            out = np.asarray(getattr(_sp(), name)(*xs))
        return out.astype(np.result_type(*xs), copy=False)

    impl.__name__ = name
    return impl


def _unary(name, deriv, tmpl, samples, doc, cost=Cost.TRANSCENDENTAL):
    """Register SciPy's ufunc `name` as an elementwise op whose derivative is
    `deriv(x, out)`."""
    register(
        OpDef(
            name=name,
            shape_rule=float_unary(name),
            impl=_ref(name),
            ufunc=f"scipy.special.{name}",
            vjp=lambda ct, x, *, out, **a: (ct * deriv(x, out, **a),),
            jvp=lambda t, x, *, out, **a: t[0] * deriv(x, out, **a),
            codegen=ScalarExpr(tmpl) if tmpl.startswith("(") else tmpl,
            kind=Kind.ELEMENTWISE,
            cost=cost,
            samples=samples,
            grad_doc=doc,
        )
    )


# d expit = expit (1 - expit)
_unary(
    "expit",
    lambda x, out: out * (1.0 - out),
    "({T}(1) / ({T}(1) + math.exp(-{0})))",
    unary_samples(-4, 4),
    "ct * out * (1 - out) (reuses the output)",
)
# d logit = 1 / (x (1 - x))
_unary(
    "logit",
    lambda x, out: 1.0 / (x * (1.0 - x)),
    "(math.log({0} / ({T}(1) - {0})))",
    unary_samples(0.05, 0.95),
    "ct / (x (1 - x)); inf at 0 and 1",
)
_unary(
    "erf",
    lambda x, out: _SQRT_2_OVER_PI * np.exp(-(x * x)),
    "(math.erf({0}))",
    unary_samples(-2, 2),
    "ct * 2/sqrt(pi) * exp(-x^2)",
)
_unary(
    "erfc",
    lambda x, out: -_SQRT_2_OVER_PI * np.exp(-(x * x)),
    "(math.erfc({0}))",
    unary_samples(-2, 2),
    "-ct * 2/sqrt(pi) * exp(-x^2)",
)
# erf(erfinv(y)) = y, so d erfinv = sqrt(pi)/2 exp(erfinv^2)
_unary(
    "erfinv",
    lambda x, out: (1.0 / _SQRT_2_OVER_PI) * np.exp(out * out),
    "erfinv",
    unary_samples(-0.9, 0.9),
    "ct * sqrt(pi)/2 * exp(out^2) (SciPy's routine from the driver)",
)
_unary(
    "ndtr",
    lambda x, out: _INV_SQRT_2PI * np.exp(-0.5 * (x * x)),
    "({T}(0.5) * math.erfc(-{0} * {T}(0.7071067811865476)))",
    unary_samples(-3, 3),
    "ct * phi(x), the normal density",
)
# d log ndtr = phi(x) / ndtr(x) = exp(-x^2/2 - log_ndtr(x)) / sqrt(2 pi): no 0/0 in the tail
_unary(
    "log_ndtr",
    lambda x, out: _INV_SQRT_2PI * np.exp(-0.5 * (x * x) - out),
    "log_ndtr",
    unary_samples(-5, 3),
    "ct * exp(-x^2/2 - out) / sqrt(2 pi) (SciPy's routine from the driver)",
)
_unary(
    "gammaln",
    lambda x, out: bind("polygamma", x, n=0),
    "(math.lgamma({0}))",
    unary_samples(0.5, 4),
    "ct * digamma(x)",
)


def _polygamma_impl(x, *, n):
    with np.errstate(all="ignore"):
        return np.asarray(_sp().polygamma(n, x)).astype(np.asarray(x).dtype, copy=False)


register(
    OpDef(
        name="polygamma",
        shape_rule=float_unary("polygamma"),
        impl=_polygamma_impl,
        vjp=lambda ct, x, *, out, n: (ct * bind("polygamma", x, n=n + 1),),
        jvp=lambda t, x, *, out, n: t[0] * bind("polygamma", x, n=n + 1),
        codegen="polygamma",
        kind=Kind.ELEMENTWISE,
        cost=Cost.TRANSCENDENTAL,
        samples=lambda rng: [
            Sample((rng.uniform(0.5, 4, (3, 4)),), {"n": 0}),
            Sample((rng.uniform(0.5, 4, (5,)).astype(np.float32),), {"n": 1}),
        ],
        grad_doc="ct * polygamma(n + 1, x) (digamma is n = 0; SciPy's routine from the driver)",
    )
)


def register_binary(
    name,
    impl,
    dx,
    dy,
    tmpl,
    samples,
    doc,
    *,
    cost=Cost.TRANSCENDENTAL,
    differentiable=True,
    rule=None,
    ufunc=None,
):
    """Register a broadcasting binary op from its partial derivatives `dx(x, y, out)` and
    `dy(x, y, out)` (factors of the cotangent/tangent)."""

    def vjp(ct, x, y, *, out):
        return (ct * dx(x, y, out), ct * dy(x, y, out))

    def jvp(t, x, y, *, out):
        terms = [a * d(x, y, out) for a, d in zip(t, (dx, dy)) if a is not None]
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    elementwise_op(
        name,
        rule or _float_binary(name),
        impl,
        vjp if differentiable else None,
        jvp if differentiable else None,
        tmpl,
        cost,
        samples,
        doc,
        differentiable,
        ufunc=ufunc,
    )


# xlogy(x, y) = x log y (0 where x = 0): d/dx = log y, d/dy = x / y
register_binary(
    "xlogy",
    _ref("xlogy"),
    lambda x, y, out: np.log(y),
    lambda x, y, out: x / y,
    "({T}(0) if {0} == {T}(0) and {1} == {1} else {0} * math.log({1}))",
    binary_samples(-2, 2, 0.3, 2.5),
    "ct * log(y), ct * x / y",
    ufunc="scipy.special.xlogy",
)
register_binary(
    "xlog1py",
    _ref("xlog1py"),
    lambda x, y, out: np.log1p(y),
    lambda x, y, out: x / (1.0 + y),
    "({T}(0) if {0} == {T}(0) and {1} == {1} else {0} * math.log1p({1}))",
    binary_samples(-2, 2, -0.5, 2.0),
    "ct * log1p(y), ct * x / (1 + y)",
    ufunc="scipy.special.xlog1py",
)
