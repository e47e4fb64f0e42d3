"""Lowering of loop nodes: a driver loop around the body's own compiled stage.

The body (the step of a scan, the cond and body of a while_loop) is fused and compiled as a
stage of its own, once, whatever the trip count: its kernels, arena and call fast path are
those of any stage. The Python driver then calls `runtime.loops.run_scan`/`run_while` (passed
in P: generated modules import nothing from gradc), which calls the body's stage per step and
writes the stacked outputs straight into the node's planned buffers. The loop's length is a
param, so the module text does not depend on it either.

Why a driver loop and not one njit function holding the whole loop: the body's stage already
picks the fastest lowering per op (BLAS for matmuls, NumPy ufuncs for transcendentals, fused
kernels for arithmetic, an njit scalar driver for all-scalar steps), and an njit loop around
them would have to re-implement that inside Numba (no BLAS `out=`, 13x slower tanh, seconds
of compile per statement: see architecture-codegen.md). The price is the body stage's call
overhead, a few microseconds per step (measured in benchmarks/loops.py).
"""

from __future__ import annotations

from compiler.codegen.compile import compile_graph, compile_numpy
from compiler.codegen.driver import LOWER, PyDriver
from compiler.codegen.prepare import lower_passes
from compiler.ir.graph import Graph, Node
from compiler.primitives.control import scan_layout
from runtime.loops import run_scan, run_while


def _tuple(names: list[str]) -> str:
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def compile_body(body: Graph, stage: str, tier: str = "lazy"):
    """The body's stage: the pipeline's lowering passes (route, fuse, pushdown, schedule,
    buffers), then built like any stage on the enclosing driver's tier (NumPy calls on the
    NumPy tier, so a loop's first call compiles nothing either)."""
    low = lower_passes(body, stage)
    if tier == "numpy":
        return compile_numpy(low.graph, low.buffers, stage=stage)
    return compile_graph(low.graph, low.buffers, stage=stage, eager=tier == "eager")


def _scan(drv: PyDriver, n: Node) -> None:
    a = n.attrs
    step = compile_body(a["body"], "scan step", drv.tier)
    lay = scan_layout(len(n.inputs), a["body"], a["n_consts"], a["n_carry"], a["save_every"])
    consts, carries, xs = lay.split_inputs([drv.mat(v) for v in n.inputs])
    outs = [drv.out(v) for v in n.outputs]
    o_c, o_y, o_s = lay.split_outputs(outs)
    fin = f"c{drv.index[n.outputs[0]]}"
    call = ", ".join(
        [
            drv.param(step),
            _tuple(consts),
            _tuple(carries),
            _tuple(xs),
            _tuple(o_y),
            _tuple(o_s),
            drv.param(int(a["length"])),
            repr(bool(a["reverse"])),
            drv.param(int(a["save_every"])),
        ]
    )
    drv.src.line(f"{fin} = {drv.param(run_scan)}({call})")
    for j, o in enumerate(o_c):
        drv.src.line(f"np.copyto({o}, {fin}[{j}])")


def _while(drv: PyDriver, n: Node) -> None:
    a = n.attrs
    cond = compile_body(a["cond"], "while cond", drv.tier)
    body = compile_body(a["body"], "while body", drv.tier)
    nk = a["n_consts"]
    ins = [drv.mat(v) for v in n.inputs]
    outs = [drv.out(v) for v in n.outputs]
    nc = len(n.inputs) - nk
    fin = f"c{drv.index[n.outputs[0]]}"
    call = ", ".join(
        [
            drv.param(cond),
            drv.param(body),
            _tuple(ins[:nk]),
            _tuple(ins[nk:]),
            drv.param(int(a["max_steps"])),
            _tuple(outs[nc + 1 :]),
        ]
    )
    drv.src.line(f"{fin}, {fin}_n = {drv.param(run_while)}({call})")
    for j, o in enumerate(outs[:nc]):
        drv.src.line(f"np.copyto({o}, {fin}[{j}])")
    if a["record"]:
        drv.src.line(f"{outs[nc]}[()] = {fin}_n")


LOWER["scan"] = _scan
LOWER["while_loop"] = _while
