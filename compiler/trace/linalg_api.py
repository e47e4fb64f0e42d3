"""`np.linalg` and `scipy.linalg` on tracers: NumPy's calling conventions (vector right-hand
sides, broadcast batch axes, namedtuple results) turned into the LAPACK primitives
(primitives/lapack.py) and compositions of existing ones (det, norm, diagonal, trace, diag).
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from compiler.trace import creation, indexing, ops
from compiler.trace.namespace import override, override_module
from compiler.trace.numpy_api import FUNCTIONS, unsupported
from compiler.trace.tracer import Tracer, user_location

SlogdetResult = collections.namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = collections.namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = collections.namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = collections.namedtuple("QRResult", ["Q", "R"])


def _float(ctx, *xs: Any) -> list[Tracer]:
    dt = ops.common_dtype(xs)
    if dt.kind != "f":
        dt = np.dtype(np.float64)  # NumPy's linalg computes integer input in float64
    return ops.lift_all(ctx, xs, dt)


def _square(a: Tracer, fn: str) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise np.linalg.LinAlgError(
            f"{fn}: needs a square (..., n, n) matrix, got {a.type} (at {user_location()})"
        )


def _mT(x: Tracer) -> Tracer:
    return ops.swapaxes(x, -1, -2)


def _unary(op: str, fn: str):
    def handler(ctx, a, *args, **kw):
        (a,) = _float(ctx, a)
        _square(a, fn)
        return ops.emit(ctx, op, [a])

    return handler


def _rhs_op(ctx, op: str, a: Tracer, b: Tracer, fn: str, **attrs: Any) -> Tracer:
    """`op(a, b)` with NumPy's rules: a vector b is one column; batch axes broadcast."""
    _square(a, fn)
    vec = b.ndim == 1
    if vec:
        b = ops.reshape(b, (b.shape[0], 1))
    if b.shape[-2] != a.shape[-1]:
        raise ValueError(
            f"{fn}: {a.type} and right-hand side {b.type} do not match (at {user_location()})"
        )
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = ops.broadcast_to(a, batch + a.shape[-2:])
    b = ops.broadcast_to(b, batch + b.shape[-2:])
    out = ops.emit(ctx, op, [a, b], **attrs)
    return ops.reshape(out, out.shape[:-1]) if vec else out


def _solve(ctx, a, b):
    a, b = _float(ctx, a, b)
    return _rhs_op(ctx, "solve", a, b, "np.linalg.solve")


def _slogdet(ctx, a):
    (a,) = _float(ctx, a)
    _square(a, "np.linalg.slogdet")
    return SlogdetResult(ops.emit(ctx, "det_sign", [a]), ops.emit(ctx, "logabsdet", [a]))


def _det(ctx, a):
    sign, logdet = _slogdet(ctx, a)
    return sign * np.exp(logdet)


def _cholesky(ctx, a, /, *, upper=False):
    (a,) = _float(ctx, a)
    _square(a, "np.linalg.cholesky")
    if upper:  # NumPy's upper factor reads the upper triangle
        return _mT(ops.emit(ctx, "cholesky", [_mT(a)]))
    return ops.emit(ctx, "cholesky", [a])


def diagonal(ctx, a, offset=0, axis1=0, axis2=1):
    """np.diagonal as a strided slice of the flattened last two axes (a view, no new op)."""
    a = base = ctx.lift(a)
    i, j = (ops.normalize_axis(x, a.ndim, "diagonal") for x in (axis1, axis2))
    rest = [k for k in range(a.ndim) if k not in (i, j)]
    a = ops.transpose(a, tuple(rest) + (i, j))
    n, m = a.shape[-2], a.shape[-1]
    k = int(offset)
    count = max(0, min(n, m - k) if k >= 0 else min(n + k, m))
    start = k if k >= 0 else -k * m
    # a view of `a` whatever its layout (NumPy's diagonal is one): later writes into `a` show
    flat = ops.view_reshape(a, a.shape[:-2] + (n * m,))
    if count == 0:
        return ops.full(ctx, a.shape[:-2] + (0,), 0, a.dtype)
    out = indexing.getitem(flat, (..., slice(start, start + (count - 1) * (m + 1) + 1, m + 1)))
    out._layout = np.diagonal(base.layout, k, i, j)  # NumPy's strides for it
    out._view_bwd = None  # and, as in NumPy, a read-only view
    return out


