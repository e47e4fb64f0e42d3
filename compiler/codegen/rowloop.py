"""Codegen of `rowfused` (the `rowfuse` pass): `X @ w`, a loop over its rows and `X.T @ r` as
one njit kernel that reads X once from memory.

The kernel walks X in blocks of rows (`block_rows`: about 128 KiB of X). Per block: the
block's dot products into a scratch row `zb` (four rows at a time, so each load of w serves
four rows); the fused body over the block (a plain loop over contiguous scratch, which LLVM
vectorises, SIMD transcendentals included); then the block's contribution
`g += r[i] * X[i, :]` (four rows per pass over g), while the block is still in L2. A per-row
kernel (dot, body, update for one row at a time) would run the body's transcendentals one
element at a time: measured on 10000 x 50 logreg, 380 us against 130-140 us blocked (and
160 us for BLAS's two products plus the separate loop).

The blocks are grouped into parts fixed by the shape (`part_bounds`). The kernel is `nogil`
and several threads may run it at once with one counter array `ctr`: each call claims parts
(`atomics.atomic_add`), stores each part's g and reductions as a float64 row of `acc`, and
the thread that finishes the last part joins the rows in part order into g and the
reduction outputs, so the answer is the same bits on any number of threads. The caller's
call (`spins` > 0) then waits in the kernel for the join; a part worker's (`spins` < 0) waits
instead, at most -spins pauses, for the next call to ring `bell`. `ctr[3]` is the value `bell`
has once this call rang (0: no workers, no ring); the caller's call rings it on entry, after
Numba released the interpreter lock. The compiled driver's (`spins` = 0) does neither.
`runtime.row_parts.run_parts` runs it on the threads (docs/architecture-codegen.md).

Accuracy: the dot products and g accumulate in float64 whatever the dtype (float32 rounds
once, at the store), as gradc's float32 sums do; the body runs in the kernel's dtype, with
every literal typed. The kernel allocates nothing: the caller passes each thread's block
scratch (`zr`: 2 x block rows of the dtype, `wg`: 2 x d float64 for w and the g accumulator)
and the partial results `acc` (parts x (d + reductions), float64).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from compiler.codegen import simd
from compiler.codegen.loops import REDUCE_OPS, combine_text, init_text, wide_sum
from compiler.codegen.numpy_calls import loop_as_numpy_calls
from compiler.codegen.source import NJIT_NOGIL, Source, ctor, name_kernel
from compiler.ir.graph import Graph, Node, Value
from compiler.primitives import OPS
from runtime.row_parts import run_parts

if TYPE_CHECKING:  # the drivers pass themselves; imported for annotations only
    from compiler.codegen.driver import PyDriver

# A block is about ROW_BLOCK_BYTES of X, so it is still in L2 (1 MiB per core here) when the
# update reads it again: 327 rows at d = 50 (128-512 rows measured within 3% of each other on
# logreg, 2-core EPYC), 16 at d = 1000, where 256 rows (2 MiB) fell out of L2 and ran slower
# than BLAS's two products. At least MIN_ROWS, so the body's vectorised loop has work.
ROW_BLOCK_BYTES = 1 << 17
MIN_ROWS, MAX_ROWS = 16, 512
# The rows are split into parts that threads claim one at a time (`runtime.row_parts.
# run_parts`): about PART_BYTES of X each (four blocks), so a thread that starts late (a
# wake-up is ~20-50 us) still finds parts left, while a part's own cost (one atomic add and
# d partial sums) stays small against its rows.
PART_BYTES = 1 << 19
MAX_PARTS = 64
# what the kernel's module imports (codegen/atomics.py imports Numba: not at `import compiler`)
_ATOMICS = (
    "from compiler.codegen.atomics import atomic_add as _atomic_add, "
    "atomic_load as _atomic_load, pause as _pause"
)
_FREE = ("broadcast_to",)


@dataclass(frozen=True)
class RowKernel:
    """A generated row kernel. Call: `name(X, W, *inputs, *params, *outputs, g, acc, bounds,
    ctr, zr, wg, spins, bell)`, `inputs` the body's inputs other than z, `params` its consts and
    fills in body order; `reductions` is how many partial results a part keeps besides g."""

    name: str
    source: str
    params: tuple[Node, ...]
    reductions: int


def _read(name: str, shape: tuple[int, ...] | None, n: int) -> tuple[str, bool]:
    """How the kernel reads an operand at block row `i`, and whether that is per row.

    A per-row operand is read through its block's slice (`{name}b = {name}[i0:i0 + m]`,
    opened per block): indexed by the body loop's own `range(m)` counter, the load is
    provably non-negative and contiguous, so LLVM vectorises it as a plain vector load.
    With `{name}[i0 + i]` Numba's negative-index wraparound hid that from LLVM and every
    per-row operand became a gather. On logreg (10000 x 50) the two measure the same within
    noise in interleaved runs (docs/performance.md): the loop is bound by its libmvec
    calls; the slice is the simpler code."""
    if shape is None:
        return name, False  # a scalar argument (a lazy fill)
    if shape == ():
        return f"{name}[()]", False
    if shape == (1,) and n != 1:
        return f"{name}[0]", False
    return f"{name}b[i]", True


class _Gen:
    def __init__(self, node: Node, arg_shapes: Sequence[tuple[int, ...] | None]) -> None:
        self.body: Graph = node.attrs["body"]
        self.z, self.r = node.attrs["z"], node.attrs["r"]
        self.emit = tuple(node.attrs["emit"])
        self.x, self.w = node.inputs[0], node.inputs[1]
        self.g_rank = len(node.attrs["gshape"])
        self.n = self.body.inputs[self.z].shape[0]
        self.dtype = self.body.inputs[self.z].dtype
        self.arg_shapes = list(arg_shapes)
        self.hoisted: list[str] = []
        self.row: list[str] = []
        self.names: dict[Value, str] = {}
        self.per_row: dict[Value, bool] = {}
        self.params: list[Node] = []
        # the body's reductions (position, node): a part keeps each one's partial result
        self.reds = [(pos, m) for pos, m in enumerate(self.body.nodes) if m.op in REDUCE_OPS]
        self.preamble: list[str] = []

    def _put(self, v: Value, expr: str, per_row: bool, name: str) -> None:
        (self.row if per_row else self.hoisted).append(f"{name} = {expr}")
        self.names[v], self.per_row[v] = name, per_row

    def run(self) -> RowKernel:
        body = self.body
        others = [k for k in range(len(body.inputs)) if k != self.z]
        for k, shape in zip(others, self.arg_shapes):
            expr, per_row = _read(f"a{k}", shape, self.n)
            self._put(body.inputs[k], expr, per_row, f"x{k}")
        self._put(body.inputs[self.z], "zb[i]", True, f"x{self.z}")
        for pos, m in enumerate(body.nodes):
            self._node(pos, m)
        text = self._emit(others)
        name, source = name_kernel(text)
        return RowKernel(name, source, tuple(self.params), len(self.reds))

    def _node(self, pos: int, m: Node) -> None:
        out = m.out
        if m.op in _FREE:
            self.names[out] = self.names[m.inputs[0]]
            self.per_row[out] = self.per_row[m.inputs[0]]
        elif m.op in ("const", "full"):
            j = len(self.params)
            self.params.append(m)
            # 0-d constants and fills are passed as scalars (`PyDriver.loop_params`)
            shape = out.shape if m.op == "const" and out.ndim else None
            expr, per_row = _read(f"c{j}", shape, self.n)
            self._put(out, expr, per_row, f"y{j}")
        elif m.op in REDUCE_OPS:
            self.names[out], self.per_row[out] = f"r{pos}", False
        else:
            # in SIMD mode libm calls become intrinsics LLVM widens to libmvec (simd.py)
            tmpl, lines = simd.render(OPS[m.op].codegen.template, out.dtype)
            self.preamble += [ln for ln in lines if ln not in self.preamble]
            args = [self.names[v] for v in m.inputs]
            per_row = any(self.per_row[v] for v in m.inputs)
            self._put(out, tmpl.format(*args, T=ctor(out.dtype)), per_row, f"t{pos}")

    def _emit(self, others: list[int]) -> str:
        """The kernel's text; `others` are the body inputs besides z, in argument order."""
        body, T = self.body, ctor(self.dtype)
        f64 = self.dtype == np.float64
        reds = self.reds
        red_outs = {m.out for _, m in reds}
        ins = [f"a{k}" for k in others]
        outs = [f"o{k}" for k in self.emit]
        # the arrays the body reads or writes per row, sliced per block (see `_read`)
        blocked = [a for a, k in zip(ins, others) if self.per_row[body.inputs[k]]]
        blocked += [o for o, k in zip(outs, self.emit) if body.outputs[k] not in red_outs]
        args = ["X", "W", *ins, *(f"c{j}" for j in range(len(self.params))), *outs]
        args += ["og", "acc", "bounds", "ctr", "zr", "wg", "spins", "bell"]
        src = Source()
        for line in (*self.preamble, _ATOMICS):
            src.line(line)
        src.line(NJIT_NOGIL)
        with src.block(f"def {{name}}({', '.join(args)}):"):
            ops = [m.op for m in body.nodes if m.op not in ("const", "full", *_FREE)]
            src.line(f"# rowfused: z = X @ w, {len(ops)} ops per row, g = X.T @ r")
            src.line("n, d = X.shape")
            src.line("B = zr.shape[1]")
            src.line("P = bounds.shape[0] - 1")
            src.line("zb, rb, wv, gv = zr[0], zr[1], wg[0], wg[1]")
            # the caller rings the part workers from here, having released the interpreter
            # lock, so a worker woken from its idle wait takes the lock without sleeping
            with src.block("if spins > 0 and _atomic_load(bell, 0) < ctr[3]:"):
                src.line("_atomic_add(bell, 0, 1)")
            with src.block("for j in range(d):"):
                src.line(f"wv[j] = np.float64(W[{'j, 0' if self.w.ndim == 2 else 'j'}])")
            for line in self.hoisted:
                src.line(line)
            with src.block("while True:"):
                src.line("k = _atomic_add(ctr, 0, 1)  # claim the next part")
                with src.block("if k >= P:"):
                    src.line("break")
                with src.block("for j in range(d):"):
                    src.line("gv[j] = np.float64(0)")
                for pos, m in reds:
                    src.line(f"r{pos} = {init_text(m)}")
                src.line("hi = bounds[k + 1]")
                with src.block("for i0 in range(bounds[k], hi, B):"):
                    self._block(src, T, f64, blocked, red_outs)
                with src.block("for j in range(d):"):
                    src.line("acc[k, j] = gv[j]")
                for q, (pos, _m) in enumerate(reds):
                    src.line(f"acc[k, d + {q}] = np.float64(r{pos})")
                with src.block("if _atomic_add(ctr, 1, 1) == P - 1:  # the last part: join"):
                    self._join(src, T)
                    src.line("_atomic_add(ctr, 2, 1)")
            # the caller's thread (spins > 0) waits for the thread that joins
            src.line("s = 0")
            with src.block("while s < spins and _atomic_load(ctr, 2) == 0:"):
                src.line("_pause()")
                src.line("s += 1")
            # spins < 0: a part worker waits for the next call to ring `bell` (row_parts.py)
            with src.block("while s > spins and _atomic_load(bell, 0) == ctr[3]:"):
                src.line("_pause()")
                src.line("s -= 1")
            src.line("return _atomic_load(ctr, 2)")
        return src.text()

    def _block(self, src: Source, T: str, f64: bool, blocked: list[str], red_outs: set) -> None:
        """One block of rows `i0 .. i0 + m`: dots, the body, the update."""
        body, reds = self.body, self.reds
        src.line("m = min(B, hi - i0)")
        src.line("Xb = X[i0:i0 + m]")
        for a in blocked:
            src.line(f"{a}b = {a}[i0:i0 + m]")
        self._dots(src, T, f64)
        with src.block("for i in range(m):"):
            for line in self.row:
                src.line(line)
            for k in self.emit:
                v = body.outputs[k]
                if v not in red_outs:
                    src.line(f"o{k}b[i] = {self.names[v]}")
            src.line(f"rb[i] = {self.names[body.outputs[self.r]]}")
            for pos, m in reds:
                v = self.names[m.inputs[0]]
                v = f"np.float64({v})" if wide_sum(m) else v
                acc = f"r{pos}"
                src.line(f"{acc} = {combine_text(m.op, acc, v)}")
        self._updates(src, f64)

    def _join(self, src: Source, T: str) -> None:
        """g and the emitted reductions from the parts' partial results, in part order (so
        the answer does not depend on which thread ran which part)."""
        body, reds = self.body, self.reds
        with src.block("for j in range(d):"):
            src.line("s = acc[0, j]")
            with src.block("for p in range(1, P):"):
                src.line("s += acc[p, j]")
            src.line(f"og[{'j, 0' if self.g_rank == 2 else 'j'}] = {T}(s)")
        for k in self.emit:
            v = body.outputs[k]
            for q, (_pos, m) in enumerate(reds):
                if m.out is v:
                    src.line(f"s = acc[0, d + {q}]")
                    with src.block("for p in range(1, P):"):
                        src.line(f"s = {combine_text(m.op, 's', f'acc[p, d + {q}]')}")
                    src.line(f"o{k}[{'0' if v.ndim else '()'}] = {ctor(v.dtype)}(s)")
                    break

    @staticmethod
    def _dots(src: Source, T: str, f64: bool) -> None:
        """zb[i] = X[i0 + i, :] @ w for the block, four rows per pass over w."""
        cast = "{}" if f64 else "np.float64({})"
        src.line("i = 0")
        with src.block("while i + 4 <= m:"):
            src.line("s0 = s1 = s2 = s3 = np.float64(0)")
            with src.block("for j in range(d):"):
                src.line("wj = wv[j]")
                for q in range(4):
                    src.line(f"s{q} += {cast.format(f'Xb[i + {q}, j]')} * wj")
            src.line(f"zb[i], zb[i + 1], zb[i + 2], zb[i + 3] = {T}(s0), {T}(s1), {T}(s2), {T}(s3)")
            src.line("i += 4")
        with src.block("while i < m:"):
            src.line("s0 = np.float64(0)")
            with src.block("for j in range(d):"):
                src.line(f"s0 += {cast.format('Xb[i, j]')} * wv[j]")
            src.line(f"zb[i] = {T}(s0)")
            src.line("i += 1")

    @staticmethod
    def _updates(src: Source, f64: bool) -> None:
        """g += r[i] * X[i0 + i, :] for the block, four rows per pass over g."""
        cast = "{}" if f64 else "np.float64({})"
        src.line("i = 0")
        with src.block("while i + 4 <= m:"):
            for q in range(4):
                src.line(f"q{q} = {cast.format(f'rb[i + {q}]')}")
            with src.block("for j in range(d):"):
                terms = " + ".join(f"q{q} * Xb[i + {q}, j]" for q in range(4))
                src.line(f"gv[j] += {terms}")
            src.line("i += 4")
        with src.block("while i < m:"):
            src.line(f"q0 = {cast.format('rb[i]')}")
            with src.block("for j in range(d):"):
                src.line("gv[j] += q0 * Xb[i, j]")
            src.line("i += 1")


