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
from collections.abc import Sequence

import numpy as np

from compiler.codegen import rowloop
from compiler.codegen.loops import REDUCE_OPS, fits_loop, is_elementwise, loop_kernel
from compiler.codegen.lowering import LOWER
from compiler.codegen.numpy_calls import REDUCE_FN, is_ufunc, loop_as_numpy_calls
from compiler.codegen.numpy_chunks import loop_in_chunks
from compiler.codegen.source import Source, ctor
from compiler.codegen.tuning import PARALLEL_MIN, PARALLEL_MIN_LIBM, SMALL_LOOP, hot_after
from compiler.codegen.values import Bcast, Fill, Mat
from compiler.ir.graph import Builder, Graph, Node, Value
from compiler.ir.types import dtype_short
from compiler.passes.route import routed
from compiler.plan.buffers import Buffers
from compiler.primitives import OPS

# ops whose lowering calls a fixed njit kernel (codegen/special.py): the NumPy tier runs their
# reference implementation instead
_KERNEL_LOWERED = ("take", "scatter", "scatter_add")


def single_body(n: Node) -> Graph:
    """Wrap one elementwise or reduce node in a body graph."""
    b = Builder()
    ins = [b.add_input(v.type) for v in n.inputs]
    out = b.add_node(n.op, ins, n.attrs, [v.type for v in n.outputs])
    return b.build(out)


# float ops whose Python operator on NumPy scalars is the ufunc (`scalar_body`)
_SCALAR_OPERATORS = {
    "add": "{0} + {1}",
    "subtract": "{0} - {1}",
    "multiply": "{0} * {1}",
    "divide": "{0} / {1}",
    "negative": "-{0}",
}


def _scalar_ufunc_body(body: Graph) -> bool:
    """A 0-d body the driver evaluates with NumPy scalar ufunc calls (nothing to compile)."""
    if any(v.ndim for v in body.inputs) or any(v.ndim for n in body.nodes for v in n.outputs):
        return False
    return all(
        n.op in ("const", "full", "broadcast_to") or (is_elementwise(n.op) and is_ufunc(n.op))
        for n in body.nodes
    )


