"""The compiled driver for small array graphs: one njit function that runs the whole stage.

The Python driver (`driver.py`) pays CPython's cost per op on every call: a ufunc or kernel
dispatch, argument parsing, a view (about 1.5 us per op, `tuning.OP_S`). On small arrays that
is most of the stage: a batch-64 MLP gradient spends 3-5x its NumPy forward, and an L-BFGS
client on 569 x 30 data spends more in the driver than in its arithmetic. Here the driver is
itself compiled: `_body(Q, V, *inputs)` is njit and calls the stage's loop kernels (njit
calls njit: no dispatch per op), BLAS through `np.dot(a, b, out)` (Numba binds SciPy's
cython BLAS), and writes every intermediate into the arena view the buffer plan gives it.
`V` is the tuple of those views (`StageBuffers.acquire`), `Q` the stage's sizes and
constants, so the text still depends only on the graph's structure.

`driver(P, *inputs)` is the Python entry: it acquires a buffer set, calls `_body` and releases
the set. `_body` compiles on its first call (Numba compiles lazily, for the argument types it
sees), or earlier on a background thread through `warm_call` (the tiered executor's job);
either way it is a separate callable from the Python driver of the same graph, which stays
correct to run while it compiles.

Which graphs: `njit_rule` (below). Ops the compiled driver does not lower (indexing kernels,
concatenate, batched matmul, reference implementations) make the graph ineligible; the
Python driver runs it as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from compiler.codegen import rowloop
from compiler.codegen.driver import PyDriver, single_body
from compiler.codegen.loops import REDUCE_OPS, fits_loop, is_elementwise
from compiler.codegen.lowering import LOWER
from compiler.codegen.source import NJIT, Source, ctor, name_kernel
from compiler.codegen.tuning import COMPILE_S, OP_S, PARALLEL_MIN_LIBM
from compiler.codegen.values import Fill, Mat
from compiler.ir.graph import Graph, Node
from compiler.plan.buffers import Buffers
from compiler.primitives import CONST_OPS, Lowering
from compiler.primitives.registry import ops_lowered
from runtime.background import Job, submit
from runtime.env import OFF, ON
from runtime.numba_import import import_numba
from runtime.tier import sample_of

DRIVER_ENV_VAR = "GRADC_NJIT_DRIVER"

# Work per call that one Python-driver op's overhead (OP_S) is weighed against. Measured on
# the project machine (2-core EPYC, AVX2), single thread, steady state, in-cache operands:
# a fused loop kernel costs about 1 ns per element per op in its body (1.1 ns for a 4-op
# arithmetic body on 2560 float64 elements, more with libm calls); OpenBLAS runs small
# GEMM/GEMV (64..1024 wide) at 5-20 GFLOP/s, so 0.1 ns per multiply-add is the optimistic end.
ELEM_OP_S = 1e-9
FMA_S = 1e-10
# Numba's compile time grows faster than linearly with the size of one function; past this
# many driver ops a stage keeps the Python driver (its kernels still compile one by one).
MAX_OPS = 160

log = logging.getLogger("gradc")

# ops with no arithmetic: views (reshape, transpose, slice, broadcast_to) and constants
_VIEW_OPS = ops_lowered(Lowering.VIEW) | CONST_OPS
_FREE = CONST_OPS | {"broadcast_to"}  # nothing at run time: names, params, index patterns


class NotNjit(Exception):
    """The graph has an op the compiled driver does not lower."""


def _work_s(n: Node) -> float:
    """Estimated seconds of arithmetic in node `n` (see ELEM_OP_S, FMA_S)."""
    if n.op == "matmul":
        a, b = n.inputs
        k = a.shape[-1] if a.ndim else 1
        return FMA_S * n.out.type.size * k
    if n.op == "rowfused":  # two products over X and the body once per row
        body = n.attrs["body"]
        ops = sum(m.op not in _FREE for m in body.nodes)
        return FMA_S * 2 * n.inputs[0].type.size + ELEM_OP_S * ops * n.inputs[0].shape[0]
    if n.op == "fused":
        body = n.attrs["body"]
        ops = sum(m.op not in _FREE for m in body.nodes)
        size = max((v.type.size for m in body.nodes for v in m.inputs), default=1)
        return ELEM_OP_S * ops * size
    if n.op in _VIEW_OPS:
        return 0.0
    size = max([v.type.size for v in n.inputs] + [v.type.size for v in n.outputs])
    return ELEM_OP_S * size


def driver_ops(graph: Graph) -> int:
    """Ops the Python driver runs per call (views and constants cost ~nothing there)."""
    return sum(n.op not in _FREE for n in graph.nodes)


def njit_rule(graph: Graph) -> bool:
    """Whether the stage for `graph` gets the compiled driver (`NjitDriver`).

    When the Python driver's per-op overhead is at least the stage's estimated arithmetic
    (`driver_ops * OP_S >= sum of _work_s`), compiling the driver at least halves the call;
    when the arithmetic dominates it gains at most a few percent and costs a larger compile,
    and the Python driver keeps NumPy's SIMD ufuncs and the parallel kernels. Every loop must
    also stay under the size where a parallel kernel starts to pay (`PARALLEL_MIN_LIBM`):
    the compiled driver runs serial kernels only. Eligibility of the ops is `NjitDriver`'s.
    """
    if driver_env() == "off":
        return False
    ops = driver_ops(graph)
    if ops == 0 or ops > MAX_OPS:
        return False
    for n in graph.nodes:
        if n.op in _VIEW_OPS or n.op == "matmul":  # views cost nothing; BLAS runs either way
            continue
        # a rowfused node's matrix is read like a matmul operand; its loop is over the rows
        ins = n.inputs[2:] if n.op == "rowfused" else n.inputs
        if any(v.type.size >= PARALLEL_MIN_LIBM for v in (*ins, *n.outputs)):
            return False
    return ops * OP_S >= sum(_work_s(n) for n in graph.nodes)


class NjitDriver(PyDriver):
    """Generates `_body` (njit) and `driver(P, *inputs)`; raises `NotNjit` on an op it does
    not lower. `params` is `[None, Q]`: P[0] gets the stage's `StageBuffers` (compile.py)."""

    COPY = "{}.copy()"  # C-contiguous in Numba, whatever the source's layout
    THREADED_ROWS = False  # no Python threads from inside njit: the parts run in turn

    def __init__(self, graph: Graph, kernels: dict[str, str], bufs: Buffers) -> None:
        super().__init__(graph, kernels, bufs)
        self.q: list[object] = []

    def param(self, obj: object) -> str:
        # Python ints/floats type fastest in Numba's dispatcher (see scalar.py); NumPy
        # scalars of other dtypes keep their type
        if isinstance(obj, (np.float64, np.int64, np.bool_)):
            obj = obj.item()
        self.q.append(obj)
        return f"Q[{len(self.q) - 1}]"

    # -- generation ------------------------------------------------------------------------
    def generate(self) -> str:
        g = self.graph
        self.number_values()
        ins = [self.vname(v) for v in g.inputs]
        for v in g.inputs:  # C-contiguous (the dispatcher normalises arguments)
            self.vals[v] = Mat(self.vname(v), False, True)
        for n in g.nodes:
            self.node(n)
        outs = self.result(g.outputs)
        body = self.src.lines
        self.params = [None, tuple(self.q)]
        text = Source()
        text.line(NJIT)
        with text.block(f"def _body({', '.join(['Q', 'V', *ins])}):"):
            if self.arena_names:
                text.line(f"{', '.join(self.arena_names)}, = V")
            text.lines.extend("    " + line if line else line for line in body)
            text.line(f"return ({', '.join(outs)},)")
        text.line()
        text.line()
        # 0-d inputs arrive as Python scalars: a 0-d array of the graph's dtype, as in
        # the Python driver (Numba would type a float as a scalar, not an array)
        conv = [
            f"np.asarray({name}, {ctor(v.dtype)})" if v.ndim == 0 else name
            for name, v in zip(ins, g.inputs)
        ]
        args = ", ".join(["P", *ins])
        call = ", ".join(["P[1]", "V" if self.layout else "()", *conv])
        with text.block(f"def driver({args}, _body=_body):"):
            if not self.layout:
                text.line(f"return list(_body({call}))")
            else:
                text.line("A = P[0]")
                text.line("B, V = A.acquire()")
                with text.block("try:"):
                    text.line(f"return list(_body({call}))")
                with text.block("finally:"):
                    text.line("A.release(B)")
        return text.text()

    def node(self, n: Node) -> None:
        if not n.outputs:
            return
        if n.op not in _FREE:
            self.comment(n)
        op = n.op
        if op == "fused" or is_elementwise(op) or op in REDUCE_OPS:
            body = n.attrs["body"] if op == "fused" else single_body(n)
            if not fits_loop(body):
                raise NotNjit(f"{op}: not one loop nest")
            k, _a, _s, _p, _o, call = self.loop_call(n, body)
            self.src.line(f"{k.name}({', '.join(call)})")
        elif op == "rowfused":
            rowloop.render(self, n)
        elif op == "matmul":
            self.matmul(n)
        elif op in ("reshape", "transpose"):
            self.view(n)
        elif op in _FREE:
            LOWER[op](self, n)
        elif op == "slice":
            self.slice(n)
        elif op == "set_slice":
            self.set_slice(n)
        else:
            raise NotNjit(f"{op}: no compiled-driver lowering")

    def view(self, n: Node) -> None:
        """reshape (of a C-contiguous copy when the operand is a strided view) or transpose."""
        d = self.vals[n.inputs[0]]
        if isinstance(d, Fill):
            LOWER[n.op](self, n)
            return
        x, name = self.mat(n.inputs[0]), self.vname(n.out)
        d = self.vals[n.inputs[0]]
        if n.op == "reshape":
            # Numba reshapes only arrays typed C-contiguous; NumPy would copy a strided one
            src = x if d.plain else f"np.ascontiguousarray({x})"
            self.src.line(f"{name} = {src}.reshape({self.shape_param(n.out.shape)})")
            self.vals[n.out] = Mat(name, d.fresh, d.plain)
        elif tuple(n.attrs["axes"]) == (1, 0):  # `.T` types as F-contiguous: BLAS reads it
            self.src.line(f"{name} = {x}.T")
            self.vals[n.out] = Mat(name, d.fresh, False)
        else:
            self.src.line(f"{name} = np.transpose({x}, {tuple(n.attrs['axes'])!r})")
            self.vals[n.out] = Mat(name, d.fresh, False)

    def matmul(self, n: Node) -> None:
        """BLAS through `np.dot`: 2-D and 1-D operands (batched matmul is not lowered)."""
        a, b = n.inputs
        if not (1 <= a.ndim <= 2 and 1 <= b.ndim <= 2) or n.out.dtype not in (
            np.float32,
            np.float64,
        ):
            raise NotNjit("matmul: only 1-D and 2-D float operands")
        x, y = self.mat(a), self.mat(b)
        out = self.out(n.out)
        if n.out.ndim == 0:
            self.src.line(f"{out}[()] = np.dot({x}, {y})")
        else:
            self.src.line(f"np.dot({x}, {y}, {out})")

    def _index(self, n: Node) -> str:
        """`n`'s basic index as text over int params (Numba types ints, not slice objects,
        cheaply at each call)."""
        from compiler.primitives.shape import slice_tuple

        parts = []
        for s in slice_tuple(n.attrs["index"]):
            if not isinstance(s, slice):
                raise NotNjit("slice: only slices (no integer or newaxis index)")
            parts.append(
                ":".join("" if p is None else self.param(int(p)) for p in (s.start, s.stop, s.step))
            )
        return ", ".join(parts) if parts else "()"

    def slice(self, n: Node) -> None:
        d = self.vals[n.inputs[0]]
        if isinstance(d, Fill):
            LOWER["slice"](self, n)
            return
        x = self.mat(n.inputs[0])
        name = self.vname(n.out)
        self.src.line(f"{name} = {x}[{self._index(n)}]")
        self.vals[n.out] = Mat(name, self.vals[n.inputs[0]].fresh, False)

    def set_slice(self, n: Node) -> None:
        """A copy of the operand with a slice replaced, by a generated loop kernel: slice
        assignment in njit costs seconds of compile time (measured 3.7 s for one line)."""
        x, v = n.inputs
        index = n.attrs["index"]
        if tuple(v.shape) != tuple(c for _, _, c in index):
            raise NotNjit("set_slice: value shape differs from the slice's")
        dx, dv = self.vals[x], self.vals[v]
        xa = dx.param if isinstance(dx, Fill) else self.mat(x)
        va = dv.param if isinstance(dv, Fill) else self.mat(v)
        name = _set_slice_kernel(self.kernels, x.ndim, isinstance(dx, Fill), isinstance(dv, Fill))
        out = self.out(n.out)
        starts = [self.param(int(start)) for start, _, _ in index]
        steps = [self.param(int(step)) for _, step, _ in index]
        shape = self.shape_param(tuple(v.shape))
        self.src.line(f"{name}({out}, {xa}, {va}, {shape}, {', '.join(starts + steps)})")


