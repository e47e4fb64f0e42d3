"""Reverse mode through loop nodes: backpropagation through time, as more loop nodes.

scan (see docs/ir.md, "Loop nodes"): the step's joint graph is split, like `vjp`'s stages,
into a forward step (the step's outputs plus the residuals its backward reads) and a
backward step (residuals and cotangents -> gradients). The rule emits

- a forward scan whose body is the forward step: the primal step plus the per-step
  residuals as extra stacked outputs (the `loops` pass merges it with the primal scan, so
  the forward runs once);
- a reverse scan whose body is the backward step: it carries the carry's cotangent and the
  running sum of the consts' gradients, and stacks the xs' gradients.

Both bodies are ordinary graphs of primitives, so the result can be differentiated again.
Residuals that are consts or xs are read from the operands, never stacked.

With `checkpoint = k` the forward stores only the carry entering each block of k steps
(`save_every`), and the reverse scan runs over blocks: each block re-runs its k steps from
the stored carry (a nested forward scan storing residuals) and then its reverse scan.

while_loop: the forward records the trip count and the carry entering each step (a history
of `max_steps` entries); the backward is a while_loop counting down from the trip count that
reads the step's carry from the history, re-runs the step and applies its VJP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.autodiff.loop_residuals import plan_residuals
from compiler.autodiff.partition import split_joint
from compiler.autodiff.vjp import vjp_graph
from compiler.ir.graph import Builder, Graph, copy_into
from compiler.ir.types import TensorType
from compiler.primitives.control import scan_layout
from compiler.trace import ops
from compiler.trace.creation import active_contexts
from compiler.trace.entry import trace_tree
from compiler.trace.loops import emit_loop
from compiler.trace.tracer import TraceContext, Tracer


def _zeros(ctx: TraceContext, t: TensorType) -> Tracer:
    return ops.full(ctx, t.shape, 0.0, t.dtype)


def _floats(types: Sequence[TensorType]) -> list[int]:
    return [i for i, t in enumerate(types) if t.is_float]


def _proto(t: TensorType) -> np.ndarray:
    return np.broadcast_to(np.zeros((), t.dtype), t.shape)


def _scan_attrs(body: Graph, length: int, reverse: bool, n_consts: int, n_carry: int, **kw):
    return {
        "body": body,
        "length": length,
        "reverse": reverse,
        "n_consts": n_consts,
        "n_carry": n_carry,
        "save_every": kw.get("save_every", 0),
        "checkpoint": kw.get("checkpoint", 0),
    }


def reverse_scan(
    ctx: TraceContext,
    consts: list,
    init: list,
    xs: list,
    ct_carry: list,
    ct_ys: list,
    y_idx: list[int],
    body: Graph,
    length: int,
    reverse: bool,
) -> tuple[list, list, list]:
    """Emit the residual-storing forward scan and its reverse scan.

    `ct_carry`: one cotangent per float carry; `ct_ys`: stacked cotangents of the ys at
    positions `y_idx`. Returns the gradients of the float consts, float carries, float xs.
    """
    nk, nc, n_out = len(consts), len(init), len(body.outputs)
    types = [v.type for v in body.inputs]
    fk = [i for i in _floats(types[:nk])]
    fc = [i for i in _floats(types[nk : nk + nc])]
    fx = [i for i in _floats(types[nk + nc :])]
    wrt = fk + [nk + i for i in fc] + [nk + nc + i for i in fx]
    joint = vjp_graph(body, wrt, seeds="input", ct_outputs=fc + [nc + j for j in y_idx])
    sp = split_joint(joint, len(body.inputs), n_out)
    fwd_g, bwd_g = sp.forward, sp.backward
    res = list(fwd_g.outputs[n_out:])
    plan = plan_residuals(fwd_g, nk, nc, n_out)
    fbody = Graph(fwd_g.inputs, fwd_g.nodes, tuple(fwd_g.outputs[:n_out]) + plan.stacked)
    fwd = emit_loop(ctx, "scan", [*consts, *init, *xs], _scan_attrs(fbody, length, reverse, nk, nc))
    stacks = fwd[n_out:]
    hoisted = _hoist(ctx, fwd_g, plan, consts)

    b = Builder()
    env = {}
    for v, _ in plan.consts:
        env[v] = b.add_input(v.type)
    for v in plan.hoisted:
        env[v] = b.add_input(v.type)
    in_ct = [b.add_input(types[nk + i]) for i in fc]
    batched = _gemm_grads(fwd_g, bwd_g, res, nk, nc, len(fk), set(plan.stacked))
    kept = [j for j in range(len(fk)) if j not in batched]
    in_acc = [b.add_input(types[fk[j]]) for j in kept]
    for v, _ in plan.chained:  # the step's new carry, handed down by the step after it
        env[v] = b.add_input(v.type)
    for v in (*plan.stacked, *(v for v, _ in plan.xs)):
        env[v] = b.add_input(v.type)
    in_cty = [b.add_input(body.outputs[nc + j].type) for j in y_idx]
    for n in plan.recompute_nodes:  # cheap values the step recomputes rather than stores
        outs = b.add_node(n.op, [env[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs])
        env.update(zip(n.outputs, outs))
    benv = dict(zip(bwd_g.inputs, [*[env[r] for r in res], *in_ct, *in_cty]))
    for n in bwd_g.nodes:
        outs = b.add_node(n.op, [benv[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs])
        benv.update(zip(n.outputs, outs))
    grads = [benv[v] for v in bwd_g.outputs]
    g_k, g_c, g_x = grads[: len(fk)], grads[len(fk) : len(fk) + len(fc)], grads[len(fk) + len(fc) :]
    new_acc = [b.add("add", [a, g_k[j]]) for a, j in zip(in_acc, kept)]
    q_vals = list(dict.fromkeys(batched[j][2] for j in sorted(batched)))  # shared Q once
    q_ys = [benv[q] for q in q_vals]
    chain_next = [env[fwd_g.inputs[nk + i]] for _, i in plan.chained]
    bbody = b.build([*g_c, *new_acc, *chain_next, *g_x, *q_ys])
    operands = [
        *[consts[i] for _, i in plan.consts],
        *hoisted,
        *ct_carry,
        *[_zeros(ctx, types[fk[j]]) for j in kept],
        *[fwd[i] for _, i in plan.chained],  # the last step's new carry: the final carry
        *stacks,
        *[xs[i] for _, i in plan.xs],
        *ct_ys,
    ]
    n_bconsts = len(plan.consts) + len(plan.hoisted)
    n_bcarry = len(fc) + len(kept) + len(plan.chained)
    bwd = emit_loop(
        ctx, "scan", operands, _scan_attrs(bbody, length, not reverse, n_bconsts, n_bcarry)
    )
    n1, n2 = len(fc), len(fc) + len(kept)
    bwd = bwd[:n2] + bwd[n_bcarry:]  # drop the chained carries' final values
    n3 = n2 + len(fx)
    g_consts = dict(zip([fk[j] for j in kept], bwd[n1:n2]))
    # sum_t X_t^T Q_t as one GEMM over the stacked X and Q (the unrolled graph's `batch`)
    stack_of = {v: t for v, t in zip(plan.stacked, stacks)}
    q_stack = dict(zip(q_vals, bwd[n3:]))
    for j in sorted(batched):
        x_val, root, q = batched[j][0], batched[j][1], q_stack[batched[j][2]]
        x_st = stack_of[root] if root in stack_of else xs[fwd_g.inputs.index(root) - nk - nc]
        x_st = ops.reshape(x_st, (length, *x_val.shape))
        rows = length * x_st.shape[1]
        lhs = ops.transpose(ops.reshape(x_st, (rows, x_st.shape[2])), None)
        g_consts[fk[j]] = ops.matmul(lhs, ops.reshape(q, (rows, q.shape[2])))
    return g_consts, dict(zip(fc, bwd[:n1])), dict(zip(fx, bwd[n2:n3]))


def _gemm_grads(fwd, bwd, res, nk, nc, n_fk, stacked) -> dict[int, tuple]:
    """Const gradients of the form `transpose(X_t) @ Q_t`, X_t (2-D) a stacked residual, an x
    slice, or a reshape of one: {index among the float consts: (X, its stored root, Q)}.

    Their per-step sum becomes one GEMM after the loop over the stacked X and the stacked Q
    (an extra output of the reverse loop), instead of a small GEMM and an accumulation per
    step."""
    producer = bwd.producers()
    fprod = fwd.producers()
    bpos = {v: i for i, v in enumerate(bwd.inputs)}
    uses: dict = {}
    for n in bwd.nodes:
        for v in n.inputs:
            uses[v] = uses.get(v, 0) + 1
    out = {}
    for j, g in enumerate(bwd.outputs[:n_fk]):
        p = producer.get(g)
        if p is None or p.op != "matmul" or uses.get(g) or bwd.outputs.count(g) != 1:
            continue
        lhs, q = p.inputs
        k = bpos.get(lhs)
        if k is None or k >= len(res) or lhs.ndim != 2 or q.ndim != 2:
            continue
        t = fprod.get(res[k])
        if t is None or t.op != "transpose" or tuple(t.attrs["axes"]) != (1, 0):
            continue
        x = root = t.inputs[0]
        while root not in stacked and fprod.get(root) is not None and fprod[root].op == "reshape":
            root = fprod[root].inputs[0]  # a reshaped state (`h[None]` of a vector state)
        i = fwd.inputs.index(root) if root in fwd.inputs else -1
        if root in stacked or i >= nk + nc:
            out[j] = (x, root, q)
    return out


def _hoist(ctx: TraceContext, fwd: Graph, plan, consts: list) -> list[Tracer]:
    """Compute the step's loop-invariant residuals once, before the loop, in ctx's graph."""
    env = {v: ctx.lift(c).value for v, c in zip(fwd.inputs, consts)}
    for n in plan.hoist_nodes:
        outs = ctx.builder.add_node(
            n.op, [env[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs], loc=n.loc
        )
        env.update(zip(n.outputs, outs))
    return [Tracer(ctx, env[v]) for v in plan.hoisted]


def _checkpointed(ctx, consts, init, xs, ct_carry, ct_ys, y_idx, attrs) -> tuple[dict, dict, dict]:
    """Reverse mode storing only the carry entering each block of k steps (see module doc)."""
    body, length, reverse, k = attrs["body"], attrs["length"], attrs["reverse"], attrs["checkpoint"]
    nk, nc = len(consts), len(init)
    n_blocks = length // k
    types = [v.type for v in body.inputs]
    fk = _floats(types[:nk])
    fc = _floats(types[nk : nk + nc])
    fx = _floats(types[nk + nc :])
    fwd = emit_loop(ctx, "scan", [*consts, *init, *xs], {**attrs, "save_every": k})
    saved = fwd[len(body.outputs) :]

    def blocks(x):
        return ops.reshape(x, (n_blocks, k, *x.shape[1:]))

    def segment(c_consts, ct_c, acc, c0, x_blk, cty_blk):
        inner = active_contexts()[-1]
        g_k, g_c, g_x = reverse_scan(
            inner,
            list(c_consts),
            list(c0),
            list(x_blk),
            list(ct_c),
            list(cty_blk),
            y_idx,
            body,
            k,
            reverse,
        )
        new_acc = [a + g_k[i] for a, i in zip(acc, fk)]
        return [g_c[i] for i in fc], new_acc, [g_x[i] for i in fx]

    protos = (
        [_proto(types[i]) for i in range(nk)],
        [_proto(types[nk + i]) for i in fc],
        [_proto(types[i]) for i in fk],
        [_proto(types[nk + i]) for i in range(nc)],
        [_proto(TensorType((k, *x.shape[1:]), x.dtype)) for x in xs],
        [_proto(TensorType((k, *c.shape[1:]), c.dtype)) for c in ct_ys],
    )
    seg = trace_tree(segment, protos, {}).graph
    operands = [
        *consts,
        *ct_carry,
        *[_zeros(ctx, types[i]) for i in fk],
        *saved,
        *[blocks(x) for x in xs],
        *[blocks(c) for c in ct_ys],
    ]
    outer = _scan_attrs(seg, n_blocks, not reverse, nk, len(fc) + len(fk))
    bwd = emit_loop(ctx, "scan", operands, outer)
    n1, n2 = len(fc), len(fc) + len(fk)
    g_x = [ops.reshape(g, (length, *g.shape[2:])) for g in bwd[n2:]]
    return dict(zip(fk, bwd[n1:n2])), dict(zip(fc, bwd[:n1])), dict(zip(fx, g_x))


def scan_vjp(ct: tuple, *args: Any, out: tuple, **attrs: Any) -> tuple:
    """Cotangents of a scan node's operands (see the module docstring)."""
    body = attrs["body"]
    lay = scan_layout(len(args), body, attrs["n_consts"], attrs["n_carry"], attrs["save_every"])
    consts, init, xs = lay.split_inputs(args)
    ct_c, ct_y, ct_s = lay.split_outputs(ct)
    out_c, out_y, _ = lay.split_outputs(out)
    if any(c is not None for c in ct_s):
        raise NotImplementedError(
            "scan: reverse mode through the stored blocks of a checkpointed scan (a gradient "
            "of a gradient with checkpoint=k); use checkpoint=None for higher derivatives"
        )
    ctx = out[0]._ctx
    fc = _floats([v.type for v in init])
    ct_carry = [ct_c[i] if ct_c[i] is not None else _zeros(ctx, out_c[i].type) for i in fc]
    y_idx = [j for j, c in enumerate(ct_y) if c is not None and out_y[j].type.is_float]
    ct_ys = [ct_y[j] for j in y_idx]
    if attrs["checkpoint"]:
        g_k, g_c, g_x = _checkpointed(ctx, consts, init, xs, ct_carry, ct_ys, y_idx, attrs)
    else:
        g_k, g_c, g_x = reverse_scan(
            ctx,
            consts,
            init,
            xs,
            ct_carry,
            ct_ys,
            y_idx,
            body,
            attrs["length"],
            attrs["reverse"],
        )
    return (
        *[g_k.get(i) for i in range(len(consts))],
        *[g_c.get(i) for i in range(len(init))],
        *[g_x.get(i) for i in range(len(xs))],
    )


