"""The loop ops' records: `scan` and `while_loop` (types in `compiler/primitives/control.py`).

They are registered here, a layer above the other primitives, because their rules are
graph transforms of the body: the JVP of a loop is a loop whose body is the step's JVP
graph (`jvp_graph`), its VJP a reverse loop over the step's VJP graph (`loop_vjp.py`).
The reference implementation runs the body on the interpreter through `runtime.loops`,
the same loop the compiled driver runs around the body's compiled stage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.autodiff.jvp import jvp_graph
from compiler.autodiff.loop_vjp import scan_vjp, while_vjp
from compiler.interpret import run_graph
from compiler.ir.graph import Builder, Graph, copy_into
from compiler.primitives.control import first, scan_layout, scan_types, while_types
from compiler.primitives.registry import Cost, Kind, Lowering, OpDef, register
from compiler.trace import ops
from compiler.trace.loops import emit_loop
from runtime.loops import run_scan, run_while


def _empty(types) -> list[np.ndarray]:
    return [np.zeros(t.shape, t.dtype) for t in types]


def _scan_impl(*args: Any, **attrs: Any) -> list[np.ndarray]:
    types = scan_types([_t(a) for a in args], **attrs)
    body = attrs["body"]
    lay = scan_layout(len(args), body, attrs["n_consts"], attrs["n_carry"], attrs["save_every"])
    consts, carries, xs = lay.split_inputs(args)
    outs = _empty(types)
    _, ys, saved = lay.split_outputs(outs)

    def step(*a):
        return run_graph(body, a)

    final = run_scan(
        step,
        consts,
        carries,
        xs,
        ys,
        saved,
        attrs["length"],
        attrs["reverse"],
        attrs["save_every"],
    )
    for o, f in zip(outs, final):
        o[...] = f
    return outs


def _while_impl(*args: Any, **attrs: Any) -> list[np.ndarray]:
    types = while_types([_t(a) for a in args], **attrs)
    nk = attrs["n_consts"]
    nc = len(args) - nk
    outs = _empty(types)
    cond, body = attrs["cond"], attrs["body"]
    final, count = run_while(
        lambda *a: run_graph(cond, a),
        lambda *a: run_graph(body, a),
        args[:nk],
        args[nk:],
        attrs["max_steps"],
        outs[nc + 1 :],
    )
    for o, f in zip(outs, final):
        o[...] = f
    if attrs["record"]:
        outs[nc][...] = count
    return outs


def _t(a: Any):
    from compiler.ir.types import TensorType

    a = np.asarray(a)
    return TensorType(a.shape, a.dtype)


def _tangent(ctx, t, v, dtype=None):
    """The tangent `t` of operand `v` (zeros when none flowed in), in v's dtype."""
    if t is None:
        return ops.full(ctx, v.shape, 0.0, v.dtype)
    t = ops.cast_to(ctx.lift(t), v.dtype)
    return t if t.shape == v.shape else ops.broadcast_to(t, v.shape)


def _jvp_body(body: Graph, nk: int, nc: int, fk, fc, n_out_float) -> Graph:
    """The step's JVP graph, reordered to (consts, t_consts, carries, t_carries, xs, t_xs) ->
    (carries, t_carries, rest..., t_rest...) where `n_out_float` lists the float outputs
    after the carries that get a tangent."""
    fx = [i for i, v in enumerate(body.inputs[nk + nc :]) if v.type.is_float]
    wrt = fk + [nk + i for i in fc] + [nk + nc + i for i in fx]
    jb = jvp_graph(body, wrt)
    b = Builder()
    ins = [v.type for v in body.inputs]
    k_in = [b.add_input(t) for t in ins[:nk]]
    tk_in = [b.add_input(ins[i]) for i in fk]
    c_in = [b.add_input(t) for t in ins[nk : nk + nc]]
    tc_in = [b.add_input(ins[nk + i]) for i in fc]
    x_in = [b.add_input(t) for t in ins[nk + nc :]]
    tx_in = [b.add_input(ins[nk + nc + i]) for i in fx]
    outs = copy_into(b, jb, [*k_in, *c_in, *x_in, *tk_in, *tc_in, *tx_in])
    n = len(body.outputs)
    prim, tans = outs[:n], outs[n:]
    return b.build(
        [*prim[:nc], *[tans[i] for i in fc], *prim[nc:], *[tans[nc + j] for j in n_out_float]]
    ), fx