def _trace(ctx, a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    if out is not None:
        raise unsupported("np.trace(out=...)")
    return ops.reduce("sum", diagonal(ctx, a, offset, axis1, axis2), -1, dtype=dtype)


def _diag(ctx, v, k=0):
    v = ctx.lift(v)
    if v.ndim == 2:
        return diagonal(ctx, v, k)
    if v.ndim != 1:
        raise ValueError("np.diag: input must be 1- or 2-d")
    n, k = v.shape[0], int(k)
    size = n + abs(k)
    z = ops.full(ctx, (size * size,), 0, v.dtype)
    start = k if k >= 0 else -k * size
    indexing.setitem(z, slice(start, start + (n - 1) * (size + 1) + 1, size + 1), v)
    return ops.reshape(Tracer(ctx, z.value), (size, size))


def _norm(ctx, x, ord=None, axis=None, keepdims=False):
    (x,) = _float(ctx, x)
    if axis is None and ord is None:
        return _keep(ops.reshape(_l2(x, None), ()), x.ndim, keepdims)
    if axis is None:
        axis = tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(ops.normalize_axis(a, x.ndim, "norm") for a in axes)
    if len(axes) == 1:
        out = _vector_norm(x, ord, axes[0])
    elif len(axes) == 2:
        out = _matrix_norm(x, ord, axes)
    else:
        raise ValueError("np.linalg.norm: improper number of dimensions to norm")
    if keepdims:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        out = ops.reshape(out, shape)
    return out


def _keep(out, ndim, keepdims):
    return ops.reshape(out, (1,) * ndim) if keepdims else out


def _l2(x, axis):
    # the gradient x / norm is nan at x = 0 (sqrt's kink), as in NumPy arithmetic
    return np.sqrt(np.sum(x * x, axis=axis))


def _vector_norm(x, ord, axis):
    if ord is None or ord == 2:
        return _l2(x, axis)
    if ord == np.inf:
        return np.max(np.abs(x), axis=axis)
    if ord == -np.inf:
        return np.min(np.abs(x), axis=axis)
    if ord == 1:
        return np.sum(np.abs(x), axis=axis)
    if ord == 0:
        return np.sum((x != 0).astype(x.dtype), axis=axis)
    p = float(ord)
    return np.sum(np.abs(x) ** p, axis=axis) ** (1.0 / p)


def _matrix_norm(x, ord, axes):
    r, c = axes
    if ord in (None, "fro"):
        return _l2(x, axes)
    if ord in (1, -1):
        s = np.sum(np.abs(x), axis=r)
        return (np.max if ord == 1 else np.min)(s, axis=c - 1 if c > r else c)
    if ord in (np.inf, -np.inf):
        s = np.sum(np.abs(x), axis=c)
        return (np.max if ord == np.inf else np.min)(s, axis=r - 1 if r > c else r)
    if ord in (2, -2, "nuc"):
        s = _svd(ops.context_of(x), ops.moveaxis_end(x, axes), compute_uv=False)
        if ord == "nuc":
            return np.sum(s, axis=-1)
        return (np.max if ord == 2 else np.min)(s, axis=-1)
    raise ValueError(f"np.linalg.norm: invalid norm order {ord!r} for matrices")


def _rows(x: Tracer, start: int, count: int) -> Tracer:
    return indexing.getitem(x, (..., slice(start, start + count), slice(None)))


def _eigh(ctx, a, UPLO="L"):
    (a,) = _float(ctx, a)
    _square(a, "np.linalg.eigh")
    if str(UPLO).upper() == "U":  # the upper triangle is the lower one of the transpose
        a = _mT(a)
    out = ops.emit(ctx, "eigh", [a])
    n = a.shape[-1]
    return EighResult(ops.reshape(_rows(out, 0, 1), a.shape[:-1]), _rows(out, 1, n))


def _svd_parts(ctx, a):
    out = ops.emit(ctx, "svd", [a])
    m, n = a.shape[-2:]
    u, s, v = _rows(out, 0, m), _rows(out, m, 1), _rows(out, m + 1, n)
    return u, ops.reshape(s, s.shape[:-2] + (s.shape[-1],)), v


def _svd(ctx, a, full_matrices=True, compute_uv=True, hermitian=False):
    (a,) = _float(ctx, a)
    if a.ndim < 2:
        raise np.linalg.LinAlgError(f"np.linalg.svd: needs a (..., m, n) matrix, got {a.type}")
    u, s, v = _svd_parts(ctx, a)
    if not compute_uv:
        return s
    m, n = a.shape[-2:]
    if full_matrices and m != n:
        raise NotImplementedError(
            f"np.linalg.svd(full_matrices=True) of a non-square {a.type} (at {user_location()}):"
            " the extra singular vectors are not unique, so gradc has no gradient for them; "
            "pass full_matrices=False"
        )
    return SVDResult(u, s, _mT(v))


def _pinv_parts(ctx, a, rcond):
    u, s, v = _svd_parts(ctx, a)
    m, n = a.shape[-2:]
    tol = np.finfo(a.dtype).eps * max(m, n) if rcond is None else float(rcond)
    cut = np.max(s, axis=-1, keepdims=True) * tol
    big = s > cut
    inv = np.where(big, 1.0 / np.where(big, s, np.ones_like(s)), np.zeros_like(s))
    return u, s, v, inv, big


def _pinv(ctx, a, rcond=None, hermitian=False, *, rtol=None):
    (a,) = _float(ctx, a)
    u, _, v, inv, _ = _pinv_parts(ctx, a, rtol if rcond is None else rcond)
    return (v * ops.expand_dims(inv, -2)) @ _mT(u)


def _lstsq(ctx, a, b, rcond=None):
    a, b = _float(ctx, a, b)
    u, s, v, inv, big = _pinv_parts(ctx, a, rcond)
    x = ((v * ops.expand_dims(inv, -2)) @ _mT(u)) @ b
    m, n = a.shape
    rank = np.sum(big.astype(np.int64))
    if m > n:  # the full-rank shape: gradc cannot know the rank at trace time
        r = b - a @ x
        resid = np.sum(r * r, axis=0)
        resid = ops.reshape(resid, (1,)) if b.ndim == 1 else resid
    else:
        resid = ops.full(ctx, (0,), 0, a.dtype)
    return x, resid, rank, s


def _qr(ctx, a, mode="reduced"):
    (a,) = _float(ctx, a)
    m, n = a.shape[-2:]
    if m < n or mode not in ("reduced", "r", "complete") or (mode == "complete" and m != n):
        raise NotImplementedError(
            f"np.linalg.qr(mode={mode!r}) of {a.type} (at {user_location()}): gradc "
            "differentiates the reduced QR of a matrix with m >= n; QR-factor the transpose "
            "of a wide matrix"
        )
    out = ops.emit(ctx, "qr", [a])
    q, r = _rows(out, 0, m), _rows(out, m, n)
    return r if mode == "r" else QRResult(q, r)


FUNCTIONS.update(
    {
        np.linalg.eigh: _eigh,
        np.linalg.eigvalsh: lambda ctx, a, UPLO="L": _eigh(ctx, a, UPLO).eigenvalues,
        np.linalg.svd: _svd,
        np.linalg.pinv: _pinv,
        np.linalg.lstsq: _lstsq,
        np.linalg.qr: _qr,
        np.linalg.solve: _solve,
        np.linalg.inv: _unary("inv", "np.linalg.inv"),
        np.linalg.slogdet: _slogdet,
        np.linalg.det: _det,
        np.linalg.cholesky: _cholesky,
        np.linalg.norm: _norm,
        np.diagonal: diagonal,
        np.trace: _trace,
        np.diag: _diag,
    }
)


# -- scipy.linalg (no dispatch protocol: reached through the traced namespace) -----------------


def _scipy(fn, traced):
    def call(*args: Any, **kwargs: Any) -> Any:
        if creation.current() is None or not any(
            creation.has_tracer(a) for a in (*args, *kwargs.values())
        ):
            return fn(*args, **kwargs)
        ctx = creation.current()
        return traced(ctx, *args, **kwargs)

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def _solve_triangular(
    ctx, a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False, check_finite=True
):
    a, b = _float(ctx, a, b)
    if trans in (1, 2, "T", "C"):
        a, lower = _mT(a), not lower
    if unit_diagonal:
        eye = np.eye(a.shape[-1], dtype=bool)
        a = ops.where(ctx.lift(eye), ctx.lift(np.ones((), a.dtype)), a)
    return _rhs_op(ctx, "solve_triangular", a, b, "scipy.linalg.solve_triangular", lower=lower)


def _sp_cholesky(ctx, a, lower=False, overwrite_a=False, check_finite=True):
    return _cholesky(ctx, a, upper=not lower)


def _cho_factor(ctx, a, lower=False, overwrite_a=False, check_finite=True):
    # SciPy leaves arbitrary values in the other triangle; here it holds zeros
    return _cholesky(ctx, a, upper=not lower), lower


def _cho_solve(ctx, c_and_lower, b, overwrite_b=False, check_finite=True):
    c, lower = c_and_lower
    c, b = _float(ctx, c, b)
    low = c if lower else _mT(c)
    y = _rhs_op(ctx, "solve_triangular", low, b, "scipy.linalg.cho_solve", lower=True)
    return _rhs_op(ctx, "solve_triangular", _mT(low), y, "scipy.linalg.cho_solve", lower=False)


def _override_scipy_linalg(linalg: Any) -> None:
    """Route user code's scipy.linalg calls on tracers to the traced versions."""
    for orig, fn in [
        (linalg.solve_triangular, _solve_triangular),
        (linalg.cholesky, _sp_cholesky),
        (linalg.cho_factor, _cho_factor),
        (linalg.cho_solve, _cho_solve),
        (linalg.solve, lambda ctx, a, b, **kw: _solve(ctx, a, b)),
        (linalg.inv, lambda ctx, a, **kw: FUNCTIONS[np.linalg.inv](ctx, a)),
        (linalg.det, lambda ctx, a, **kw: _det(ctx, a)),
    ]:
        override(orig, _scipy(orig, fn))


# registered when scipy.linalg is imported, not here: importing it loads SciPy's OpenBLAS
override_module("scipy.linalg", _override_scipy_linalg)
