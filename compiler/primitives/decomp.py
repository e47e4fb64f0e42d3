"""Matrix decompositions with several results: eigh, svd, qr.

An op has one output, so each packs its results into one array along the second-to-last
axis and the tracer hands out slices (views, free): `eigh` gives (..., n+1, n) = [w; V];
`svd` (reduced) gives (..., m+1+n, k) = [U; s; V] with V = Vh^T; `qr` (reduced, m >= n)
gives (..., m+n, n) = [Q; R]. The forward is one LAPACK call from the driver.

Gradients: eigh and svd follow Giles 2008 and Townsend 2016 ("Differentiating the singular
value decomposition"); qr follows Walter & Lehmann 2018 as JAX and PyTorch implement it.
At repeated eigenvalues (singular values) the eigenvector (singular vector) gradient is not
defined; gradc drops the 1/(w_j - w_i) terms of exactly equal pairs, which is exact for a
loss that depends on the eigenvalues and on the spans of repeated eigenvectors, and wrong
for one that depends on a particular basis of such a span (no answer would be right there).
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType
from compiler.primitives.lapack import _add, _diag_part, _register, tri
from compiler.primitives.linalg import mT
from compiler.primitives.registry import Sample, bind, fail


def _mm(a, b):
    return bind("matmul", a, b)


def _rows(x, start, count):
    """x[..., start:start+count, :] (a slice of the packed result)."""
    nd = len(x.shape)
    index = tuple((0, 1, d) for d in x.shape[:-2]) + ((start, 1, count), (0, 1, x.shape[-1]))
    assert nd >= 2
    return bind("slice", x, index=index)


def _pack(*parts):
    return bind("concatenate", *parts, axis=len(parts[0].shape) - 2)


def _row(v):
    """(..., k) -> (..., 1, k)."""
    return bind("reshape", v, shape=tuple(v.shape[:-1]) + (1, v.shape[-1]))


def _vec(r):
    """(..., 1, k) -> (..., k)."""
    return bind("reshape", r, shape=tuple(r.shape[:-2]) + (r.shape[-1],))


def _diag(v):
    """(..., k) -> (..., k, k) with v on the diagonal."""
    k = v.shape[-1]
    return _row(v) * np.eye(k, dtype=v.dtype)


def _inv_gaps(w):
    """F[i, j] = 1 / (w[j] - w[i]) off the diagonal, 0 on it and at exact ties."""
    wr = _row(w)
    gap = wr - mT(wr)
    tie = gap == 0.0
    return np.where(tie, np.zeros_like(gap), 1.0 / np.where(tie, np.ones_like(gap), gap))


def _sym_lower(g):
    """Gradient for a symmetric matrix of which only the lower triangle is read."""
    gs = 0.5 * (g + mT(g))
    return 2.0 * tri(gs, -1) + _diag_part(gs)


# -- eigh -------------------------------------------------------------------------------------


def _eigh_rule(ts):
    (a,) = ts
    if a.ndim < 2 or a.shape[-1] != a.shape[-2] or not a.is_float:
        raise fail("eigh", "needs a float (..., n, n) matrix", a)
    n = a.shape[-1]
    return TensorType(a.shape[:-2] + (n + 1, n), a.dtype)


def _eigh_impl(a):
    w, v = np.linalg.eigh(a)  # UPLO='L': the lower triangle is read
    return np.concatenate([w[..., None, :], v], axis=-2)


def _eigh_parts(out):
    n = out.shape[-1]
    return _vec(_rows(out, 0, 1)), _rows(out, 1, n)


def _eigh_vjp(ct, a, *, out):
    w, v = _eigh_parts(out)
    n = v.shape[-1]
    cw, cv = _vec(_rows(ct, 0, 1)), _rows(ct, 1, n)
    inner = _diag(cw) + _inv_gaps(w) * _mm(mT(v), cv)
    return (_sym_lower(_mm(_mm(v, inner), mT(v))),)


def _eigh_jvp(t, a, *, out):
    w, v = _eigh_parts(out)
    da = tri(t[0]) + mT(tri(t[0], -1))
    s = _mm(_mm(mT(v), da), v)
    dw = _row(_vec_diag(s))
    dv = _mm(v, _inv_gaps(w) * s)
    return _pack(dw, dv)


def _vec_diag(s):
    """The diagonal of the last two axes as (..., k)."""
    return bind(
        "sum", s * np.eye(s.shape[-1], dtype=s.dtype), axis=(len(s.shape) - 1,), keepdims=False
    )


def _sym(rng, shape, dtype=np.float64):
    m = rng.normal(size=shape)
    return ((m + np.swapaxes(m, -1, -2)) / 2 + np.diag(np.arange(shape[-1]) * 2.0)).astype(dtype)


_register(
    "eigh",
    _eigh_rule,
    _eigh_impl,
    _eigh_vjp,
    _eigh_jvp,
    lambda rng: [
        Sample((_sym(rng, (3, 3)),)),
        Sample((_sym(rng, (2, 3, 3)),)),
        Sample((_sym(rng, (2, 2), np.float32),)),
    ],
    "V (diag(ct_w) + F o (V^T ct_V)) V^T, F = 1/(w_j - w_i) (0 at ties), on the lower triangle",
)

# -- svd (reduced) --------------------------------------------------------------------------


def _svd_rule(ts):
    (a,) = ts
    if a.ndim < 2 or not a.is_float:
        raise fail("svd", "needs a float (..., m, n) matrix", a)
    m, n = a.shape[-2:]
    return TensorType(a.shape[:-2] + (m + 1 + n, min(m, n)), a.dtype)


def _svd_impl(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return np.concatenate([u, s[..., None, :], np.swapaxes(vh, -1, -2)], axis=-2)


def _svd_parts(out, m, n):
    return _rows(out, 0, m), _vec(_rows(out, m, 1)), _rows(out, m + 1, n)


def _safe_inv(s):
    zero = s == 0.0
    return np.where(zero, np.zeros_like(s), 1.0 / np.where(zero, np.ones_like(s), s))


def _svd_vjp(ct, a, *, out):
    m, n = a.shape[-2:]
    u, s, v = _svd_parts(out, m, n)
    cu, cs, cv = _svd_parts(ct, m, n)
    s2 = _row(s * s)
    e = _inv_gaps(_vec(s2))  # 1 / (s_k^2 - s_j^2)
    uc, vc = _mm(mT(u), cu), _mm(mT(v), cv)
    sr = _row(s)
    inner = _diag(cs) + (e * (uc - mT(uc))) * sr + mT(sr) * (e * (vc - mT(vc)))
    g = _mm(_mm(u, inner), mT(v))
    sinv = _row(_safe_inv(s))
    if m > n:  # (I - U U^T) ct_U S^-1 V^T
        g = g + _mm((cu - _mm(u, uc)) * sinv, mT(v))
    if n > m:  # U S^-1 ct_V^T (I - V V^T)
        g = g + _mm(u, mT((cv - _mm(v, vc)) * sinv))
    return (g,)


def _svd_jvp(t, a, *, out):
    m, n = a.shape[-2:]
    u, s, v = _svd_parts(out, m, n)
    da = t[0]
    ds_mat = _mm(_mm(mT(u), da), v)
    ds = _vec_diag(ds_mat)
    sr = _row(s)
    f = _inv_gaps(_vec(sr * sr))  # F[i, j] = 1 / (s_j^2 - s_i^2)
    dss, sds = ds_mat * sr, mT(sr) * ds_mat
    sinv = _row(_safe_inv(s))
    k = s.shape[-1]
    diag_fix = 0.5 * (ds_mat - mT(ds_mat)) * (np.eye(k, dtype=s.dtype) * sinv)
    du = _mm(u, f * (dss + mT(dss)) + diag_fix)
    dv = _mm(v, f * (sds + mT(sds)))
    if m > n:
        dav = _mm(da, v)
        du = du + (dav - _mm(u, _mm(mT(u), dav))) * sinv
    if n > m:
        dau = _mm(mT(da), u)
        dv = dv + (dau - _mm(v, _mm(mT(v), dau))) * sinv
    return _pack(du, _row(ds), dv)


_register(
    "svd",
    _svd_rule,
    _svd_impl,
    _svd_vjp,
    _svd_jvp,
    lambda rng: [
        Sample((rng.normal(size=(3, 3)),)),
        Sample((rng.normal(size=(2, 4, 3)),)),
        Sample((rng.normal(size=(2, 4)).astype(np.float32),)),
    ],
    "Townsend 2016: U (diag(ct_s) + S-weighted skew parts / (s_k^2 - s_j^2)) V^T, plus the "
    "off-span terms for non-square A; the 1/gap terms of equal singular values are dropped",
)

# -- qr (reduced, m >= n) ----------------------------------------------------------------------


def _qr_rule(ts):
    (a,) = ts
    if a.ndim < 2 or not a.is_float or a.shape[-2] < a.shape[-1]:
        raise fail("qr", "needs a float (..., m, n) matrix with m >= n", a)
    m, n = a.shape[-2:]
    return TensorType(a.shape[:-2] + (m + n, n), a.dtype)


def _qr_impl(a):
    q, r = np.linalg.qr(a, mode="reduced")
    return np.concatenate([q, r], axis=-2)


def _copyltu(x):
    low = tri(x, -1)
    return low + mT(low) + _diag_part(x)


def _qr_vjp(ct, a, *, out):
    m, n = a.shape[-2:]
    q, r = _rows(out, 0, m), _rows(out, m, n)
    cq, cr = _rows(ct, 0, m), _rows(ct, m, n)
    mm = _mm(r, mT(cr)) - _mm(mT(cq), q)
    b = cq + _mm(q, _copyltu(mm))
    # grad = b R^-T: solve R x^T = b^T
    return (mT(bind("solve_triangular", r, mT(b), lower=False)),)


def _qr_jvp(t, a, *, out):
    m, n = a.shape[-2:]
    q, r = _rows(out, 0, m), _rows(out, m, n)
    dx_rinv = mT(bind("solve_triangular", mT(r), mT(t[0]), lower=True))  # dA R^-1
    qt = _mm(mT(q), dx_rinv)
    low = tri(qt, -1)
    do = low - mT(low)
    dq = _add(_mm(q, do - qt), dx_rinv)
    dr = _mm(qt - do, r)
    return _pack(dq, dr)


_register(
    "qr",
    _qr_rule,
    _qr_impl,
    _qr_vjp,
    _qr_jvp,
    lambda rng: [
        Sample((rng.normal(size=(3, 3)),)),
        Sample((rng.normal(size=(2, 4, 3)),)),
        Sample((rng.normal(size=(4, 2)).astype(np.float32),)),
    ],
    "Walter & Lehmann 2018: (ct_Q + Q copyltu(R ct_R^T - ct_Q^T Q)) R^-T (m >= n)",
)
