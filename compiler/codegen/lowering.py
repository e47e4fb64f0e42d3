"""How the Python driver lowers the ops that are not loops: views (reshape, transpose, slice,
broadcast_to), constants and fills, matmul, concatenate and the indexing ops. `LOWER` maps an
op name to its renderer: exactly the records whose `OpDef.lowering` is VIEW or CUSTOM (`fused`
aside; tests/primitives/test_lowering.py); `PyDriver.node` calls it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from compiler.codegen import special
from compiler.codegen.values import Bcast, Fill, Mat
from compiler.ir.graph import Node
from compiler.primitives.shape import slice_tuple

if TYPE_CHECKING:  # for annotations only: the driver imports this module
    from compiler.codegen.driver import PyDriver


def _view(drv: PyDriver, n: Node, expr: str) -> None:
    """Bind `n`'s output to a view expression of its first input."""
    x = n.inputs[0]
    name = drv.vname(n.out)
    drv.src.line(f"{name} = {expr.format(drv.mat(x))}")
    d = drv.vals[x]
    drv.vals[n.out] = Mat(name, d.fresh, d.plain and n.op == "reshape")


def _lazy_fill(drv: PyDriver, n: Node) -> bool:
    d = drv.vals[n.inputs[0]]
    if isinstance(d, Fill):
        drv.vals[n.out] = Fill(d.param, d.dtype, n.out.shape)
        return True
    return False


def _reshape(drv: PyDriver, n: Node) -> None:
    if _lazy_fill(drv, n):
        return
    x, v = n.inputs[0], n.out
    root = drv.bufs.liveness.root
    if v in drv.bufs.slot_of and root.get(x, x) in drv.bufs.slot_of:
        # the plan gave it a buffer: a reshape of one of our strided views, which NumPy
        # would copy into a new array; copy into the planned buffer instead
        src = drv.mat(x)
        out = drv.out(v)
        drv.src.line(f"np.copyto({out}.reshape({src}.shape), {src})")
        return
    _view(drv, n, "{}.reshape(" + drv.shape_param(n.out.shape) + ")")


def _transpose(drv: PyDriver, n: Node) -> None:
    if not _lazy_fill(drv, n):
        _view(drv, n, "{}.transpose(" + repr(tuple(n.attrs["axes"])) + ")")


def _slice(drv: PyDriver, n: Node) -> None:
    if not _lazy_fill(drv, n):
        _view(drv, n, "{}[" + drv.param(slice_tuple(n.attrs["index"])) + "]")


def _broadcast_to(drv: PyDriver, n: Node) -> None:
    d = drv.vals[n.inputs[0]]
    if isinstance(d, Fill):
        drv.vals[n.out] = Fill(d.param, d.dtype, n.out.shape)
    elif isinstance(d, Bcast):
        drv.vals[n.out] = Bcast(d.src, n.out.shape)
    else:
        drv.vals[n.out] = Bcast(n.inputs[0], n.out.shape)


def _const(drv: PyDriver, n: Node) -> None:
    name = drv.vname(n.out)
    drv.src.line(f"{name} = {drv.param(np.array(n.attrs['value'].array))}")
    drv.vals[n.out] = Mat(name, False, False)


def _full(drv: PyDriver, n: Node) -> None:
    dt = np.dtype(n.attrs["dtype"])
    drv.vals[n.out] = Fill(drv.param(dt.type(n.attrs["fill"])), dt, n.out.shape)


def _matmul(drv: PyDriver, n: Node) -> None:
    a, b = (drv.mat(v) for v in n.inputs)
    out = drv.out(n.out)
    drv.src.line(f"np.matmul({a}, {b}, out={out})")


def _concatenate(drv: PyDriver, n: Node) -> None:
    parts = [drv.mat(v) for v in n.inputs]
    out = drv.out(n.out)
    drv.src.line(f"np.concatenate(({', '.join(parts)},), axis={n.attrs['axis']}, out={out})")


def _copy_of(drv: PyDriver, n: Node) -> str:
    """`n`'s planned buffer holding a copy of `n.inputs[0]`, for ops that update a copy."""
    x = n.inputs[0]
    d = drv.vals[x]
    if isinstance(d, Fill):
        out = drv.out(n.out)
        drv.src.line(f"{out}.fill({d.param})")
    else:
        src = drv.mat(x)
        out = drv.out(n.out)
        drv.src.line(f"np.copyto({out}, {src})")
    return out


def _three_d(shape: tuple[int, ...], axis: int, mid: int) -> tuple[int, int, int]:
    pre = int(np.prod(shape[:axis], dtype=np.int64))
    post = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    return (pre, mid, post)


def _take(drv: PyDriver, n: Node) -> None:
    x, idx = n.inputs
    axis = n.attrs["axis"]
    xs = drv.param(_three_d(x.shape, axis, x.shape[axis]))
    os_ = drv.param(_three_d(x.shape, axis, idx.type.size))
    xn, ixn = drv.mat(x), drv.mat(idx)
    out = drv.out(n.out)
    kname = special.add(drv.kernels, "take")
    drv.src.line(f"{kname}({xn}.reshape({xs}), {ixn}.reshape(-1), {out}.reshape({os_}))")


def _scatter(drv: PyDriver, n: Node) -> None:
    x, idx, v = n.inputs
    axis = n.attrs["axis"]
    xs = drv.param(_three_d(x.shape, axis, x.shape[axis]))
    vs = drv.param(_three_d(x.shape, axis, idx.type.size))
    ixn, vn = drv.mat(idx), drv.mat(v)
    out = _copy_of(drv, n)
    kname = special.add(drv.kernels, n.op)
    drv.src.line(f"{kname}({out}.reshape({xs}), {ixn}.reshape(-1), {vn}.reshape({vs}))")


def _set_slice(drv: PyDriver, n: Node) -> None:
    d = drv.vals[n.inputs[1]]
    val = d.param if isinstance(d, Fill) else drv.mat(n.inputs[1])
    out = _copy_of(drv, n)
    drv.src.line(f"{out}[{drv.param(slice_tuple(n.attrs['index']))}] = {val}")


LOWER = {
    "reshape": _reshape,
    "transpose": _transpose,
    "slice": _slice,
    "broadcast_to": _broadcast_to,
    "const": _const,
    "full": _full,
    "matmul": _matmul,
    "concatenate": _concatenate,
    "take": _take,
    "scatter": _scatter,
    "scatter_add": _scatter,
    "set_slice": _set_slice,
}
