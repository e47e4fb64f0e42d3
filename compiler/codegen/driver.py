"""The plain-Python driver: calls njit loop kernels, NumPy's BLAS and NumPy views in order.

Every size and constant value lives in `P`, a tuple the compiled stage binds, so the driver
text depends only on the graph's structure: a new batch size gives the same module (no new
compile). Buffers are allocated per call with `np.empty` (outputs are therefore fresh);
an elementwise kernel writes in place into an operand that dies there when the operand is a
buffer this call allocated, read at exactly the output's index (decided from the broadcast
pattern alone, so the decision does not depend on sizes either).

Views cost nothing: reshape/transpose/slice are NumPy views made here; `broadcast_to` and
`full` stay symbolic ("lazy") and fold into the index pattern of the kernels that read them,
and are only materialised for a consumer that needs a real array.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from compiler.codegen import special
from compiler.codegen.loops import REDUCE_OPS, fits_loop, is_elementwise, loop_kernel
from compiler.codegen.route import inline_fused, routed
from compiler.codegen.source import Source, ctor
from compiler.ir.graph import Builder, Graph, Node, Value
from compiler.ir.types import dtype_short
from compiler.primitives import OPS
from compiler.primitives.shape import slice_tuple

# `prange` on the outer loop, measured on 2 cores (numba 0.68, omp layer, with
# OMP_WAIT_POLICY=passive, see compile.py): a parallel region costs ~40-60 us to wake the
# pool, so a memory-bound `x*x + x` loop breaks even near 2**20 elements (149 -> 141 us;
# 1.31 -> 0.76 ms at 2**22) and a libm-bound `sin(x)*x` loop near 2**14 (129 -> 110 us at
# 2**14, 35 -> 18 ms at 2**22).
PARALLEL_MIN = 1 << 20
PARALLEL_MIN_LIBM = 1 << 14


@dataclass
class _Mat:
    """A materialised array held in a driver variable."""

    name: str
    buf: int | None  # the driver-allocated buffer it is (a view of), None if not ours
    plain: bool  # it is the whole buffer, C-contiguous as allocated


@dataclass
class _Bcast:
    """`broadcast_to(src)`, not materialised: kernels read `src` with a broadcast pattern."""

    src: Value
    shape: tuple[int, ...]
    buf: int | None  # src's buffer, kept alive (and unwritten) while this value lives


@dataclass
class _Fill:
    """A constant fill, not materialised: kernels take the scalar."""

    param: str  # driver expression of the fill scalar (typed)
    dtype: np.dtype
    shape: tuple[int, ...]
    buf: None = None


def single_body(n: Node) -> Graph:
    """Wrap one elementwise or reduce node in a body graph."""
    b = Builder()
    ins = [b.add_input(v.type) for v in n.inputs]
    out = b.add_node(n.op, ins, n.attrs, [v.type for v in n.outputs])
    return b.build(out)


def flatten_unfit(graph: Graph) -> Graph:
    """Inline every fused node whose body is not one loop nest (codegen lowers it op by op)."""
    return inline_fused(graph, lambda body: not fits_loop(body))


class PyDriver:
    """Generates `driver(P, v0, v1, ...) -> list` for a graph; collects kernels and params."""

    def __init__(self, graph: Graph, kernels: dict[str, str]) -> None:
        self.graph = flatten_unfit(graph)
        self.kernels = kernels
        self.params: list[object] = []
        self.src = Source()
        self.vals: dict[Value, _Mat | _Bcast | _Fill] = {}
        self.index: dict[Value, int] = {}
        self.refs: Counter[int] = Counter()  # live values per driver-allocated buffer
        self.nbufs = 0
        self.uses: Counter[Value] = Counter()
        self.outputs = set(self.graph.outputs)

    # -- helpers ---------------------------------------------------------------------------
    def param(self, obj: object) -> str:
        self.params.append(obj)
        return f"P[{len(self.params) - 1}]"

    def shape_param(self, shape: tuple[int, ...]) -> str:
        return "()" if shape == () else self.param(tuple(shape))

    def vname(self, v: Value) -> str:
        return f"v{self.index[v]}"

    def fresh(self, v: Value) -> str:
        """Emit `vN = np.empty(...)` for `v`'s own new buffer; return its name."""
        name = self.vname(v)
        self.src.line(f"{name} = np.empty({self.shape_param(v.shape)}, {ctor(v.dtype)})")
        self.bind(v, name, self.new_buf(), plain=True)
        return name

    def new_buf(self) -> int:
        self.nbufs += 1
        return self.nbufs

    def bind(self, v: Value, name: str, buf: int | None, plain: bool) -> None:
        self.put(v, _Mat(name, buf, plain))

    def put(self, v: Value, d: _Mat | _Bcast | _Fill) -> None:
        self.vals[v] = d
        if d.buf is not None:
            self.refs[d.buf] += 1

    def mat(self, v: Value) -> str:
        """The name of `v` as a real array, materialising a lazy broadcast or fill."""
        d = self.vals[v]
        if isinstance(d, _Mat):
            return d.name
        name = self.vname(v)
        if isinstance(d, _Bcast):
            src = self.mat(d.src)
            self.src.line(f"{name} = np.broadcast_to({src}, {self.shape_param(d.shape)})")
            self.vals[v] = _Mat(name, d.buf, False)  # a read-only view, same buffer reference
        else:
            self.src.line(
                f"{name} = np.full({self.shape_param(d.shape)}, {d.param}, {ctor(d.dtype)})"
            )
            self.bind(v, name, self.new_buf(), plain=True)
        return name

    def dying(self, v: Value, n: Node) -> bool:
        """`v` is a plain buffer of ours whose last use is node `n` (so `n` may overwrite it)."""
        d = self.vals.get(v)
        return (
            isinstance(d, _Mat)
            and d.plain
            and d.buf is not None
            and self.refs[d.buf] == 1
            and v not in self.outputs
            and self.uses[v] == sum(u is v for u in n.inputs)
        )

    def release(self, n: Node) -> None:
        for v in n.inputs:
            self.uses[v] -= 1
            if self.uses[v] == 0 and v not in self.outputs:
                self.drop(v)

    def drop(self, v: Value) -> None:
        # the entry stays (a lazy broadcast may still name it); only the buffer reference goes
        d = self.vals[v]
        if d.buf is not None:
            self.refs[d.buf] -= 1

    # -- generation ------------------------------------------------------------------------
    def generate(self) -> str:
        g = self.graph
        for v in g.inputs:
            self.index[v] = len(self.index)
        for n in g.nodes:
            for v in n.outputs:
                self.index[v] = len(self.index)
            self.uses.update(n.inputs)
        args = ", ".join(["P"] + [self.vname(v) for v in g.inputs])
        with self.src.block(f"def driver({args}):"):
            for v in g.inputs:
                name = self.vname(v)
                if v.ndim == 0:  # Python scalars arrive as floats/ints
                    self.src.line(f"{name} = np.asarray({name}, {ctor(v.dtype)})")
                self.vals[v] = _Mat(name, None, False)
            for n in g.nodes:
                self.node(n)
                self.release(n)
                for v in n.outputs:
                    if self.uses[v] == 0 and v not in self.outputs:
                        self.drop(v)
            self.src.line(f"return [{', '.join(self.result(g.outputs))}]")
        return self.src.text()

    def result(self, outs: tuple[Value, ...]) -> list[str]:
        """Output expressions: our own buffers as they are, everything else copied once."""
        texts, seen = [], Counter()
        for v in outs:
            d = self.vals[v]
            if isinstance(d, _Fill):
                texts.append(f"np.full({self.shape_param(d.shape)}, {d.param}, {ctor(d.dtype)})")
                continue
            name = self.mat(v)
            d = self.vals[v]
            shared = (
                d.buf is not None
                and sum(
                    isinstance(self.vals[u], _Mat) and self.vals[u].buf == d.buf for u in set(outs)
                )
                > 1
            )
            if d.buf is not None and d.plain and not shared and not seen[v]:
                texts.append(name)
            else:
                texts.append(f"np.array({name}, order='C')")
            seen[v] += 1
        return texts

    def comment(self, n: Node) -> None:
        # ranks, not sizes: the module text must not depend on the batch size
        outs = ", ".join(
            f"%{self.index[v]}:{dtype_short(v.dtype)}[{','.join('*' * v.ndim)}]" for v in n.outputs
        )
        ins = ", ".join(f"%{self.index[v]}" for v in n.inputs)
        self.src.line(f"# {outs} = {n.op} {ins}".rstrip())

    def node(self, n: Node) -> None:
        self.comment(n)
        op = n.op
        if is_elementwise(op) and routed(n):
            self.ufunc(n)
        elif op == "fused" or is_elementwise(op) or op in REDUCE_OPS:
            body = n.attrs["body"] if op == "fused" else single_body(n)
            if fits_loop(body):
                self.loop(n, body)
            else:
                self.fallback(n)
        elif op in LOWER:
            LOWER[op](self, n)
        else:
            self.fallback(n)

    def loop(self, n: Node, body: Graph) -> None:
        args, shapes = [], []
        for v in n.inputs:
            d = self.vals[v]
            if isinstance(d, _Bcast):
                args.append(self.mat(d.src))
                shapes.append(d.src.shape)
            elif isinstance(d, _Fill):
                args.append(d.param)
                shapes.append(None)
            else:
                args.append(d.name)
                shapes.append(v.shape)
        k = loop_kernel(body, shapes)
        self.kernels[k.name] = k.source
        params = []
        for p in k.params:
            if p.op == "const":
                arr = np.array(p.attrs["value"].array)  # writable: one Numba type for all
                params.append(self.param(arr[()] if arr.ndim == 0 else arr))
            else:
                params.append(self.param(np.dtype(p.attrs["dtype"]).type(p.attrs["fill"])))
        outs, taken = [], set()
        for v in n.outputs:
            name = None
            for j in k.inplace_ok:
                u = n.inputs[j]
                if u not in taken and u.type == v.type and v.shape == k.domain and self.dying(u, n):
                    taken.add(u)
                    d = self.vals[u]
                    name = self.vname(v)
                    self.src.line(f"{name} = {d.name}")
                    self.bind(v, name, d.buf, plain=True)
                    break
            outs.append(name or self.fresh(v))
        call = args + params + outs
        if k.needs_shape:
            call.append(self.shape_param(k.domain))
        kname = k.name
        sized = [o for o, v in zip(outs, n.outputs) if v.shape == k.domain]
        sized += [a for a, s in zip(args, shapes) if s is not None and tuple(s) == k.domain]
        if k.par_name is not None and sized:
            # chosen per call from the actual size, so the text stays size-independent; the
            # parallel variant compiles on first use only
            self.kernels[k.par_name] = k.par_source
            least = PARALLEL_MIN_LIBM if "math." in k.source else PARALLEL_MIN
            kname = f"({k.par_name} if {sized[0]}.size >= {least} else {k.name})"
        self.src.line(f"{kname}({', '.join(call)})")

    def ufunc(self, n: Node) -> None:
        """`np.<op>(*inputs, out=...)`: NumPy's SIMD loop, broadcasting lazy inputs itself."""
        args = []
        for v in n.inputs:
            d = self.vals[v]
            if isinstance(d, _Fill):
                args.append(d.param)
            elif isinstance(d, _Bcast):
                args.append(self.mat(d.src))  # NumPy broadcasts the source as the view would
            else:
                args.append(d.name)
        out = None
        for u in n.inputs:
            if u.type == n.out.type and self.dying(u, n):
                d = self.vals[u]
                out = self.vname(n.out)
                self.src.line(f"{out} = {d.name}")
                self.bind(n.out, out, d.buf, plain=True)
                break
        out = out or self.fresh(n.out)
        self.src.line(f"np.{n.op}({', '.join(args)}, out={out})")

    def fallback(self, n: Node) -> None:
        """Run the op's NumPy reference implementation (ops no kernel covers, e.g. int max).

        The implementation travels in P, so generated modules never import the compiler.
        """
        args = ", ".join(self.mat(v) for v in n.inputs)
        impl, attrs = self.param(OPS[n.op].impl), self.param(dict(n.attrs))
        name = self.vname(n.out)
        self.src.line(
            f"{name} = np.array({impl}({args}, **{attrs}), {ctor(n.out.dtype)}, order='C')"
        )
        self.bind(n.out, name, self.new_buf(), plain=True)


