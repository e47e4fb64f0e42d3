"""Elementwise ops with several operands: binary arithmetic, comparisons and masks, where,
and astype (the unary math and the shared shape rules and samples are in `elementwise.py`)."""

from __future__ import annotations

import numpy as np

from compiler.primitives.elementwise import (
    astype_rule,
    binary_rule,
    binary_samples,
    elementwise_op,
    mask_samples,
    same_unary,
    where_rule,
)
from compiler.primitives.registry import Cost, Kind, OpDef, Sample, ScalarExpr, register

# -- binary ops --------------------------------------------------------------------------


def _binop(
    name, impl, vjp, jvp, tmpl, samples=None, doc="", cost=Cost.CHEAP, library=(), comm=False
):
    samples = samples or binary_samples()
    rule = binary_rule(name)
    elementwise_op(
        name, rule, impl, vjp, jvp, tmpl, cost, samples, doc, True, library, commutative=comm
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
    comm=True,
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
    comm=True,
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
    binary_samples(-2, 2, 0.5, 2.0),
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
    binary_samples(0.3, 2.0, -1.5, 2.5),
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
    "({0} if {0} > {1} else {1}) if not ({0} != {0} or {1} != {1}) else ({0} + {1})",
    binary_samples(separate=True),
    doc="to x where x >= y, else to y (ties go to x)",
    comm=False,  # maximum(0.0, -0.0) is -0.0, maximum(-0.0, 0.0) is 0.0
)
_binop(
    "minimum",
    np.minimum,
    _min_vjp,
    _select_jvp(lambda x, y: x <= y),
    "({0} if {0} < {1} else {1}) if not ({0} != {0} or {1} != {1}) else ({0} + {1})",
    binary_samples(separate=True),
    doc="to x where x <= y, else to y (ties go to x)",
    comm=False,  # signed zeros, as maximum
)


def _lae_vjp(ct, x, y, *, out):
    return (ct * np.exp(x - out), ct * np.exp(y - out))


def _lae_jvp(t, x, y, *, out):
    a = None if t[0] is None else t[0] * np.exp(x - out)
    b = None if t[1] is None else t[1] * np.exp(y - out)
    return _jvp_sum(a, b)


# NumPy's npy_logaddexp spelled as selects around exp and log1p, so a loop's vectoriser can
# widen both to SIMD (libmvec, codegen/simd.py): equal operands (same-sign infinities too)
# give x + log 2; otherwise the larger plus log1p(exp(-|x - y|)); NaN propagates through
# x - y. The scalar `np.logaddexp` Numba jits cost ~20 ns per element as two libm calls; the
# L-BFGS client's 569-row loop spent most of its time there (docs/performance.md).
_LAE = (
    "(({0} + {T}(0.6931471805599453)) if {0} == {1} else "
    "((({0} if {0} > {1} else {1}) + math.log1p(math.exp(-abs({0} - {1})))) "
    "if {0} - {1} == {0} - {1} else ({0} - {1})))"
)

_binop(
    "logaddexp",
    np.logaddexp,
    _lae_vjp,
    _lae_jvp,
    _LAE,
    cost=Cost.TRANSCENDENTAL,
    doc="ct * exp(x - out), ct * exp(y - out)",
    comm=True,
)

# -- comparisons and masks: no gradient ----------------------------------------------------

for _name, _fn, _sym, _comm in [
    ("less", np.less, "<", False),
    ("less_equal", np.less_equal, "<=", False),
    ("greater", np.greater, ">", False),
    ("greater_equal", np.greater_equal, ">=", False),
    ("equal", np.equal, "==", True),
    ("not_equal", np.not_equal, "!=", True),
]:
    register(
        OpDef(
            name=_name,
            shape_rule=binary_rule(_name, np.dtype(bool)),
            impl=_fn,
            kind=Kind.ELEMENTWISE,
            codegen=ScalarExpr(f"({{0}} {_sym} {{1}})"),
            samples=binary_samples(),
            commutative=_comm,
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
            shape_rule=binary_rule(_name),
            impl=_fn,
            kind=Kind.ELEMENTWISE,
            codegen=ScalarExpr(f"({{0}} {_sym} {{1}})"),
            samples=mask_samples,
            commutative=True,
            differentiable=False,
            grad_doc="no gradient (boolean mask)",
        )
    )

register(
    OpDef(
        name="logical_not",
        shape_rule=same_unary,
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
        shape_rule=where_rule,
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
        shape_rule=astype_rule,
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
