"""Dense linear algebra through LAPACK: solve, inv, logabsdet (+ det_sign), cholesky,
solve_triangular. All take a batch of leading axes (`(..., n, n)`), as NumPy does; the tracer
broadcasts batch axes first. The forward runs NumPy's/SciPy's LAPACK call from the driver.

Gradients follow Giles, "Collected matrix derivative results for forward and reverse mode
AD" (2008), and Murray, "Differentiation of the Cholesky decomposition" (2016). Like NumPy,
`cholesky` reads only the lower triangle and `solve_triangular` only its triangle, so the
cotangent of the matrix lives on that triangle (what finite differences see); a symmetric
matrix built from parameters receives the full symmetric gradient through its construction.
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.linalg import mT
from compiler.primitives.registry import Cost, Kind, OpDef, Sample, bind, fail, register


def _square(name: str, t: TensorType) -> int:
    if t.ndim < 2 or t.shape[-1] != t.shape[-2] or not t.is_float:
        raise fail(name, "needs a float (..., n, n) matrix", t)
    return t.shape[-1]


def _unary_rule(name):
    def rule(ts, **attrs):
        (a,) = ts
        _square(name, a)
        return a

    return rule


def _scalar_rule(name, dtype=None):
    def rule(ts):
        (a,) = ts
        _square(name, a)
        return TensorType(a.shape[:-2], dtype or a.dtype)

    return rule


def _solve_rule(name):
    def rule(ts, **attrs):
        a, b = ts
        n = _square(name, a)
        if b.dtype != a.dtype or b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2]:
            raise fail(name, "needs (..., n, n) and (..., n, k) with equal batch axes", a, b)
        if b.shape[-2] != n:
            raise fail(name, f"right-hand side has {b.shape[-2]} rows for a {n}x{n} matrix", a, b)
        return b

    return rule


# -- samples: well-conditioned, small (every sample is a finite-difference check) ------------


def _spd(rng, shape, dtype=np.float64):
    m = rng.normal(size=shape)
    n = shape[-1]
    return (m @ np.swapaxes(m, -1, -2) + n * np.eye(n)).astype(dtype)


def _general(rng, shape, dtype=np.float64):
    n = shape[-1]
    return (rng.normal(size=shape) + 3.0 * np.eye(n)).astype(dtype)


def _lower(rng, shape, dtype=np.float64):
    n = shape[-1]
    diag = np.eye(n) * rng.uniform(1.5, 2.5, shape[:-2] + (1, n))
    return (np.tril(rng.normal(size=shape), -1) + diag).astype(dtype)


def _one_matrix(make):
    return lambda rng: [
        Sample((make(rng, (3, 3)),)),
        Sample((make(rng, (2, 3, 3)),)),
        Sample((make(rng, (2, 2), np.float32),)),
    ]


def _matrix_rhs(make):
    return lambda rng: [
        Sample((make(rng, (3, 3)), rng.normal(size=(3, 2)))),
        Sample((make(rng, (2, 3, 3)), rng.normal(size=(2, 3, 1)))),
        Sample((make(rng, (2, 2), np.float32), rng.normal(size=(2, 3)).astype(np.float32))),
    ]


def _batched(fn):
    """Apply a 2-D routine over leading batch axes (SciPy's triangular solve is 2-D)."""

    def impl(a, b, **attrs):
        a, b = np.asarray(a), np.asarray(b)
        out = np.empty(b.shape, np.result_type(a, b))
        for idx in np.ndindex(a.shape[:-2]):
            out[idx] = fn(a[idx], b[idx], **attrs)
        return out

    return impl


def _register(name, rule, impl, vjp, jvp, samples, doc, differentiable=True):
    register(
        OpDef(
            name=name,
            shape_rule=rule,
            impl=impl,
            vjp=vjp,
            jvp=jvp,
            kind=Kind.LINALG,
            cost=Cost.EXPENSIVE,
            codegen="lapack",
            samples=samples,
            grad_doc=doc,
            differentiable=differentiable,
        )
    )


def _add(a, b):
    if a is None:
        return b
    return a if b is None else a + b


# -- solve ---------------------------------------------------------------------------------


def _solve_vjp(ct, a, b, *, out):
    # X = A^-1 B: grad_B = A^-T ct, grad_A = -grad_B X^T
    ct_b = bind("solve", mT(a), ct)
    return (-bind("matmul", ct_b, mT(out)), ct_b)


def _solve_jvp(t, a, b, *, out):
    rhs = _add(t[1], None if t[0] is None else -bind("matmul", t[0], out))
    return bind("solve", a, rhs)


_register(
    "solve",
    _solve_rule("solve"),
    lambda a, b: np.linalg.solve(a, b),
    _solve_vjp,
    _solve_jvp,
    _matrix_rhs(_general),
    "A^-T ct to B; -(A^-T ct) X^T to A",
)

# -- inv -------------------------------------------------------------------------------------


def _inv_vjp(ct, a, *, out):
    return (-bind("matmul", bind("matmul", mT(out), ct), mT(out)),)


def _inv_jvp(t, a, *, out):
    return -bind("matmul", bind("matmul", out, t[0]), out)


_register(
    "inv",
    _unary_rule("inv"),
    lambda a: np.linalg.inv(a),
    _inv_vjp,
    _inv_jvp,
    _one_matrix(_general),
    "-A^-T ct A^-T",
)

# -- slogdet: logabsdet (differentiable) and det_sign (piecewise constant) ------------------------


def _logabsdet_vjp(ct, a, *, out):
    c = bind("reshape", ct, shape=tuple(ct.shape) + (1, 1))
    return (c * mT(bind("inv", a)),)


def _logabsdet_jvp(t, a, *, out):
    # d log|det A| = tr(A^-1 dA) = <A^-T, dA>
    nd = len(a.shape)
    return bind("sum", mT(bind("inv", a)) * t[0], axis=(nd - 2, nd - 1), keepdims=False)


_register(
    "logabsdet",
    _scalar_rule("logabsdet"),
    lambda a: np.asarray(np.linalg.slogdet(a)[1]),
    _logabsdet_vjp,
    _logabsdet_jvp,
    _one_matrix(_general),
    "ct A^-T (slogdet's second result; -inf and no gradient at a singular matrix)",
)
_register(
    "det_sign",
    _scalar_rule("det_sign"),
    lambda a: np.asarray(np.linalg.slogdet(a)[0]),
    None,
    None,
    _one_matrix(_general),
    "zero gradient (slogdet's sign is piecewise constant)",
    differentiable=False,
)

# -- triangular helpers (NumPy arrays or tracers) ----------------------------------------------


def tri(x, k: int = 0, lower: bool = True):
    """The lower (tril, k) or upper (triu, k) triangle of the last two axes; 0 elsewhere."""
    n, m = x.shape[-2], x.shape[-1]
    mask = np.tri(n, m, k, dtype=bool) if lower else ~np.tri(n, m, k - 1, dtype=bool)
    return np.where(mask, x, np.zeros_like(x))


def _phi(x):
    """Murray's Phi: the strict lower triangle plus half the diagonal."""
    return tri(x, -1) + 0.5 * (x - tri(x, -1) - tri(x, 1, lower=False))


def _diag_part(x):
    return x - tri(x, -1) - tri(x, 1, lower=False)


# -- solve_triangular -------------------------------------------------------------------------


def _solve_tri_vjp(ct, a, b, *, out, lower):
    ct_b = bind("solve_triangular", mT(a), ct, lower=not lower)
    return (tri(-bind("matmul", ct_b, mT(out)), 0, lower), ct_b)


def _solve_tri_jvp(t, a, b, *, out, lower):
    rhs = _add(t[1], None if t[0] is None else -bind("matmul", tri(t[0], 0, lower), out))
    return bind("solve_triangular", a, rhs, lower=lower)


def _solve_tri_samples(rng):
    out = []
    for s, low in zip(_matrix_rhs(_lower)(rng), (True, False, True)):
        a = s.args[0] if low else np.swapaxes(s.args[0], -1, -2).copy()
        out.append(Sample((a, s.args[1]), {"lower": low}))
    return out


def _solve_triangular_impl(a: np.ndarray, b: np.ndarray, lower: bool) -> np.ndarray:
    """scipy.linalg.solve_triangular on one matrix."""
    # imported on first use: scipy.linalg loads SciPy's own OpenBLAS, whose thread pool then
    # competes with NumPy's on every matmul (measured: -35% on the `deep` benchmark, 2 cores);
    # a process that never solves a triangular system never loads it (docs/architecture.md)
    import scipy.linalg

    return scipy.linalg.solve_triangular(a, b, lower=lower)


_register(
    "solve_triangular",
    _solve_rule("solve_triangular"),
    _batched(_solve_triangular_impl),
    _solve_tri_vjp,
    _solve_tri_jvp,
    _solve_tri_samples,
    "A^-T ct to B; the triangle of -(A^-T ct) X^T to A (only that triangle is read)",
)

# -- cholesky ---------------------------------------------------------------------------------


def _chol_vjp(ct, a, *, out):
    # Murray 2016: G = L^-T Phi(L^T ct) L^-1, symmetrised; A's lower triangle is what is read
    lt = mT(out)
    x = bind("solve_triangular", lt, _phi(bind("matmul", lt, ct)), lower=False)
    g = mT(bind("solve_triangular", lt, mT(x), lower=False))
    gs = 0.5 * (g + mT(g))
    return (2.0 * tri(gs, -1) + _diag_part(gs),)


def _chol_jvp(t, a, *, out):
    da = tri(t[0]) + mT(tri(t[0], -1))  # the symmetric matrix NumPy factors
    y = bind("solve_triangular", out, da, lower=True)
    s = mT(bind("solve_triangular", out, mT(y), lower=True))
    return bind("matmul", out, _phi(s))


_register(
    "cholesky",
    _unary_rule("cholesky"),
    lambda a: np.linalg.cholesky(a),
    _chol_vjp,
    _chol_jvp,
    _one_matrix(_spd),
    "Murray 2016: L^-T Phi(L^T ct) L^-1 symmetrised, on the lower triangle (the part read)",
)