# -- per-op lowering ---------------------------------------------------------------------


def _view(drv: PyDriver, n: Node, expr: str) -> None:
    """Bind `n`'s output to a view expression of its first input."""
    x = n.inputs[0]
    name = drv.vname(n.out)
    drv.src.line(f"{name} = {expr.format(drv.mat(x))}")
    d = drv.vals[x]
    drv.bind(n.out, name, d.buf, plain=d.plain and n.op == "reshape")


def _lazy_fill(drv: PyDriver, n: Node) -> bool:
    d = drv.vals[n.inputs[0]]
    if isinstance(d, _Fill):
        drv.put(n.out, _Fill(d.param, d.dtype, n.out.shape))
        return True
    return False


def _reshape(drv: PyDriver, n: Node) -> None:
    if not _lazy_fill(drv, n):
        _view(drv, n, "{}.reshape(" + drv.shape_param(n.out.shape) + ")")


def _transpose(drv: PyDriver, n: Node) -> None:
    if not _lazy_fill(drv, n):
        _view(drv, n, "{}.transpose(" + repr(tuple(n.attrs["axes"])) + ")")


def _slice(drv: PyDriver, n: Node) -> None:
    if not _lazy_fill(drv, n):
        _view(drv, n, "{}[" + drv.param(slice_tuple(n.attrs["index"])) + "]")