def while_vjp(ct: tuple, *args: Any, out: tuple, **attrs: Any) -> tuple:
    """Cotangents of a while_loop node's operands (see the module docstring)."""
    cond, body, nk, max_steps = attrs["cond"], attrs["body"], attrs["n_consts"], attrs["max_steps"]
    consts, init = list(args[:nk]), list(args[nk:])
    nc = len(init)
    if not max_steps:
        where = f" (at {out[0]._ctx.loc})" if out[0]._ctx.loc else ""
        raise TypeError(
            f"while_loop{where}: reverse mode needs a bound on the trip count: pass "
            "max_steps=N (it sizes the history of carries the backward pass replays)"
        )
    if any(c is not None for c in ct[nc + 1 :]):
        raise NotImplementedError(
            "while_loop: reverse mode through the recorded carry history (a gradient of a "
            "gradient through a while_loop) is not supported"
        )
    ctx = out[0]._ctx
    types = [v.type for v in body.inputs]
    fk, fc = _floats(types[:nk]), _floats(types[nk:])
    rec = emit_loop(ctx, "while_loop", list(args), {**attrs, "record": True})
    count, hist = rec[nc], rec[nc + 1 :]
    joint = vjp_graph(body, fk + [nk + i for i in fc], seeds="input", ct_outputs=fc)

    # the backward loop: consts (consts, history), carries (i, ct of float carries, acc)
    def typed_inputs(b: Builder) -> tuple[list, list, Any, list, list]:
        k_in = [b.add_input(t) for t in types[:nk]]
        h_in = [b.add_input(h.type) for h in hist]
        i_in = b.add_input(TensorType((), np.dtype(np.int64)))
        ct_in = [b.add_input(types[nk + i]) for i in fc]
        acc_in = [b.add_input(types[i]) for i in fk]
        return k_in, h_in, i_in, ct_in, acc_in

    cb = Builder()
    _, _, i_in, _, _ = typed_inputs(cb)
    cond_b = cb.build([cb.add("greater", [i_in, cb.const(np.int64(0))])])
    b = Builder()
    k_in, h_in, i_in, ct_in, acc_in = typed_inputs(b)
    i1 = b.add("subtract", [i_in, b.const(np.int64(1))])
    c_in = [b.add("take", [h, i1], {"axis": 0}) for h in h_in]
    grads = copy_into(b, joint, [*k_in, *c_in, *ct_in])[nc:]
    g_k, g_c = grads[: len(fk)], grads[len(fk) :]
    new_acc = [b.add("add", [a, g]) for a, g in zip(acc_in, g_k)]
    body_b = b.build([i1, *g_c, *new_acc])
    out_c = list(out[:nc])
    ct_carry = [ct[i] if ct[i] is not None else _zeros(ctx, out_c[i].type) for i in fc]
    operands = [*consts, *hist, count, *ct_carry, *[_zeros(ctx, types[i]) for i in fk]]
    battrs = {
        "cond": cond_b,
        "body": body_b,
        "n_consts": nk + nc,
        "max_steps": max_steps,
        "record": False,
    }
    bwd = emit_loop(ctx, "while_loop", operands, battrs)
    g_c_out = dict(zip(fc, bwd[1 : 1 + len(fc)]))
    g_k_out = dict(zip(fk, bwd[1 + len(fc) :]))
    del cond
    return (*[g_k_out.get(i) for i in range(nk)], *[g_c_out.get(i) for i in range(nc)])
