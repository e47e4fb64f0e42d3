"""The NumPy tier's large loops, run one chunk of rows at a time (docs/tiers.md).

A fused loop run as one NumPy call per op makes a full-size temporary per live value: on the
2**22-element chain, ten 32 MiB arrays. Fresh memory is what a first call pays most for: each
new page is a fault, and on the 2-core VM these benchmarks run on, a cold 32 MiB array cost
up to 0.3 s of system time (the hand-written NumPy chain's own first call took 2.3 s against
0.24 s for its second). Here the same calls run on chunks of `CHUNK_ELEMENTS` elements (rows
of the loop domain's axis 0): the temporaries are views of scratch allocated once per call
and thread, a few hundred KiB that stay in cache, and only the loop's planned outputs are
full size. The chunks are a local function of the chunk indices it runs, which
`runtime.row_threads.split` runs on the process's usable cores.

It is still the graph's loop nest, as the compiled kernel runs it: every value is computed
at every index of the domain, and only the order changes. A reduction over the rows keeps
each chunk's partial result, and the driver joins them into its output in chunk order once
every chunk has run (deterministic, and the same bits on any number of threads; the
compiled kernel's order differs, within the tiers' few-ulp agreement). A loop whose outputs
are not all full-domain values or reductions of them runs whole, as before.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from compiler.codegen.loops import body_domain
from compiler.codegen.numpy_calls import COMBINE_FN, Chunk, loop_as_numpy_calls
from compiler.ir.graph import Graph
from compiler.primitives import REDUCE_OPS
from runtime.row_threads import split

if TYPE_CHECKING:  # the driver passes itself; imported for the annotation only
    from compiler.codegen.driver import PyDriver

CHUNK_ELEMENTS = 1 << 14  # per chunk: 128 KiB a float64 temporary, a few dozen in L2
CHUNK_MIN = 1 << 17  # smaller loops run whole (a few chunks would not pay for the loop)
_IDENTITY = {"sum": "0", "max": "-np.inf", "min": "np.inf"}


def chunk_rows(body: Graph) -> int:
    """Rows of axis 0 per chunk for loop `body` (`CHUNK_ELEMENTS`, `CHUNK_MIN`, read at each
    call), or 0 when it runs whole."""
    domain = body_domain(body)
    if not domain or domain[0] < 2 or math.prod(domain) < CHUNK_MIN:
        return 0
    for n in body.nodes:
        if n.op in REDUCE_OPS and n.out in body.outputs:
            continue
        if n.op in REDUCE_OPS:
            return 0  # a reduction nothing reads: not worth a case of its own
    reduced = {n.out for n in body.nodes if n.op in REDUCE_OPS}
    if any(v not in reduced and v.shape != domain for v in body.outputs):
        return 0  # an output smaller than the domain (computed from broadcasts only)
    rows = max(1, CHUNK_ELEMENTS // max(1, math.prod(domain[1:])))
    return rows if rows < domain[0] else 0


def loop_in_chunks(
    drv: PyDriver,
    body: Graph,
    args: list[str],
    shapes: list[tuple[int, ...] | None],
    consts: dict,
    outs: list[str],
    tag: str,
) -> bool:
    """Emit `body` as a loop over chunks of rows (module doc); False (nothing emitted) when
    it should run whole."""
    rows = chunk_rows(body)
    if not rows:
        return False
    domain = body_domain(body)
    n_rows, step = drv.param(domain[0]), drv.param(rows)
    chunk = Chunk(domain, f"{tag}m", step, drv.shape_param(domain[1:]), index=f"{tag}c")
    line = drv.src.line
    reducer = {n.out: n for n in body.nodes if n.op in REDUCE_OPS}
    chunks = f"{tag}n"
    line(f"{chunks} = ({n_rows} + {step} - 1) // {step}")
    chunk_outs = []
    for bv, o in zip(body.outputs, outs):
        red = reducer.get(bv)
        if red is not None and any(a % len(domain) == 0 for a in red.attrs["axis"]):
            chunk.partials[o] = f"{tag}r{len(chunk.partials)}"
            line(f"{chunk.partials[o]} = [None] * {chunks}")
            chunk_outs.append(o)
        else:  # a full-domain value, or reduced over other axes: its rows are the chunk's
            chunk_outs.append(f"{o}[{tag}lo:{tag}lo + {step}]")
    # the chunks, as a function of the chunk indices it is to run: `split` runs it on
    # several threads that share the indices (runtime/row_threads.py); each thread
    # allocates its own scratch
    with drv.src.block(f"def {tag}run({tag}cs):"):
        at = len(drv.src.lines)  # the scratch is allocated here, once the body has asked for it
        depth = drv.src.indent
        with drv.src.block(f"for {chunk.index} in {tag}cs:"):
            line(f"{tag}lo = {chunk.index} * {step}")
            line(f"{tag}m = min({step}, {n_rows} - {tag}lo)")
            chunk_args = []
            for j, (a, sh) in enumerate(zip(args, shapes)):
                if sh is not None and len(sh) == len(domain) and sh[0] == domain[0]:
                    line(f"{tag}a{j} = {a}[{tag}lo:{tag}lo + {step}]")
                    chunk_args.append(f"{tag}a{j}")
                else:  # broadcast along the rows: every chunk reads all of it
                    chunk_args.append(a)
            named = []
            for j, o in enumerate(chunk_outs):
                if o.endswith("]"):
                    line(f"{tag}o{j} = {o}")
                    o = f"{tag}o{j}"
                named.append(o)
            loop_as_numpy_calls(drv, body, chunk_args, shapes, consts, named, tag, chunk)
        drv.src.lines[at:at] = [depth + s for s in chunk.scratch]
    line(f"{drv.param(split)}({tag}run, {chunks})")
    for o, partial in chunk.partials.items():
        red = reducer[body.outputs[outs.index(o)]]
        line(f"{o}.fill({_IDENTITY[red.op]})")
        # in chunk order, whatever ran them: the same sums as one thread, bit for bit
        with drv.src.block(f"for {chunk.index} in range({chunks}):"):
            line(f"{COMBINE_FN[red.op]}({o}, {partial}[{chunk.index}], out={o})")
    return True
