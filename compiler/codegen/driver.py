"""The plain-Python driver: calls njit loop kernels, NumPy's BLAS and ufuncs, and NumPy views.

Every size and constant value lives in `P`, a tuple the compiled stage binds, so the driver
text depends only on the graph's structure: a new batch size gives the same module (no new
compile).

Memory follows the buffer plan (`compiler.plan.assign_buffers` on exactly this graph):

- an intermediate lives in its planned arena slot. `P[0]` is the stage's `StageBuffers`;
  the driver acquires one buffer set per call (`A.acquire()` gives the set and one
  C-contiguous view per planned value, made once per set), writes every intermediate into
  its view through a kernel's output argument or `out=`, and releases the set in a
  `finally`, so an exception releases it too and concurrent calls get different sets;
- which slot a value uses (and so which values share memory, or overwrite an operand in
  place) lives in `P[0]`, not in the text: it depends on sizes (slots are per size class);
- graph outputs get a fresh `np.empty` per call (the caller keeps them: they never alias the
  arena, each other, or an input);
- views (reshape of a contiguous buffer, transpose, slice) are NumPy views, and
  `broadcast_to` and `full` stay symbolic ("lazy"): kernels read the broadcast operand with
  a broadcast index pattern, or take the fill as a scalar argument.

What still allocates per call, besides the outputs: 0-d inputs passed as Python scalars
(`np.asarray`), a lazy fill a consumer needs as an array whose planned buffer is smaller
than the consumer's view (`np.full`), and ops with no kernel that run their reference
implementation (its result is copied into the planned buffer).

Single elementwise ops and single reductions run as NumPy ufuncs / `np.sum(..., out=)`
rather than as a one-op loop kernel: as fast (one pass, NumPy's SIMD loops) and nothing to
compile. So do 0-d fused bodies whose ops are all ufuncs (a few scalar ufunc calls).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from compiler.codegen import special
from compiler.codegen.loops import REDUCE_OPS, fits_loop, is_elementwise, loop_kernel
from compiler.codegen.source import Source, ctor
from compiler.ir.graph import Builder, Graph, Node, Value
from compiler.ir.types import dtype_short
from compiler.passes.route import routed
from compiler.plan.buffers import Buffers
from compiler.primitives import OPS
from compiler.primitives.shape import slice_tuple

# `prange` on the outer loop, measured on 2 cores (numba 0.68, omp layer, with
# OMP_WAIT_POLICY=passive, see compile.py): a parallel region costs ~40-60 us to wake the
# pool, so a memory-bound `x*x + x` loop breaks even near 2**20 elements (149 -> 141 us;
# 1.31 -> 0.76 ms at 2**22) and a libm-bound `sin(x)*x` loop near 2**14 (129 -> 110 us at
# 2**14, 35 -> 18 ms at 2**22).
PARALLEL_MIN = 1 << 20
PARALLEL_MIN_LIBM = 1 << 14

# Loops over fewer elements than SMALL_LOOP run as one NumPy call per op at first: nothing
# to compile (a kernel costs ~0.15-0.3 s to compile; the NumPy calls ~1.5 us per op per call
# more than the kernel's ~2 us, e.g. ~10 us for a 4-op body on 2560 elements). Each such
# loop switches to its kernel (compiled on that call) once the stage has been called often
# enough that the NumPy calls would have cost about one compile (rent, then buy: never more
# than twice the better choice): after COMPILE_S / (OP_S * ops * call sites of the kernel)
# calls, or at once when the kernel is already compiled in this process (see compile.py).
# The mlp's softmax cross-entropy head (6 bodies on 256 x 10) compiles nothing on its first
# call that way, and switches after ~10-40 thousand calls; 64 residual layers of a small
# width share one backward kernel, which switches after a few hundred.
SMALL_LOOP = 1 << 12
COMPILE_S = 0.2
OP_S = 1.5e-6


def hot_after(ops: int, sites: int) -> int:
    """Calls of the stage after which a small loop switches to its kernel (see above)."""
    return max(1, int(COMPILE_S / (OP_S * max(ops, 1) * max(sites, 1))))


_REDUCE_FN = {"sum": "np.sum", "max": "np.max", "min": "np.min"}


@dataclass
class _Mat:
    """A materialised array held in a driver variable."""

    name: str
    fresh: bool  # (a view of) a buffer this call allocated with np.empty (an output's)
    plain: bool  # the whole buffer, C-contiguous


@dataclass
class _Bcast:
    """`broadcast_to(src)`, not materialised: kernels read `src` with a broadcast pattern."""

    src: Value
    shape: tuple[int, ...]


@dataclass
class _Fill:
    """A constant fill, not materialised: kernels take the scalar."""

    param: str  # driver expression of the fill scalar (typed)
    dtype: np.dtype
    shape: tuple[int, ...]


def single_body(n: Node) -> Graph:
    """Wrap one elementwise or reduce node in a body graph."""
    b = Builder()
    ins = [b.add_input(v.type) for v in n.inputs]
    out = b.add_node(n.op, ins, n.attrs, [v.type for v in n.outputs])
    return b.build(out)


def _ufunc(op: str) -> bool:
    return isinstance(OPS[op].impl, np.ufunc)


def _scalar_ufunc_body(body: Graph) -> bool:
    """A 0-d body the driver evaluates with NumPy scalar ufunc calls (nothing to compile)."""
    if any(v.ndim for v in body.inputs) or any(v.ndim for n in body.nodes for v in n.outputs):
        return False
    return all(
        n.op in ("const", "full", "broadcast_to") or (is_elementwise(n.op) and _ufunc(n.op))
        for n in body.nodes
    )


class PyDriver:
    """Generates `driver(P, v0, v1, ...) -> list` for a graph; collects kernels and params.

    `bufs` is `assign_buffers(graph)`; after `generate()`, `layout` lists `(slot, shape)`
    per arena view the driver unpacks, in order (what `StageBuffers` builds per set).
    """

    def __init__(self, graph: Graph, kernels: dict[str, str], bufs: Buffers) -> None:
        self.graph = graph
        self.kernels = kernels
        self.bufs = bufs
        # P[0]: the stage's buffers (bound by compile); P[1]: the stage's call counter
        self.params: list[object] = [None, [0]]
        self.hot = False  # whether the driver reads the call counter
        # small loops: (index in params of the call count that switches it, kernel, ops)
        self.small_sites: list[tuple[int, str, int]] = []
        self.src = Source()
        self.vals: dict[Value, _Mat | _Bcast | _Fill] = {}
        self.index: dict[Value, int] = {}
        self.layout: list[tuple[int, tuple[int, ...]]] = []
        self.arena_names: list[str] = []
        self._arena_name: dict[Value, str] = {}
        self._fresh_slots = {s.id for s in bufs.slots if s.fresh}
        self.outputs = set(graph.outputs)

    # -- helpers ---------------------------------------------------------------------------
    def param(self, obj: object) -> str:
        self.params.append(obj)
        return f"P[{len(self.params) - 1}]"

    def shape_param(self, shape: tuple[int, ...]) -> str:
        return "()" if shape == () else self.param(tuple(shape))

    def vname(self, v: Value) -> str:
        return f"v{self.index[v]}"

    def arena_view(self, v: Value) -> str:
        """The name of `v`'s planned arena view (added to the layout on first use)."""
        name = self._arena_name.get(v)
        if name is None:
            name = self._arena_name[v] = f"b{self.index[v]}"
            self.layout.append((self.bufs.slot_of[v], tuple(v.shape)))
            self.arena_names.append(name)
        return name

    def in_arena(self, v: Value) -> bool:
        sid = self.bufs.slot_of.get(v)
        return sid is not None and sid not in self._fresh_slots

    def out(self, v: Value) -> str:
        """Bind `v` to the buffer the plan gives it and return the name to write into."""
        name = self.vname(v)
        if self.in_arena(v):
            self.src.line(f"{name} = {self.arena_view(v)}")
            self.vals[v] = _Mat(name, False, True)
        else:  # an output (or, defensively, a value the plan gave no buffer): fresh
            self.src.line(f"{name} = np.empty({self.shape_param(v.shape)}, {ctor(v.dtype)})")
            self.vals[v] = _Mat(name, True, True)
        return name

    def mat(self, v: Value) -> str:
        """The name of `v` as a real array, materialising a lazy broadcast or fill."""
        d = self.vals[v]
        if isinstance(d, _Mat):
            return d.name
        name = self.vname(v)
        if isinstance(d, _Bcast):
            src = self.mat(d.src)
            self.src.line(f"{name} = np.broadcast_to({src}, {self.shape_param(d.shape)})")
            fresh = isinstance(self.vals[d.src], _Mat) and self.vals[d.src].fresh
            self.vals[v] = _Mat(name, fresh, False)  # a read-only view
            return name
        # a fill: into the planned buffer of the value it lives in, when that is as large
        root = self.bufs.liveness.root.get(v, v)
        if self.in_arena(root) and root.type.size == v.type.size:
            buf = self.arena_view(root)
            self.src.line(f"{name} = {buf}.reshape({self.shape_param(v.shape)})")
            self.src.line(f"{name}.fill({d.param})")
        else:
            self.src.line(
                f"{name} = np.full({self.shape_param(d.shape)}, {d.param}, {ctor(d.dtype)})"
            )
        self.vals[v] = _Mat(name, False, False)
        return name

    def operand(self, v: Value) -> str:
        """An argument for a NumPy call that broadcasts: a lazy broadcast passes its source
        (NumPy broadcasts it the same way), a lazy fill its scalar."""
        d = self.vals[v]
        if isinstance(d, _Fill):
            return d.param
        if isinstance(d, _Bcast):
            return self.mat(d.src)
        return d.name

    # -- generation ------------------------------------------------------------------------
    def generate(self) -> str:
        g = self.graph
        for v in g.inputs:
            self.index[v] = len(self.index)
        for n in g.nodes:
            for v in n.outputs:
                self.index[v] = len(self.index)
        args = ", ".join(["P"] + [self.vname(v) for v in g.inputs])
        for v in g.inputs:
            name = self.vname(v)
            if v.ndim == 0:  # Python scalars arrive as floats/ints
                self.src.line(f"{name} = np.asarray({name}, {ctor(v.dtype)})")
            self.vals[v] = _Mat(name, False, False)
        for n in g.nodes:
            self.node(n)
        self.src.line(f"return [{', '.join(self.result(g.outputs))}]")
        body = self.src.lines
        if self.hot:
            # calls so far (P[1], a one-item list): each small loop runs as NumPy calls
            # until the count passes its own threshold (a param), then as its kernel
            body = ["C = P[1]", "C[0] += 1", "calls = C[0]", *body]
            sites = Counter(k for _, k, _ in self.small_sites)
            for j, kname, ops in self.small_sites:
                self.params[j] = hot_after(ops, sites[kname])
        text = Source()
        with text.block(f"def driver({args}):"):
            if not self.layout:
                text.lines.extend("    " + line if line else line for line in body)
            else:
                text.line("A = P[0]")
                text.line("B, V = A.acquire()")
                with text.block("try:"):
                    names = ", ".join(self.arena_names)
                    text.line(f"{names}, = V")
                    text.lines.extend("        " + line if line else line for line in body)
                with text.block("finally:"):
                    text.line("A.release(B)")
        return text.text()

    def result(self, outs: tuple[Value, ...]) -> list[str]:
        """Output expressions: fresh buffers as they are, everything else copied once."""
        root = self.bufs.liveness.root
        per_root = Counter(root.get(v, v) for v in set(outs))
        texts, seen = [], Counter()
        for v in outs:
            d = self.vals[v]
            if isinstance(d, _Fill):
                texts.append(f"np.full({self.shape_param(d.shape)}, {d.param}, {ctor(d.dtype)})")
                continue
            name = self.mat(v)
            d = self.vals[v]
            if d.fresh and d.plain and per_root[root.get(v, v)] == 1 and not seen[v]:
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
        if not n.outputs:
            return  # a dead fused group (nothing reads it): nothing to run
        if n.op not in ("const", "full", "broadcast_to"):
            self.comment(n)
        op = n.op
        if is_elementwise(op) and (routed(n) or _ufunc(op)):
            self.ufunc(n)
        elif op in REDUCE_OPS and n.out.type.is_float and n.out.dtype == n.inputs[0].dtype:
            self.reduce(n)
        elif op == "fused" and _scalar_ufunc_body(n.attrs["body"]):
            self.scalar_body(n)
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
        outs = [self.out(v) for v in n.outputs]
        call = args + params + outs
        if k.needs_shape:
            call.append(self.shape_param(k.domain))
        # the domain's size is a param, so the text stays size-independent; each variant
        # (NumPy calls, serial kernel, parallel kernel) compiles on first use only
        size = self.param(int(np.prod(k.domain, dtype=np.int64)))
        kname = k.name
        if k.par_name is not None:
            self.kernels[k.par_name] = k.par_source
            least = PARALLEL_MIN_LIBM if "math." in k.source else PARALLEL_MIN
            kname = f"({k.par_name} if {size} >= {least} else {k.name})"
        if k.domain == ():
            self.src.line(f"{kname}({', '.join(call)})")
            return
        self.hot = True
        after = self.param(0)  # set when every call site is known (generate)
        ops = sum(m.op not in ("const", "full", "broadcast_to") for m in body.nodes)
        self.small_sites.append((len(self.params) - 1, k.name, ops))
        with self.src.block(f"if calls > {after} or {size} >= {SMALL_LOOP}:"):
            self.src.line(f"{kname}({', '.join(call)})")
        with self.src.block("else:"):
            tag = f"t{self.index[n.outputs[0]]}_"
            self.small_loop(body, args, shapes, dict(zip(k.params, params)), outs, tag)

    def small_loop(
        self,
        body: Graph,
        args: list[str],
        shapes: list[tuple[int, ...] | None],
        consts: dict[Node, str],
        outs: list[str],
        tag: str,
    ) -> None:
        """A small loop body as NumPy calls, one per op (see `SMALL_LOOP`).

        NumPy broadcasts the operands as the kernel's index patterns would; a value computed
        only from broadcast operands may be smaller than its type, so a reduction gets it
        broadcast to full shape. Outputs are written by the op that computes them (an output
        overwrites an operand only in a single-output body, whose last op computes it).
        """
        env: dict[Value, str] = dict(zip(body.inputs, args))
        full = {b for b, sh in zip(body.inputs, shapes) if sh is not None and tuple(sh) == b.shape}
        out_of = dict(zip(body.outputs, outs))
        written: set[Value] = set()
        line = self.src.line
        for j, m in enumerate(body.nodes):
            if m.op == "broadcast_to":
                env[m.out] = env[m.inputs[0]]
                continue
            if m.op in ("const", "full"):
                env[m.out] = consts[m]
                continue
            a = [env[u] for u in m.inputs]
            o = out_of.get(m.out)
            t = o or f"{tag}{j}"
            if m.op in REDUCE_OPS:
                x = a[0]
                if m.inputs[0] not in full:
                    x = f"np.broadcast_to({x}, {self.shape_param(m.inputs[0].shape)})"
                axis = self.param(tuple(m.attrs["axis"]))
                kd = bool(m.attrs["keepdims"])
                fn = _REDUCE_FN[m.op]
                if o:
                    line(f"{fn}({x}, axis={axis}, keepdims={kd}, out={o})")
                else:
                    line(f"{t} = {fn}({x}, axis={axis}, keepdims={kd})")
            elif _ufunc(m.op):
                name = OPS[m.op].impl.__name__
                if o:
                    line(f"np.{name}({', '.join(a)}, out={o})")
                else:
                    line(f"{t} = np.{name}({', '.join(a)})")
            else:  # the reference implementation (where, astype)
                impl, attrs = self.param(OPS[m.op].impl), self.param(dict(m.attrs))
                if o:
                    line(f"np.copyto({o}, {impl}({', '.join(a)}, **{attrs}), casting='unsafe')")
                else:
                    line(f"{t} = {impl}({', '.join(a)}, **{attrs})")
            env[m.out] = t
            if o:
                written.add(m.out)
            if o or any(u in full and u.shape == m.out.shape for u in m.inputs):
                full.add(m.out)
        for bv, o in out_of.items():
            if bv not in written:  # an input, constant or broadcast passed through
                line(f"np.copyto({o}, {env[bv]}, casting='unsafe')")

    def ufunc(self, n: Node) -> None:
        """`np.<op>(*inputs, out=...)`: NumPy's SIMD loop, broadcasting lazy inputs itself."""
        args = [self.operand(v) for v in n.inputs]
        out = self.out(n.out)
        self.src.line(f"np.{OPS[n.op].impl.__name__}({', '.join(args)}, out={out})")

    def reduce(self, n: Node) -> None:
        """A lone sum/max/min: NumPy's reduction (what the reference implementation runs)."""
        x = self.mat(n.inputs[0])
        axis = self.param(tuple(n.attrs["axis"]))
        out = self.out(n.out)
        kd = bool(n.attrs["keepdims"])
        self.src.line(f"{_REDUCE_FN[n.op]}({x}, axis={axis}, keepdims={kd}, out={out})")

    def scalar_body(self, n: Node) -> None:
        """A 0-d fused body as NumPy scalar ufunc calls (cheaper than compiling a kernel)."""
        body = n.attrs["body"]
        env: dict[Value, str] = {}
        for b, v in zip(body.inputs, n.inputs):
            env[b] = self.operand(v)
        base = self.index[n.outputs[0]]
        for j, m in enumerate(body.nodes):
            if m.op == "broadcast_to":
                env[m.out] = env[m.inputs[0]]
            elif m.op == "const":
                env[m.out] = self.param(np.array(m.attrs["value"].array)[()])
            elif m.op == "full":
                env[m.out] = self.param(np.dtype(m.attrs["dtype"]).type(m.attrs["fill"]))
            else:
                name = f"s{base}_{j}"
                args = ", ".join(env[u] for u in m.inputs)
                self.src.line(f"{name} = np.{OPS[m.op].impl.__name__}({args})")
                env[m.out] = name
        for v, bv in zip(n.outputs, body.outputs):
            out = self.out(v)
            self.src.line(f"{out}[()] = {env[bv]}")

    def fallback(self, n: Node) -> None:
        """Run the op's NumPy reference implementation (ops no kernel covers, e.g. int max).

        The implementation travels in P, so generated modules never import the compiler.
        """
        args = ", ".join(self.mat(v) for v in n.inputs)
        impl, attrs = self.param(OPS[n.op].impl), self.param(dict(n.attrs))
        if len(n.outputs) == 1 and n.out in self.bufs.slot_of:
            out = self.out(n.out)
            self.src.line(f"np.copyto({out}, {impl}({args}, **{attrs}), casting='unsafe')")
            return
        name = self.vname(n.out)
        self.src.line(
            f"{name} = np.array({impl}({args}, **{attrs}), {ctor(n.out.dtype)}, order='C')"
        )
        self.vals[n.out] = _Mat(name, True, True)