class PyDriver:
    """Generates `driver(P, v0, v1, ...) -> list` for a graph; collects kernels and params.

    `bufs` is `assign_buffers(graph)`; after `generate()`, `layout` lists `(slot, shape)`
    per arena view the driver unpacks, in order (what `StageBuffers` builds per set).
    `tier`: "numpy" runs every loop as NumPy calls and compiles nothing (the first tier,
    docs/tiers.md). "lazy" and "eager" give the same text (small loops as NumPy calls until
    the stage is hot, `hot_after`; `compile_graph(eager=True)` binds every small loop to its
    kernel from the first call); the tier also says how loop bodies are built (loop_node).
    """

    COPY = "np.array({}, order='C')"  # a C-contiguous copy of an output that needs one
    THREADED_ROWS = True  # a row kernel's parts run on the row threads (rowloop.render)

    def __init__(
        self, graph: Graph, kernels: dict[str, str], bufs: Buffers, tier: str = "lazy"
    ) -> None:
        self.graph = graph
        self.tier = tier
        self.kernels = kernels
        self.bufs = bufs
        # P[0]: the stage's buffers (bound by compile); P[1]: the stage's call counter
        self.params: list[object] = [None, [0]]
        self.hot = False  # whether the driver reads the call counter
        # small loops: (index in params of the call count that switches it, kernel, ops)
        self.small_sites: list[tuple[int, str, int]] = []
        self.src = Source()
        self.vals: dict[Value, Mat | Bcast | Fill] = {}
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

    def ufunc_ref(self, op: str) -> str:
        """How the generated text names `op`'s ufunc: `np.<name>`, else (a SciPy ufunc) a
        param, since generated modules import nothing but NumPy and Numba."""
        impl = OPS[op].impl
        if getattr(np, impl.__name__, None) is impl:
            return f"np.{impl.__name__}"
        return self.param(impl)

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
            self.vals[v] = Mat(name, False, True)
        else:  # an output (or, defensively, a value the plan gave no buffer): fresh
            self.src.line(f"{name} = np.empty({self.shape_param(v.shape)}, {ctor(v.dtype)})")
            self.vals[v] = Mat(name, True, True)
        return name

    def mat(self, v: Value) -> str:
        """The name of `v` as a real array, materialising a lazy broadcast or fill."""
        d = self.vals[v]
        if isinstance(d, Mat):
            return d.name
        name = self.vname(v)
        if isinstance(d, Bcast):
            src = self.mat(d.src)
            self.src.line(f"{name} = np.broadcast_to({src}, {self.shape_param(d.shape)})")
            fresh = isinstance(self.vals[d.src], Mat) and self.vals[d.src].fresh
            self.vals[v] = Mat(name, fresh, False)  # a read-only view
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
        self.vals[v] = Mat(name, False, False)
        return name

    def operand(self, v: Value) -> str:
        """An argument for a NumPy call that broadcasts: a lazy broadcast passes its source
        (NumPy broadcasts it the same way), a lazy fill its scalar."""
        d = self.vals[v]
        if isinstance(d, Fill):
            return d.param
        if isinstance(d, Bcast):
            return self.mat(d.src)
        return d.name

    # -- generation ------------------------------------------------------------------------
    def number_values(self) -> None:
        """Number every value (`v0, v1, ...`): inputs first, then node outputs in order."""
        g = self.graph
        for v in g.inputs:
            self.index[v] = len(self.index)
        for n in g.nodes:
            for v in n.outputs:
                self.index[v] = len(self.index)

    def generate(self) -> str:
        g = self.graph
        self.number_values()
        args = ", ".join(["P"] + [self.vname(v) for v in g.inputs])
        for v in g.inputs:
            name = self.vname(v)
            if v.ndim == 0:  # Python scalars arrive as floats/ints
                self.src.line(f"{name} = np.asarray({name}, {ctor(v.dtype)})")
            self.vals[v] = Mat(name, False, False)
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
            if isinstance(d, Fill):
                texts.append(f"np.full({self.shape_param(d.shape)}, {d.param}, {ctor(d.dtype)})")
                continue
            name = self.mat(v)
            d = self.vals[v]
            if d.fresh and d.plain and per_root[root.get(v, v)] == 1 and not seen[v]:
                texts.append(name)
            else:
                texts.append(self.COPY.format(name))
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
        if is_elementwise(op) and (routed(n) or is_ufunc(op)):
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
        elif op == "rowfused":
            rowloop.render(self, n)
        elif op in _KERNEL_LOWERED and self.tier == "numpy":
            self.fallback(n)
        elif op in LOWER:
            LOWER[op](self, n)
        else:
            self.fallback(n)

    def loop(self, n: Node, body: Graph) -> None:
        if self.tier == "numpy":  # the NumPy tier: every loop as NumPy calls (docs/tiers.md)
            args, shapes = self.loop_args(n)
            # its params only (the body's constants and fills, in the kernel's order), not
            # the kernel's text: generating that is most of codegen's time on a large graph
            pnodes = [m for m in body.nodes if m.op in ("const", "full")]
            params = self.loop_params(pnodes)
            outs = [self.out(v) for v in n.outputs]
            tag, consts = f"t{self.index[n.outputs[0]]}_", dict(zip(pnodes, params))
            if not loop_in_chunks(self, body, args, shapes, consts, outs, tag):
                loop_as_numpy_calls(self, body, args, shapes, consts, outs, tag)
            return
        k, args, shapes, params, outs, call = self.loop_call(n, body)
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
            tag, consts = f"t{self.index[n.outputs[0]]}_", dict(zip(k.params, params))
            loop_as_numpy_calls(self, body, args, shapes, consts, outs, tag)

    def loop_args(self, n: Node) -> tuple[list[str], list[tuple[int, ...] | None]]:
        """What loop node `n` passes for each body input, and the static shape of each (None
        for a scalar fill); a lazy broadcast passes its source."""
        return self.loop_args_of(n.inputs)

    def loop_args_of(
        self, values: Sequence[Value]
    ) -> tuple[list[str], list[tuple[int, ...] | None]]:
        """`loop_args` for these operands."""
        args, shapes = [], []
        for v in values:
            d = self.vals[v]
            if isinstance(d, Bcast):
                args.append(self.mat(d.src))
                shapes.append(d.src.shape)
            elif isinstance(d, Fill):
                args.append(d.param)
                shapes.append(None)
            else:
                args.append(d.name)
                shapes.append(v.shape)
        return args, shapes

    def loop_params(self, pnodes: Sequence[Node]) -> list[str]:
        """The param names of a loop body's constants and fills."""
        params = []
        for p in pnodes:
            if p.op == "const":
                arr = np.array(p.attrs["value"].array)  # writable: one Numba type for all
                params.append(self.param(arr[()] if arr.ndim == 0 else arr))
            else:
                params.append(self.param(np.dtype(p.attrs["dtype"]).type(p.attrs["fill"])))
        return params

    def loop_call(self, n: Node, body: Graph) -> tuple:
        """The serial kernel of loop node `n` (added to the module) and its call: returns
        `(kernel, args, arg shapes, param names, output names, call arguments)`."""
        args, shapes = self.loop_args(n)
        k = loop_kernel(body, shapes)
        self.kernels[k.name] = k.source
        params = self.loop_params(k.params)
        outs = [self.out(v) for v in n.outputs]
        call = args + params + outs
        if k.needs_shape:
            call.append(self.shape_param(k.domain))
        return k, args, shapes, params, outs, call

    def ufunc(self, n: Node) -> None:
        """`np.<op>(*inputs, out=...)`: NumPy's SIMD loop, broadcasting lazy inputs itself."""
        args = [self.operand(v) for v in n.inputs]
        out = self.out(n.out)
        self.src.line(f"{self.ufunc_ref(n.op)}({', '.join(args)}, out={out})")

    def reduce(self, n: Node) -> None:
        """A lone sum/max/min: NumPy's reduction (what the reference implementation runs)."""
        x = self.mat(n.inputs[0])
        axis = self.param(tuple(n.attrs["axis"]))
        out = self.out(n.out)
        kd = bool(n.attrs["keepdims"])
        self.src.line(f"{REDUCE_FN[n.op]}({x}, axis={axis}, keepdims={kd}, out={out})")

    def scalar_body(self, n: Node) -> None:
        """A 0-d fused body as NumPy scalar arithmetic (cheaper than compiling a kernel):
        0-d array operands read once as NumPy scalars, float `+ - * /` and negation as
        operators on them (NumPy's scalar math: the ufunc's IEEE result, promotion and
        warnings, ~0.1 us against ~0.6 us per ufunc call on a 0-d array), other ops as
        ufunc calls on the scalars."""
        body = n.attrs["body"]
        env: dict[Value, str] = {}
        base = self.index[n.outputs[0]]
        for k, (b, v) in enumerate(zip(body.inputs, n.inputs)):
            env[b] = self.operand(v)
            if not isinstance(self.vals[v], Fill):  # a 0-d array: its scalar, once
                self.src.line(f"e{base}_{k} = {env[b]}[()]")
                env[b] = f"e{base}_{k}"
        for j, m in enumerate(body.nodes):
            if m.op == "broadcast_to":
                env[m.out] = env[m.inputs[0]]
            elif m.op == "const":
                env[m.out] = self.param(np.array(m.attrs["value"].array)[()])
            elif m.op == "full":
                env[m.out] = self.param(np.dtype(m.attrs["dtype"]).type(m.attrs["fill"]))
            else:
                name = f"s{base}_{j}"
                args = [env[u] for u in m.inputs]
                op = _SCALAR_OPERATORS.get(m.op)
                floats = all(u.dtype.kind == "f" for u in (*m.inputs, m.out))
                if op is not None and floats:
                    self.src.line(f"{name} = {op.format(*args)}")
                else:
                    self.src.line(f"{name} = {self.ufunc_ref(m.op)}({', '.join(args)})")
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
        self.vals[n.out] = Mat(name, True, True)
