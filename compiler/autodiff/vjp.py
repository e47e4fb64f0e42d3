"""Reverse mode as a graph transform: traced graph in, joint graph (forward + adjoints) out.

Walk the nodes in reverse order; apply each op's VJP rule (written in NumPy syntax, run on
tracers so it emits ordinary primitives) to the node's accumulated cotangent; sum where a
value fans out; undo broadcasting once, here, by summing over the broadcast axes. The joint
graph is an ordinary graph, so it can be differentiated again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compiler.autodiff.custom import rule_of
from compiler.ir.graph import Graph, Node, Value
from compiler.primitives.control import LOOP_OPS
from compiler.trace import ops
from compiler.trace.creation import active_contexts, tracing
from compiler.trace.tracer import TraceContext, Tracer


def unbroadcast(ct: Tracer, shape: tuple[int, ...]) -> Tracer:
    """Sum `ct` over the axes along which a value of `shape` was broadcast."""
    if ct.shape == shape:
        return ct
    lead = ct.ndim - len(shape)
    if lead < 0 or np.broadcast_shapes(ct.shape, shape) != ct.shape:
        return ops.broadcast_to(ct, shape)  # a smaller cotangent (e.g. a scalar zero)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and ct.shape[lead + i] != 1
    )
    out = ops.reduce("sum", ct, axes, keepdims=False)
    return ops.reshape(out, shape) if out.shape != shape else out


def replay_node(ctx: TraceContext, n: Node, env: dict[Value, Tracer]) -> None:
    """Copy forward node `n` into ctx's builder, binding its outputs as tracers in `env`."""
    outs = ctx.builder.copy(n, [env[v].value for v in n.inputs])
    env.update((v, Tracer(ctx, o)) for v, o in zip(n.outputs, outs))


def _or_zeros(ctx: TraceContext, t: Tracer | None, v: Value) -> Tracer:
    """`t`, or zeros shaped like `v` when nothing flowed into it (float64 for int/bool)."""
    if t is not None:  # not `t or ...`: a tracer has no truth value
        return t
    return ops.full(ctx, v.shape, 0.0, v.dtype if v.type.is_float else np.float64)


def _depends(graph: Graph, wrt: Sequence[Value]) -> set[Value]:
    """Float values that depend on some `wrt` input (the only ones that carry adjoints)."""
    dep = {v for v in wrt if v.type.is_float}
    for n in graph.nodes:
        if rule_of(n).differentiable and any(v in dep for v in n.inputs):
            dep.update(v for v in n.outputs if v.type.is_float)
    return dep


def vjp_graph(
    graph: Graph, wrt: Sequence[int], *, seeds: str = "ones", ct_outputs: Sequence[int] = (0,)
) -> Graph:
    """The joint graph of `graph` w.r.t. the inputs at positions `wrt`.

    Inputs: the graph's inputs, then (seeds="input") one cotangent per output in
    `ct_outputs`; with seeds="ones" the single output `ct_outputs[0]` is seeded with 1.
    Outputs: the graph's outputs, then one gradient per `wrt` input (zeros of the right
    shape where the output does not depend on it).
    """
    ctx = TraceContext(depth=len(active_contexts()) + 1)
    b = ctx.builder
    with tracing(ctx):
        env = {v: Tracer(ctx, b.add_input(v.type)) for v in graph.inputs}
        for n in graph.nodes:
            replay_node(ctx, n, env)
        wrt_vals = [graph.inputs[i] for i in wrt]
        dep = _depends(graph, wrt_vals)
        cts: dict[Value, Tracer] = {}
        producers = graph.producers()
        for k in ct_outputs:
            out = graph.outputs[k]
            ctx.loc = producers[out].loc if out in producers else None  # seed at the output
            if seeds == "input":
                seed = Tracer(ctx, b.add_input(out.type))
            else:
                seed = ops.full(ctx, out.shape, 1.0, out.dtype)
            if out in dep:
                _accumulate(cts, out, seed)
        ctx.loc = None
        for n in reversed(graph.nodes):
            if not any(v in cts for v in n.outputs) or not any(v in dep for v in n.inputs):
                continue
            ctx.loc, b.tags = n.loc, n.tags  # the adjoint belongs where its node does
            rule_in = [env[v] for v in n.inputs]
            if n.op not in LOOP_OPS:
                ct, out = cts.pop(n.out), env[n.out]
            else:  # loop nodes: a tuple of cotangents (or None), one per output
                ct = tuple(cts.pop(v, None) for v in n.outputs)
                out = tuple(env[v] for v in n.outputs)
            results = rule_of(n).vjp(ct, *rule_in, out=out, **n.attrs)
            for v, r in zip(n.inputs, results):
                if r is None or v not in dep:
                    continue
                r = ctx.lift(r)
                r = unbroadcast(r, v.shape)
                if r.dtype != v.dtype:
                    r = ops.cast_to(r, v.dtype)
                _accumulate(cts, v, r)
            ctx.loc, b.tags = None, {}
        grads = [_or_zeros(ctx, cts.get(v), v).value for v in wrt_vals]
    outputs = [env[v].value for v in graph.outputs] + grads
    return b.build(outputs, meta={"n_primal_outputs": len(graph.outputs)})


def _accumulate(cts: dict[Value, Tracer], v: Value, r: Tracer) -> None:
    prev = cts.get(v)
    cts[v] = r if prev is None else ops.elementwise("add", np.add, prev, r)
