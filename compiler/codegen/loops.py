"""Loop kernels: one njit loop nest for an elementwise body with an optional trailing reduction.

A body is a small Graph (a fused node's `body`, or a single elementwise/reduce node wrapped in
one). Every value in it is evaluated pointwise at one index of the *domain* (the shape of the
reduced operand, else the broadcast of all shapes), so broadcasting costs nothing: an operand
of a smaller shape is read with 0 in its broadcast dimensions, and `broadcast_to` is a rename.

The kernel is shape-generic: extents come from an argument's `.shape`, and only ranks, dtypes
and the broadcast pattern (which dimensions are 1) appear in its text. Constants and fills
are arguments, so the text does not depend on their values either. Each value is computed at
the shallowest loop depth where all of its indices are known (loop-invariant hoisting done by
hand: Numba cannot hoist loads past stores to arrays that might alias). Reductions over a
trailing run of axes accumulate in a register; other reduced axes accumulate into the output.

A float32 (or float16) sum accumulates in float64 (a float64 register, or a float64 scratch
array where it accumulates across outer iterations) and rounds once at the store: summed
sequentially in float32, 1e7 terms lose about four digits, where NumPy's pairwise sum loses
none that matter. This is the one deliberate float64 value in a float32 kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from compiler.codegen import simd
from compiler.codegen.source import NJIT, NJIT_PARALLEL, Source, ctor, name_kernel
from compiler.ir.graph import Graph, Node, Value
from compiler.ir.types import broadcast
from compiler.primitives import CONST_OPS, OPS, REDUCE_OPS, Lowering

_BODY_OPS_EXTRA = CONST_OPS | {"broadcast_to"}


@dataclass(frozen=True)
class LoopKernel:
    """A generated loop kernel and how to call it.

    Call: `name(*inputs, *params, *outputs[, domain_shape])`, where `params` are the values of
    the body's `const` nodes (arrays, or NumPy scalars when 0-d) and `full` fills (scalars),
    in body order.
    """

    name: str
    source: str
    params: tuple[Node, ...]
    needs_shape: bool
    domain: tuple[int, ...]
    inplace_ok: tuple[int, ...]  # body inputs read exactly at the domain index (no broadcast)
    par_name: str | None = None  # the same kernel with `prange` on its outer loop, if legal
    par_source: str | None = None


def is_elementwise(op: str) -> bool:
    d = OPS.get(op)
    return d is not None and d.lowering is Lowering.SCALAR


def _broadcasts_to(s: tuple[int, ...], d: tuple[int, ...]) -> bool:
    try:
        return broadcast(s, d) == tuple(d)
    except ValueError:
        return False


def body_domain(body: Graph) -> tuple[int, ...] | None:
    """The loop domain of `body`, or None when it is not one loop nest (see `fits_loop`)."""
    reds = [n for n in body.nodes if n.op in REDUCE_OPS]
    shapes = [v.shape for v in body.inputs]
    for n in body.nodes:
        if n.op not in REDUCE_OPS:
            shapes.extend(v.shape for v in n.outputs)
    if reds:
        domain = reds[0].inputs[0].shape
    else:
        try:
            domain = broadcast(*shapes) if shapes else ()
        except ValueError:
            return None
    if not all(_broadcasts_to(s, domain) for s in shapes):
        return None
    return tuple(domain)


def fits_loop(body: Graph) -> bool:
    """Whether `body` compiles to one loop nest: elementwise ops, broadcasts, constants and
    reductions (all over the same axes of the same-shaped operand) that no body op reads."""
    reds = [n for n in body.nodes if n.op in REDUCE_OPS]
    for n in body.nodes:
        if not (is_elementwise(n.op) or n.op in _BODY_OPS_EXTRA or n.op in REDUCE_OPS):
            return False
        if len(n.outputs) != 1:
            return False
    if reds:
        first = reds[0]
        for n in reds:
            if n.inputs[0].shape != first.inputs[0].shape:
                return False
            if tuple(sorted(n.attrs["axis"])) != tuple(sorted(first.attrs["axis"])):
                return False
            if n.op != "sum" and not n.out.type.is_float:
                return False  # max/min of ints: no infinity to start from
            if n.op == "sum" and n.out.dtype != n.inputs[0].dtype:
                return False
        red_outs = {n.out for n in reds}
        if any(v in red_outs for n in body.nodes for v in n.inputs):
            return False
        outs = [v for v in body.outputs if v in red_outs]
        if len(outs) != len(set(outs)):
            return False
    return body_domain(body) is not None


def _pattern(shape: tuple[int, ...], domain: tuple[int, ...]) -> tuple[str, set[int]]:
    """Index text for reading an array of `shape` at the domain index, and the dims it uses."""
    off = len(domain) - len(shape)
    parts, used = [], set()
    for j, s in enumerate(shape):
        d = off + j
        if s == 1 and domain[d] != 1:
            parts.append("0")
        else:
            parts.append(f"i{d}")
            used.add(d)
    return ("[()]" if not parts else "[" + ", ".join(parts) + "]"), used


def _level(used: set[int]) -> int:
    return max(used) + 1 if used else 0


class _Gen:
    def __init__(self, body: Graph, arg_shapes: Sequence[tuple[int, ...] | None]) -> None:
        self.body = body
        self.arg_shapes = list(arg_shapes)
        dom = body_domain(body)
        assert dom is not None
        self.domain = dom
        self.rank = len(self.domain)
        self.stmts: list[list[str]] = [[] for _ in range(self.rank + 1)]
        self.names: dict[Value, str] = {}
        self.levels: dict[Value, int] = {}
        self.params: list[Node] = []
        self.red_nodes = [n for n in body.nodes if n.op in REDUCE_OPS]
        self._parallel = False  # set per emission: prange on the outer loop
        self.preamble: list[str] = []  # module lines the kernel needs (SIMD intrinsics)

    def run(self) -> LoopKernel:
        body, dom = self.body, self.domain
        used_vals = {v for n in body.nodes for v in n.inputs} | set(body.outputs)
        inplace = []
        for k, v in enumerate(body.inputs):
            shape = self.arg_shapes[k]
            if v not in used_vals:
                continue
            if shape is None:
                self.names[v], self.levels[v] = f"a{k}", 0
                continue
            idx, used = _pattern(shape, dom)
            self.names[v], self.levels[v] = f"x{k}", _level(used)
            self.stmts[_level(used)].append(f"x{k} = a{k}{idx}")
            if tuple(shape) == dom:
                inplace.append(k)
        for pos, n in enumerate(body.nodes):
            self._node(pos, n)
        src, needs_shape, ops = self._emit(parallel=False)
        name, text = name_kernel(src)
        par_name = par_text = None
        if self._parallel_ok():
            par_name, par_text = name_kernel(self._emit(parallel=True)[0])
        return LoopKernel(
            name, text, tuple(self.params), needs_shape, dom, tuple(inplace), par_name, par_text
        )

    def _parallel_ok(self) -> bool:
        """`prange` on the outer loop is race-free: every outer iteration writes its own
        outputs, or the only cross-iteration state is a scalar sum (a parfor reduction)."""
        r = self.rank
        if r == 0:
            return False
        axes = tuple(sorted(self.red_nodes[0].attrs["axis"])) if self.red_nodes else ()
        if not axes:
            return True
        t = r
        while t > 0 and (t - 1) in axes:
            t -= 1
        if set(axes) != set(range(t, r)):
            return False  # accumulates into the output across outer iterations
        return t > 0 or all(n.op == "sum" for n in self.red_nodes)

    def _node(self, pos: int, n: Node) -> None:
        out = n.out
        if n.op == "broadcast_to":
            self.names[out], self.levels[out] = self.names[n.inputs[0]], self.levels[n.inputs[0]]
        elif n.op in ("const", "full"):
            j = len(self.params)
            self.params.append(n)
            arr_shape = out.shape if n.op == "const" else ()
            if arr_shape == ():
                self.names[out], self.levels[out] = f"c{j}", 0
            else:
                idx, used = _pattern(arr_shape, self.domain)
                self.names[out], self.levels[out] = f"y{j}", _level(used)
                self.stmts[_level(used)].append(f"y{j} = c{j}{idx}")
        elif n.op in REDUCE_OPS:
            pass  # accumulated in _emit
        else:
            # in SIMD mode libm calls become intrinsics LLVM widens to libmvec (simd.py)
            tmpl, lines = simd.render(OPS[n.op].codegen.template, out.dtype)
            self.preamble += [ln for ln in lines if ln not in self.preamble]
            args = [self.names[v] for v in n.inputs]
            lvl = max((self.levels[v] for v in n.inputs), default=0)
            name = f"t{pos}"
            self.stmts[lvl].append(f"{name} = {tmpl.format(*args, T=ctor(out.dtype))}")
            self.names[out], self.levels[out] = name, lvl

    # -- emission ------------------------------------------------------------------------
    def _extent_source(self) -> str | None:
        dom = self.domain
        red_outs = {n.out for n in self.red_nodes}
        for k, v in enumerate(self.body.outputs):
            if v not in red_outs and v.shape == dom:
                return f"o{k}"
        for k, shape in enumerate(self.arg_shapes):
            if shape is not None and tuple(shape) == dom:
                return f"a{k}"
        return None

    def _emit(self, parallel: bool) -> tuple[str, bool, list[str]]:
        body, r, dom = self.body, self.rank, self.domain
        red_outs = {n.out: n for n in self.red_nodes}
        nin = len(body.inputs)
        args = [f"a{k}" for k in range(nin)] + [f"c{j}" for j in range(len(self.params))]
        args += [f"o{k}" for k in range(len(body.outputs))]
        ext = self._extent_source()
        needs_shape = r > 0 and ext is None
        if needs_shape:
            args.append("shp")
            ext = "shp"
        else:
            ext = f"{ext}.shape" if ext else None

        # reductions: the axes, the trailing run that accumulates in registers, output index
        axes = tuple(sorted(self.red_nodes[0].attrs["axis"])) if self.red_nodes else ()
        t = r
        while t > 0 and (t - 1) in axes:
            t -= 1
        full_trailing = set(axes) == set(range(t, r))
        reds = []  # (out name, node, acc name, index text)
        for k, v in enumerate(body.outputs):
            n = red_outs.get(v)
            if n is None:
                continue
            if n.attrs["keepdims"]:
                parts = ["0" if d in axes else f"i{d}" for d in range(r)]
            else:
                parts = [f"i{d}" for d in range(r) if d not in axes]
            idx = "[" + ", ".join(parts) + "]" if parts else "[()]"
            # where the sum accumulates across outer iterations: the output, or for a wide
            # (float32) sum a float64 scratch array rounded into the output at the end
            into = f"w{k}" if _wide(n) and axes and not full_trailing else f"o{k}"
            reds.append((f"o{k}", n, f"r{k}", idx, into))

        stores: list[list[str]] = [[] for _ in range(r + 1)]
        for k, v in enumerate(body.outputs):
            if v in red_outs:
                continue
            idx, used = _pattern(v.shape, dom)
            lvl = max(_level(used), self.levels[v])
            stores[lvl].append(f"o{k}{idx} = {self.names[v]}")

        src = Source()
        for line in self.preamble:
            src.line(line)
        ops = [n.op for n in body.nodes if n.op not in ("const", "full", "broadcast_to")]
        src.line(NJIT_PARALLEL if parallel else NJIT)
        with src.block(f"def {{name}}({', '.join(args)}):"):
            summary = " ".join(ops) or "copy"
            if len(summary) > 72:
                summary = f"{len(ops)} ops: {summary[:60].rsplit(' ', 1)[0]} ..."
            src.line(f"# {summary}; domain rank {r}")
            if r == 1:
                src.line(f"n0 = {ext}[0]")
            elif r > 1:
                src.line(f"{', '.join(f'n{d}' for d in range(r))} = {ext}")
            if reds and not full_trailing and axes:
                for oname, n, _acc, _idx, into in reds:
                    if into != oname:
                        src.line(f"{into} = np.empty({oname}.shape, np.float64)")
                    self._out_loops(src, oname, n, f"{into}[{{}}] = {self._init(n)}")
            self._parallel = parallel
            self._emit_depth(src, 0, t, full_trailing, axes, reds, stores)
            for oname, n, _acc, _idx, into in reds:
                if into != oname:  # round the float64 sums once
                    self._out_loops(
                        src, oname, n, f"{oname}[{{0}}] = {ctor(n.out.dtype)}({into}[{{0}}])"
                    )
        return src.text(), needs_shape, ops

    @staticmethod
    def _out_loops(src: Source, oname: str, n: Node, stmt: str) -> None:
        """A loop nest over the reduction output's shape running `stmt` (`{0}` the index)."""
        rank = n.out.ndim

        def nest(d: int) -> None:
            if d == rank:
                src.line(stmt.format(", ".join(f"j{e}" for e in range(rank)) or "()"))
                return
            with src.block(f"for j{d} in range({oname}.shape[{d}]):"):
                nest(d + 1)

        nest(0)

    @staticmethod
    def _init(n: Node) -> str:
        T = "np.float64" if _wide(n) else ctor(n.out.dtype)
        return {"sum": f"{T}(0)", "max": f"{T}(-np.inf)", "min": f"{T}(np.inf)"}[n.op]

    @staticmethod
    def _combine(op: str, acc: str, v: str) -> str:
        if op == "sum":
            return f"{acc} + {v}"
        cmp = ">" if op == "max" else "<"
        # NaN wins: once the accumulator is NaN, neither test can replace it
        return f"{v} if ({v} {cmp} {acc} or {v} != {v}) else {acc}"

    def _emit_depth(self, src, d, t, full_trailing, axes, reds, stores) -> None:
        r = self.rank
        for s in self.stmts[d]:
            src.line(s)
        if d < r:
            for s in stores[d]:
                src.line(s)
        if d == t and axes and t < r:
            for _o, n, acc, _idx, _into in reds:
                src.line(f"{acc} = {self._init(n)}")
        if d < r:
            loop = "numba.prange" if d == 0 and self._parallel else "range"
            with src.block(f"for i{d} in {loop}(n{d}):"):
                self._emit_depth(src, d + 1, t, full_trailing, axes, reds, stores)
        else:
            for s in stores[d]:
                src.line(s)
            for oname, n, acc, idx, into in reds:
                v = self.names[n.inputs[0]]
                if not axes:  # reducing over no axis is the identity
                    src.line(f"{oname}{idx} = {v}")
                    continue
                if _wide(n):
                    v = f"np.float64({v})"
                if t < r:
                    if n.op == "sum":
                        src.line(f"{acc} += {v}")
                    else:
                        src.line(f"{acc} = {self._combine(n.op, acc, v)}")
                else:
                    src.line(f"{into}{idx} = {self._combine(n.op, into + idx, v)}")
        if d == t and axes and t < r:
            for oname, n, acc, idx, into in reds:
                if full_trailing:
                    val = f"{ctor(n.out.dtype)}({acc})" if _wide(n) else acc
                    src.line(f"{oname}{idx} = {val}")
                else:
                    src.line(f"{into}{idx} = {self._combine(n.op, into + idx, acc)}")


def _wide(n: Node) -> bool:
    """Whether reduction `n` accumulates in float64: a float32 or float16 sum (module doc)."""
    return n.op == "sum" and n.out.dtype in (np.float32, np.float16)


def loop_kernel(body: Graph, arg_shapes: Sequence[tuple[int, ...] | None]) -> LoopKernel:
    """Generate the loop kernel of `body` (which must pass `fits_loop`).

    `arg_shapes[k]` is the static shape of the array passed for body input k (it may be
    smaller than the input's type when a broadcast was folded into the read), or None when
    a scalar is passed.
    """
    return _Gen(body, arg_shapes).run()


def init_text(n: Node) -> str:
    """The accumulator's initial value for reduction `n` (float64 for a wide sum)."""
    return _Gen._init(n)


def combine_text(op: str, acc: str, v: str) -> str:
    """`acc` combined with `v` for reduction `op` (NaN-sticky for max and min)."""
    return _Gen._combine(op, acc, v)


def wide_sum(n: Node) -> bool:
    """Whether reduction `n` accumulates in float64 (a float32 or float16 sum)."""
    return _wide(n)