def _set_slice_kernel(kernels: dict[str, str], rank: int, x_fill: bool, v_fill: bool) -> str:
    """Kernel `(out, x, v, vshape, starts..., steps...)`: out = x; out[slice] = v (x or v
    may be a scalar fill)."""
    src = Source()
    src.line(NJIT)
    st = [f"s{d}" for d in range(rank)]
    sp = [f"p{d}" for d in range(rank)]
    with src.block(f"def {{name}}(out, x, v, vshape, {', '.join(st + sp)}):"):
        src.line("# set_slice: out = x, then out[slice] = v")
        for which, loops, store in (
            ("out", "out.shape", "x" if x_fill else "x[{i}]"),
            ("v", "vshape", "v" if v_fill else "v[{i}]"),
        ):
            idx = ", ".join(f"i{d}" for d in range(rank)) or "()"
            dst = ", ".join(f"{st[d]} + i{d} * {sp[d]}" for d in range(rank)) or "()"
            with contextlib.ExitStack() as nest:
                for d in range(rank):
                    nest.enter_context(src.block(f"for i{d} in range({loops}[{d}]):"))
                target = f"out[{idx}]" if which == "out" else f"out[{dst}]"
                src.line(f"{target} = {store.format(i=idx)}")
    name, text = name_kernel(src.text())
    kernels[name] = text
    return name


