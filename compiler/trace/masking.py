"""Boolean masks: `x[mask]`, `x[mask] = v`, `x[mask] += v`.

A mask known at trace time (a plain bool array) is turned into integer indices, so it is as
any fancy index. A traced mask has a data-dependent number of selected elements, which a
static graph cannot hold, so `x[mask]` becomes a `Masked` stand-in that remembers the full
array and the mask:

- reductions of it are masked reductions (`np.sum(x[x > 0] ** 2)` is
  `np.sum(np.where(x > 0, x ** 2, 0))`; `mean` divides by the mask's count; `max`/`min`
  fill with -inf/+inf, so an all-False mask gives -inf/+inf where NumPy raises);
- elementwise arithmetic with scalars or with other `x[mask]` of the same mask stays masked;
- assigning it, or a scalar, through the same mask is `np.where(mask, v, x)`.

Anything else (its shape, `len`, indexing it, passing it to another function) raises an
error that names the line and the `np.where` rewrite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.trace import ops
from compiler.trace.tracer import Tracer, TracerError, user_location

_REWRITE = (
    "x[mask] has a data-dependent shape, which gradc supports only in a reduction "
    "(np.sum/np.mean/np.max/np.min/np.prod of it, or elementwise arithmetic ending in one), "
    "or in an assignment x[mask] = v / x[mask] += v. Rewrite it with a fixed shape: "
    "np.where(mask, x, 0) (and np.sum(mask) for the count)"
)


def data_dependent(what: str) -> TracerError:
    return TracerError(f"{what}: {_REWRITE} (at {user_location()})")


def is_traced_mask(key: Any) -> bool:
    return isinstance(key, Tracer) and key.dtype == np.bool_


def constant_mask_key(x: Tracer, key: Any) -> Any:
    """A plain boolean array index turned into NumPy's equivalent integer indices."""
    items = key if isinstance(key, tuple) else (key,)
    out: list = []
    for k in items:
        if isinstance(k, (np.ndarray, list)) and np.asarray(k).dtype == np.bool_:
            out.extend(np.nonzero(np.asarray(k)))
        else:
            out.append(k)
    return tuple(out) if isinstance(key, tuple) or len(out) > 1 else out[0]


def has_constant_mask(key: Any) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return any(
        isinstance(k, (np.ndarray, list)) and np.asarray(k).dtype == np.bool_ and np.ndim(k) > 0
        for k in items
    )


def _full_mask(x: Tracer, mask: Tracer) -> Tracer:
    if mask.shape != x.shape[: mask.ndim]:
        raise IndexError(
            f"boolean index {mask.type} does not match the indexed array {x.type} "
            f"(at {user_location()})"
        )
    m = ops.reshape(mask, mask.shape + (1,) * (x.ndim - mask.ndim))
    return ops.broadcast_to(m, x.shape)