def row_kernel(node: Node, arg_shapes: Sequence[tuple[int, ...] | None]) -> RowKernel:
    """The kernel of a `rowfused` node; `arg_shapes[k]` is the static shape of the array
    passed for the k-th body input other than z (None: a scalar fill)."""
    return _Gen(node, arg_shapes).run()


def block_rows(n: int, d: int, itemsize: int) -> int:
    """Rows per block for an n x d matrix (see ROW_BLOCK_BYTES)."""
    rows = max(MIN_ROWS, min(MAX_ROWS, ROW_BLOCK_BYTES // max(1, d * itemsize)))
    return max(1, min(rows - rows % 4, n))


def part_bounds(n: int, d: int, itemsize: int) -> np.ndarray:
    """The rows where each part starts, then n: whole blocks, about PART_BYTES of X each, at
    most MAX_PARTS. A function of the shape only, so the answer (the parts' partial results
    joined in part order) is the same on any number of threads."""
    b = block_rows(n, d, itemsize)
    blocks = -(-n // b)
    parts = max(1, min(MAX_PARTS, blocks, n * d * itemsize // PART_BYTES))
    return np.array([min(n, k * blocks // parts * b) for k in range(parts + 1)], np.int64)


def scratch_shapes(node: Node) -> tuple[tuple[int, int], tuple[int, int]]:
    """Each thread's scratch: (2, block rows) of the dtype and (2, d) float64."""
    x = node.inputs[0]
    n, d = x.shape
    return (2, block_rows(n, d, x.dtype.itemsize)), (2, d)


def render(drv: PyDriver, n: Node) -> None:
    """A `rowfused` node on the Python driver (either tier) or the compiled driver."""
    args, shapes = drv.loop_args_of(n.inputs[2:])
    x, w = drv.mat(n.inputs[0]), drv.mat(n.inputs[1])
    if drv.tier == "numpy":
        _numpy_calls(drv, n, x, w, args, shapes)
        return
    k = row_kernel(n, shapes)
    drv.kernels[k.name] = k.source
    params = drv.loop_params(k.params)
    outs = [drv.out(v) for v in n.outputs]
    rows, d = n.inputs[0].shape
    bounds = part_bounds(rows, d, n.inputs[0].dtype.itemsize)
    acc = f"np.empty({drv.shape_param((len(bounds) - 1, d + k.reductions))}, np.float64)"
    call = [x, w, *args, *params, *outs, acc, drv.param(bounds)]
    dt = ctor(n.inputs[0].dtype)
    zr, wg = (drv.shape_param(s) for s in scratch_shapes(n))
    if drv.THREADED_ROWS:  # the parts on the caller's thread and the row threads
        drv.src.line(f"{drv.param(run_parts)}({k.name}, ({', '.join(call)}), {zr}, {dt}, {wg})")
    else:  # the compiled driver: every part on the calling thread
        call += ["np.zeros(4, np.int64)", f"np.empty({zr}, {dt})", f"np.empty({wg}, np.float64)"]
        drv.src.line(f"{k.name}({', '.join(call)}, 0, np.zeros(1, np.int64))")


def _numpy_calls(drv: PyDriver, n: Node, x: str, w: str, args: list, shapes: list) -> None:
    """The NumPy tier: the two products around the body's NumPy calls (docs/tiers.md)."""
    body, z, r, emit = n.attrs["body"], n.attrs["z"], n.attrs["r"], n.attrs["emit"]
    base = drv.index[n.outputs[0]]
    zname = f"z{base}"
    drv.src.line(f"{zname} = np.matmul({x}, {w}).reshape({drv.shape_param(body.inputs[z].shape)})")
    args, shapes = list(args), list(shapes)
    args.insert(z, zname)
    shapes.insert(z, body.inputs[z].shape)
    pnodes = [m for m in body.nodes if m.op in ("const", "full")]
    consts = dict(zip(pnodes, drv.loop_params(pnodes)))
    named = dict(zip(emit, (drv.out(v) for v in n.outputs[:-1])))
    if r not in named:
        rv = body.outputs[r]
        named[r] = f"r{base}"
        drv.src.line(f"r{base} = np.empty({drv.shape_param(rv.shape)}, {ctor(rv.dtype)})")
    outs = [named.get(k, f"u{base}_{k}") for k in range(len(body.outputs))]
    for k, v in enumerate(body.outputs):
        if k not in named:
            drv.src.line(f"{outs[k]} = np.empty({drv.shape_param(v.shape)}, {ctor(v.dtype)})")
    loop_as_numpy_calls(drv, body, args, shapes, consts, outs, f"t{base}_")
    g = drv.out(n.outputs[-1])
    col = drv.shape_param((body.inputs[z].shape[0], 1))
    gcol = drv.shape_param((n.inputs[0].shape[1], 1))
    drv.src.line(f"np.matmul({x}.T, {named[r]}.reshape({col}), out={g}.reshape({gcol}))")