def njit_generate(graph: Graph, kernels: dict[str, str], bufs: Buffers) -> NjitDriver | None:
    """The compiled driver's generator for `graph` after `njit_rule` chose it and it has run,
    or None when an op is not lowered (then `kernels` is left as it was)."""
    mine: dict[str, str] = {}
    gen = NjitDriver(graph, mine, bufs)
    try:
        gen.driver_src = gen.generate()
    except NotNjit:
        return None
    kernels.update(mine)
    return gen


# Rent, then buy (as for small loops, `tuning.hot_after`): a stage runs its Python driver
# until the per-op overhead it paid would have bought the compiled driver's compile, then
# switches. Compile time measured on the project machine (L-BFGS client graph, 22 driver
# ops, 8 loop kernels): ~0.2 s per loop kernel (`tuning.COMPILE_S`) plus ~0.06 s per driver
# op for `_body` itself.
BODY_COMPILE_S = 0.06


def driver_env() -> str:
    """GRADC_NJIT_DRIVER: "auto" when unset or empty, "off" for 0/false/no/off, "eager" for
    eager or 1/true/yes/on; a ValueError naming the variable for anything else."""
    raw = os.environ.get(DRIVER_ENV_VAR, "")
    value = raw.strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in OFF:
        return "off"
    if value == "eager" or value in ON:
        return "eager"
    raise ValueError(f"{DRIVER_ENV_VAR}={raw!r}: expected auto, eager, 1 (eager) or 0 (never)")