def _broadcast_to(drv: PyDriver, n: Node) -> None:
    d = drv.vals[n.inputs[0]]
    if isinstance(d, _Fill):
        drv.put(n.out, _Fill(d.param, d.dtype, n.out.shape))
    elif isinstance(d, _Bcast):
        drv.put(n.out, _Bcast(d.src, n.out.shape, d.buf))
    else:
        drv.put(n.out, _Bcast(n.inputs[0], n.out.shape, d.buf))


def _const(drv: PyDriver, n: Node) -> None:
    name = drv.vname(n.out)
    drv.src.line(f"{name} = {drv.param(np.array(n.attrs['value'].array))}")
    drv.vals[n.out] = _Mat(name, None, False)


def _full(drv: PyDriver, n: Node) -> None:
    dt = np.dtype(n.attrs["dtype"])
    drv.put(n.out, _Fill(drv.param(dt.type(n.attrs["fill"])), dt, n.out.shape))


def _matmul(drv: PyDriver, n: Node) -> None:
    a, b = (drv.mat(v) for v in n.inputs)
    out = drv.fresh(n.out)
    drv.src.line(f"np.matmul({a}, {b}, out={out})")


def _concatenate(drv: PyDriver, n: Node) -> None:
    parts = [drv.mat(v) for v in n.inputs]
    out = drv.fresh(n.out)
    drv.src.line(f"np.concatenate(({', '.join(parts)},), axis={n.attrs['axis']}, out={out})")


def _copy_of(drv: PyDriver, n: Node) -> str:
    """A fresh C-contiguous buffer holding `n.inputs[0]`, for ops that update a copy."""
    x = n.inputs[0]
    name = drv.vname(n.out)
    d = drv.vals[x]
    if isinstance(d, _Fill):
        drv.src.line(f"{name} = np.full({drv.shape_param(d.shape)}, {d.param}, {ctor(d.dtype)})")
        drv.bind(n.out, name, drv.new_buf(), plain=True)
    elif drv.dying(x, n) and x not in n.inputs[1:]:
        drv.src.line(f"{name} = {d.name}")
        drv.bind(n.out, name, d.buf, plain=True)
    else:
        drv.src.line(f"{name} = np.array({drv.mat(x)}, order='C')")
        drv.bind(n.out, name, drv.new_buf(), plain=True)
    return name


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
    out = drv.fresh(n.out)
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
    val = d.param if isinstance(d, _Fill) else drv.mat(n.inputs[1])
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