class Masked:
    """`x[mask]` for a traced mask: the full array and its mask, reduced or assigned later."""

    __array_priority__ = 2000

    def __init__(self, data: Tracer, mask: Tracer, key: Any, k: int) -> None:
        self.data = data
        self.mask = mask  # broadcast to data's shape
        self.key = key  # the mask's own Value: x[m] and y[m] select the same elements
        self.k = k  # the mask covers data's first k axes; x[mask] has 1 + ndim - k axes

    def _same(self, other: Masked) -> bool:
        return same_mask(self.data._ctx, other.key, self.key)

    # -- elementwise arithmetic stays masked ----------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs:
            raise data_dependent(f"np.{ufunc.__name__}.{method} of x[mask]")
        args = []
        for a in inputs:
            if isinstance(a, Masked):
                if not self._same(a):
                    raise data_dependent("combining x[mask] and y[other_mask]")
                args.append(a.data)
            elif isinstance(a, Tracer) and a.ndim > 0:
                raise data_dependent("combining x[mask] with a full array")
            else:
                args.append(a)
        return Masked(ufunc(*args), self.mask, self.key, self.k)

    def __array_function__(self, func, types, args, kwargs):
        name = getattr(func, "__name__", str(func))
        if name in ("sum", "mean", "max", "min", "amax", "amin", "prod") and args[0] is self:
            return self._reduce(name.removeprefix("a"), *args[1:], **kwargs)
        raise data_dependent(f"np.{name}(x[mask])")

    def _reduce(
        self,
        op: str,
        axis: Any = None,
        dtype: Any = None,
        out: Any = None,
        keepdims: bool = False,
        **kw: Any,
    ) -> Tracer:
        nd = 1 + self.data.ndim - self.k  # the rank of x[mask]
        if isinstance(axis, tuple) and len(axis) == 1:
            axis = axis[0]
        if out is not None or kw or (axis is not None and axis not in (0, -nd)):
            raise data_dependent(f"np.{op}(x[mask], axis=...) (only the total and axis=0 reduce)")
        x = self.data if dtype is None else ops.cast_to(self.data, dtype)
        fill = {"sum": 0, "mean": 0, "prod": 1, "max": -np.inf, "min": np.inf}[op]
        if x.dtype.kind != "f" and op in ("max", "min"):
            info = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
            fill = (info.min if op == "max" else info.max) if info else (op == "min")
        filled = ops.where(self.mask, x, x._ctx.lift(np.asarray(fill, x.dtype)))
        axes = None if axis is None else tuple(range(self.k))  # axis 0 of x[mask]
        if op == "prod":
            out = np.prod(filled, axis=axes)
        elif op == "mean":
            total = ops.reduce("sum", filled, axes)
            count = ops.reduce("sum", ops.cast_to(self.mask, total.dtype), axes)
            out = total / count
        else:
            out = ops.reduce(op, filled, axes)
        if keepdims:
            out = ops.reshape(out, (1,) * nd if axis is None else (1,) + out.shape)
        return out

    def sum(self, *a, **k):
        return self._reduce("sum", *a, **k)

    def mean(self, *a, **k):
        return self._reduce("mean", *a, **k)

    def max(self, *a, **k):
        return self._reduce("max", *a, **k)

    def min(self, *a, **k):
        return self._reduce("min", *a, **k)

    def prod(self, *a, **k):
        return self._reduce("prod", *a, **k)

    # -- everything that needs the data-dependent shape -------------------------------------------
    @property
    def shape(self):
        raise data_dependent("x[mask].shape")

    @property
    def size(self):
        raise data_dependent("x[mask].size")

    def __len__(self):
        raise data_dependent("len(x[mask])")

    def __getitem__(self, key):
        raise data_dependent("indexing x[mask]")

    def __iter__(self):
        raise data_dependent("iterating over x[mask]")

    def __array__(self, dtype=None, copy=None):
        raise data_dependent("converting x[mask] to an array")

    def __repr__(self) -> str:
        return f"Masked({self.data.type})"


def _ufunc_method(ufunc):
    def method(self, *other):
        return ufunc(self, *other)

    def reflected(self, other):
        return ufunc(other, self)

    return method, reflected


for _n, _u in [
    ("add", np.add),
    ("sub", np.subtract),
    ("mul", np.multiply),
    ("truediv", np.divide),
    ("pow", np.power),
]:
    _m, _r = _ufunc_method(_u)
    setattr(Masked, f"__{_n}__", _m)
    setattr(Masked, f"__r{_n}__", _r)
    setattr(Masked, f"__i{_n}__", _m)  # x[mask] += v: a new Masked, then __setitem__
Masked.__neg__ = lambda self: np.negative(self)
Masked.__abs__ = lambda self: np.abs(self)
for _n, _u in [
    ("lt", np.less),
    ("le", np.less_equal),
    ("gt", np.greater),
    ("ge", np.greater_equal),
]:
    setattr(Masked, f"__{_n}__", _ufunc_method(_u)[0])


def same_mask(ctx: Any, a: Any, b: Any, depth: int = 6) -> bool:
    """Whether two mask values are the same computation (`x[x < 0] += 2 * x[x < 0]` builds
    `x < 0` twice): equal ops, attributes and inputs, compared a few levels deep."""
    if a is b:
        return True
    if depth == 0:
        return False
    prod = {v: n for n in ctx.builder.nodes for v in n.outputs}
    na, nb = prod.get(a), prod.get(b)
    if na is None or nb is None or na.op != nb.op or len(na.inputs) != len(nb.inputs):
        return False
    if na.attrs != nb.attrs:
        return False
    return all(same_mask(ctx, u, w, depth - 1) for u, w in zip(na.inputs, nb.inputs))


def getitem(x: Tracer, mask: Tracer) -> Masked:
    return Masked(x, _full_mask(x, mask), mask.value, mask.ndim)


def setitem(x: Tracer, mask: Tracer, v: Any) -> None:
    """`x[mask] = v` as `x = np.where(mask, v, x)` (v a scalar or x[mask]-derived)."""
    m = _full_mask(x, mask)
    if isinstance(v, Masked):
        if not same_mask(x._ctx, v.key, mask.value):
            raise data_dependent("x[mask] = y[other_mask]")
        v = v.data
    elif isinstance(v, Tracer) and v.ndim > 0:
        raise data_dependent("x[mask] = array (its length must equal the mask's count)")
    elif np.ndim(v) > 0:
        raise data_dependent("x[mask] = list or array (its length must equal the mask's count)")
    x._assign(ops.where(m, v, x))