def _scan_jvp(tangents, *args: Any, out: tuple, **attrs: Any) -> tuple:
    body, nk, nc = attrs["body"], attrs["n_consts"], attrs["n_carry"]
    lay = scan_layout(len(args), body, nk, nc, attrs["save_every"])
    ctx = out[0]._ctx
    types = [v.type for v in body.inputs]
    fk = [i for i in range(nk) if types[i].is_float]
    fc = [i for i in range(nc) if types[nk + i].is_float]
    fy = [j for j in range(lay.n_ys) if body.outputs[nc + j].type.is_float]
    jbody, fx = _jvp_body(body, nk, nc, fk, fc, fy)
    consts, init, xs = lay.split_inputs(args)
    tk, tc, tx = lay.split_inputs(list(tangents))
    operands = [
        *consts,
        *[_tangent(ctx, tk[i], consts[i]) for i in fk],
        *init,
        *[_tangent(ctx, tc[i], init[i]) for i in fc],
        *xs,
        *[_tangent(ctx, tx[i], xs[i]) for i in fx],
    ]
    new = emit_loop(
        ctx,
        "scan",
        operands,
        {**attrs, "body": jbody, "n_consts": nk + len(fk), "n_carry": nc + len(fc)},
    )
    n_c2 = nc + len(fc)
    carries, t_carries = new[:nc], new[nc:n_c2]
    rest = new[n_c2:]
    ys, t_ys = rest[: lay.n_ys], rest[lay.n_ys : lay.n_ys + len(fy)]
    saved = rest[lay.n_ys + len(fy) :]
    del carries, ys
    out_t: list = [None] * len(out)
    for i, t in zip(fc, t_carries):
        out_t[i] = t
    for j, t in zip(fy, t_ys):
        out_t[nc + j] = t
    if saved:  # saved blocks of the tangent carries follow those of the carries
        for i, t in zip(fc, saved[nc:]):
            out_t[nc + lay.n_ys + i] = t
    return tuple(out_t)


def _while_jvp(tangents, *args: Any, out: tuple, **attrs: Any) -> tuple:
    cond, body, nk = attrs["cond"], attrs["body"], attrs["n_consts"]
    nc = len(args) - nk
    ctx = out[0]._ctx
    types = [v.type for v in body.inputs]
    fk = [i for i in range(nk) if types[i].is_float]
    fc = [i for i in range(nc) if types[nk + i].is_float]
    jbody, _ = _jvp_body(body, nk, nc, fk, fc, [])
    b = Builder()
    k_in = [b.add_input(t) for t in types[:nk]]
    for i in fk:
        b.add_input(types[i])
    c_in = [b.add_input(t) for t in types[nk:]]
    for i in fc:
        b.add_input(types[nk + i])
    jcond = b.build(copy_into(b, cond, [*k_in, *c_in]))
    operands = [
        *args[:nk],
        *[_tangent(ctx, tangents[i], args[i]) for i in fk],
        *args[nk:],
        *[_tangent(ctx, tangents[nk + i], args[nk + i]) for i in fc],
    ]
    new = emit_loop(
        ctx,
        "while_loop",
        operands,
        {**attrs, "cond": jcond, "body": jbody, "n_consts": nk + len(fk)},
    )
    n_c2 = nc + len(fc)
    out_t: list = [None] * len(out)
    for i, t in zip(fc, new[nc:n_c2]):
        out_t[i] = t
    if attrs["record"]:
        hist = new[n_c2 + 1 :]
        for i, t in zip(fc, hist[nc:]):
            out_t[nc + 1 + i] = t
    return tuple(out_t)


register(
    OpDef(
        name="scan",
        shape_rule=first(scan_types),
        impl=_scan_impl,
        vjp=scan_vjp,
        jvp=_scan_jvp,
        kind=Kind.LOOP,
        cost=Cost.EXPENSIVE,
        codegen="scan",
        lowering=Lowering.CUSTOM,
        out_types=scan_types,
        grad_doc="a reverse scan over the step's VJP graph and stored per-step residuals "
        "(BPTT); with checkpoint=k, blocks of k steps are recomputed from stored carries",
    )
)
register(
    OpDef(
        name="while_loop",
        shape_rule=first(while_types),
        impl=_while_impl,
        vjp=while_vjp,
        jvp=_while_jvp,
        kind=Kind.LOOP,
        cost=Cost.EXPENSIVE,
        codegen="while_loop",
        lowering=Lowering.CUSTOM,
        out_types=while_types,
        grad_doc="records the trip count and the carry entering each step (needs max_steps); "
        "the backward counts down, replaying each step's VJP",
    )
)