def switch_after(graph: Graph) -> int:
    """Calls of the Python driver before the stage switches to its compiled driver."""
    if driver_env() == "eager":
        return 0
    ops = driver_ops(graph)
    loops = sum(
        n.op in ("fused", "rowfused") or n.op in REDUCE_OPS or is_elementwise(n.op)
        for n in graph.nodes
    )
    return int((COMPILE_S * loops + BODY_COMPILE_S * ops) / (OP_S * max(ops, 1)))


class _Tiers:
    """The two stages of a small array graph and which one runs (see `tiers`)."""

    __slots__ = ("first", "build", "left", "stage", "tested", "lock", "now")

    def __init__(self, first: Any, build: Callable[[], Any]) -> None:
        self.first, self.build = first, build
        self.left = switch_after(first.graph)  # Python-driver calls before the switch
        self.stage = None  # the compiled driver's stage, once loaded
        self.tested = False  # whether the compiled driver has run once
        self.lock = threading.Lock()
        # compile on the caller (GRADC_NJIT_DRIVER=eager, or `promote()`); otherwise the
        # background thread compiles it while the Python driver keeps answering
        self.now = driver_env() == "eager"

    def compiled(self) -> Any:
        """The compiled driver's stage (its module loaded on first use; `_body` compiles
        on its first call)."""
        with self.lock:
            if self.stage is None:
                self.stage = self.build()
        return self.stage

    def __call__(self, *args: Any) -> list:
        if self.tested:
            return self.stage(*args)
        if self.left > 0:
            self.left -= 1
            return self.first(*args)
        if not self.now:
            self._submit(args)
            return self.first(*args)
        import_numba()  # the compile thread may be importing it right now
        from numba.core.errors import NumbaError

        try:
            out = self.compiled()(*args)
        except NumbaError as e:  # a construct Numba does not type: keep the Python driver
            self._failed(e)
            log.warning("compiled driver of stage %r failed to compile: %s", self.first.stage, e)
            return self.first(*args)
        self.tested = True
        return out

    def _submit(self, args: tuple) -> None:
        # no call waits on a compiler (docs/tiers.md): the background thread loads the
        # module and runs `_body` once on a private copy of these inputs, then switches
        self.left = float("inf")  # until the job ends: the Python driver answers
        sample = sample_of(args)
        submit(
            Job(
                f"{self.first.stage} (compiled driver)",
                lambda _sample: self.compiled(),
                sample,
                self._ready,
                self._failed,
                detail=f"{len(self.first.graph.nodes)} nodes, njit driver",
            )
        )

    def _ready(self, _fn: Any) -> None:
        self.tested = True  # one attribute store: the next call runs the compiled driver

    def _failed(self, _err: BaseException) -> None:
        self.left = float("inf")  # the Python driver answers from now on


def tiers(first: Any, build: Callable[[], Any], stage_type: type) -> Any:
    """The stage that calls `first` (the Python driver's stage) `switch_after` times, then
    the compiled driver's stage that `build()` loads. It reads like `first` (source, arena,
    ...); `.first` is that stage, `.compiled()` the other (loaded on demand), and
    `.promote()` switches now (for a tier that compiled it in the background, e.g. by
    calling `.compiled()` once on a thread)."""
    t = _Tiers(first, build)
    fn = stage_type(t)
    for attr in ("source", "kernel_count", "driver_kind", "stage", "module", "graph"):
        setattr(fn, attr, getattr(first, attr))
    fn.buffers, fn.arena = first.buffers, first.arena
    fn.first, fn.compiled = first, t.compiled

    def promote() -> None:
        t.left, t.now = 0, True

    fn.promote = promote
    return fn
