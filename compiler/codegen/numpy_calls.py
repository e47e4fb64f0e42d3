"""A loop body as NumPy calls, one per op: the NumPy tier's loops (docs/tiers.md) and, on the
compiled tier of a stage built outside the pipeline, a small loop until its stage is hot.

NumPy broadcasts the operands as the kernel's index patterns would; a value computed only from
broadcast operands may be smaller than its type, so a reduction gets it broadcast to full
shape. Outputs are written by the op that computes them, into the planned buffers (an output
overwrites an operand only in a single-output body, whose last op computes it); values inside
the body are NumPy temporaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from compiler.codegen.source import ctor
from compiler.ir.graph import Graph, Node, Value
from compiler.primitives import OPS, REDUCE_OPS

if TYPE_CHECKING:  # the driver passes itself; imported for the annotation only
    from compiler.codegen.driver import PyDriver

REDUCE_FN = {"sum": "np.sum", "max": "np.max", "min": "np.min"}
# how a chunk's partial reduction joins the result so far (codegen/numpy_chunks.py)
COMBINE_FN = {"sum": "np.add", "max": "np.maximum", "min": "np.minimum"}


@dataclass
class Chunk:
    """A loop body run on one chunk of rows (axis 0 of `domain`) at a time
    (codegen/numpy_chunks.py): names the generated loop binds, and the scratch it needs."""

    domain: tuple[int, ...]
    rows: str  # the name of this chunk's row count
    rows_max: str  # the text of the most rows a chunk has (a param)
    rest: str  # the text of domain[1:] (a param)
    index: str = ""  # the name of the chunk's index
    # a reduction over the rows: its output's name -> the list of its chunks' partial
    # results (joined in chunk order after the loop)
    partials: dict[str, str] = field(default_factory=dict)
    scratch: list[str] = field(default_factory=list)  # lines allocating it, before the loop

    def shape(self) -> str:
        """The text of a full-domain value's shape in this chunk."""
        return f"({self.rows},) + {self.rest}"


def is_ufunc(op: str) -> bool:
    """Whether `op`'s reference implementation is a NumPy (or SciPy) ufunc."""
    return isinstance(OPS[op].impl, np.ufunc)


def loop_as_numpy_calls(
    drv: PyDriver,
    body: Graph,
    args: list[str],
    shapes: list[tuple[int, ...] | None],
    consts: dict[Node, str],
    outs: list[str],
    tag: str,
    chunk: Chunk | None = None,
) -> None:
    """Emit `body` on `drv` as NumPy calls reading `args` and writing `outs` (see above).

    With `chunk`, the calls run on one chunk of rows: `args` and full-domain `outs` are that
    chunk's views, a reduction over axis 0 stores its partial result in `chunk.partials`,
    and a full-domain temporary is a view of scratch allocated once before the loop."""
    env: dict[Value, str] = dict(zip(body.inputs, args))
    full = {b for b, sh in zip(body.inputs, shapes) if sh is not None and tuple(sh) == b.shape}
    out_of = dict(zip(body.outputs, outs))
    written: set[Value] = set()
    line = drv.src.line
    last = _last_use(body)
    pool: dict[tuple, list[str]] = {}  # dead full-size temporaries, by (shape, dtype)
    owned: dict[Value, tuple] = {}  # the temporaries this body allocated, and their key
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
        # A temporary whose last reader is this op goes back to the pool first, so the op may
        # write over its own operand (safe for a ufunc of equal shapes). Reusing dead
        # temporaries keeps the tier's memory to the values live at once: a fresh 32 MiB
        # temporary per op cost ~0.2 s of page faults each on the 2**22-element chain.
        for u in dict.fromkeys(m.inputs):
            if u in owned and last[u] == j:
                pool.setdefault(owned[u], []).append(env[u])
        key = (m.out.shape, m.out.dtype)
        reuse = (  # a 0-d result is a NumPy scalar, which cannot take `out=`
            not o
            and m.out.ndim > 0
            and is_ufunc(m.op)
            and m.op not in REDUCE_OPS
            and any(u in full and u.shape == m.out.shape for u in m.inputs)
            and all(u.dtype == m.out.dtype for u in m.inputs)
        )
        if reuse and pool.get(key):
            o = t = pool[key].pop()
        elif reuse and chunk is not None and m.out.shape == chunk.domain:
            # scratch for the chunk's rows: nothing allocated per chunk
            s = f"{tag}s{len(chunk.scratch)}"
            chunk.scratch.append(
                f"{s} = np.empty(({chunk.rows_max},) + {chunk.rest}, {ctor(m.out.dtype)})"
            )
            o = t
            line(f"{t} = {s}[:{chunk.rows}]")
            owned[m.out] = key
        elif reuse:
            owned[m.out] = key
        if m.op in REDUCE_OPS:
            x = a[0]
            if m.inputs[0] not in full:
                shape = drv.shape_param(m.inputs[0].shape)
                if chunk is not None and m.inputs[0].shape == chunk.domain:
                    shape = chunk.shape()
                x = f"np.broadcast_to({x}, {shape})"
            axis = drv.param(tuple(m.attrs["axis"]))
            kd = bool(m.attrs["keepdims"])
            fn = REDUCE_FN[m.op]
            if o and chunk is not None and _reduces_rows(m, chunk):
                # this chunk's partial result, joined with the others' in chunk order after
                # the loop (codegen/numpy_chunks.py)
                line(f"{chunk.partials[o]}[{chunk.index}] = {fn}({x}, axis={axis}, keepdims={kd})")
            elif o:
                line(f"{fn}({x}, axis={axis}, keepdims={kd}, out={o})")
            else:
                line(f"{t} = {fn}({x}, axis={axis}, keepdims={kd})")
        elif is_ufunc(m.op):
            fn = drv.ufunc_ref(m.op)
            if o:
                line(f"{fn}({', '.join(a)}, out={o})")
            else:
                line(f"{t} = {fn}({', '.join(a)})")
        else:  # the reference implementation (where, astype)
            impl, attrs = drv.param(OPS[m.op].impl), drv.param(dict(m.attrs))
            if o:
                line(f"np.copyto({o}, {impl}({', '.join(a)}, **{attrs}), casting='unsafe')")
            else:
                line(f"{t} = {impl}({', '.join(a)}, **{attrs})")
        env[m.out] = t
        if o and m.out in out_of:
            written.add(m.out)
        elif o:  # written into a pooled temporary: this value owns it now
            owned[m.out] = key
        if o or any(u in full and u.shape == m.out.shape for u in m.inputs):
            full.add(m.out)
    for bv, o in out_of.items():
        if bv not in written:  # an input, constant or broadcast passed through
            line(f"np.copyto({o}, {env[bv]}, casting='unsafe')")


def _reduces_rows(m: Node, chunk: Chunk) -> bool:
    """Whether reduction `m` sums (or maxes) over the rows the chunks split."""
    rank = len(chunk.domain)
    return any(a % rank == 0 for a in m.attrs["axis"])


def _last_use(body: Graph) -> dict[Value, int]:
    """The index of the last op reading each value (through `broadcast_to` renames); body
    outputs count as read after the last op."""
    root: dict[Value, Value] = {}
    last: dict[Value, int] = {}
    for j, m in enumerate(body.nodes):
        for u in m.inputs:
            last[root.get(u, u)] = j
        if m.op == "broadcast_to":
            root[m.out] = root.get(m.inputs[0], m.inputs[0])
    for v in body.outputs:
        last[root.get(v, v)] = len(body.nodes)
    return {v: last.get(root.get(v, v), -1) for v in [*body.inputs, *root, *last]}