# -- per-op lowering ---------------------------------------------------------------------


def _view(drv: PyDriver, n: Node, expr: str) -> None:
    """Bind `n`'s output to a view expression of its first input."""
    x = n.inputs[0]
    name = drv.vname(n.out)
    drv.src.line(f"{name} = {expr.format(drv.mat(x))}")
    d = drv.vals[x]
    drv.vals[n.out] = _Mat(name, d.fresh, d.plain and n.op == "reshape")


def _lazy_fill(drv: PyDriver, n: Node) -> bool:
    d = drv.vals[n.inputs[0]]
    if isinstance(d, _Fill):
        drv.vals[n.out] = _Fill(d.param, d.dtype, n.out.shape)
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
    if isinstance(d, _Fill):
        drv.vals[n.out] = _Fill(d.param, d.dtype, n.out.shape)
    elif isinstance(d, _Bcast):
        drv.vals[n.out] = _Bcast(d.src, n.out.shape)
    else:
        drv.vals[n.out] = _Bcast(n.inputs[0], n.out.shape)


def _const(drv: PyDriver, n: Node) -> None:
    name = drv.vname(n.out)
    drv.src.line(f"{name} = {drv.param(np.array(n.attrs['value'].array))}")
    drv.vals[n.out] = _Mat(name, False, False)


def _full(drv: PyDriver, n: Node) -> None:
    dt = np.dtype(n.attrs["dtype"])
    drv.vals[n.out] = _Fill(drv.param(dt.type(n.attrs["fill"])), dt, n.out.shape)


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
    if isinstance(d, _Fill):
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
