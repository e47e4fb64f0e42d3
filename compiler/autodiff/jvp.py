"""Forward mode as a graph transform: traced graph in, graph of primals and tangents out.

Walk the nodes in order; replay each one, then apply its JVP rule (written in NumPy syntax,
run on tracers so it emits ordinary primitives) to the tangents of its inputs. Inputs that
carry no tangent are passed to the rule as `None`; broadcasting and dtype are fixed here,
once, so rules never do it. The result is an ordinary graph, so it can be differentiated
again (forward-over-reverse, reverse-over-forward).
"""

from __future__ import annotations

from collections.abc import Sequence

from compiler.autodiff.custom import rule_of
from compiler.autodiff.vjp import _depends, _or_zeros, replay_node
from compiler.ir.graph import Graph, Value
from compiler.primitives.control import LOOP_OPS
from compiler.trace import ops
from compiler.trace.creation import active_contexts, tracing
from compiler.trace.tracer import TraceContext, Tracer


def _fit(t: Tracer, v: Value) -> Tracer:
    """Broadcast and cast a rule's tangent to the type of the value it belongs to."""
    if t.dtype != v.dtype:
        t = ops.cast_to(t, v.dtype)
    if t.shape != v.shape:
        t = ops.broadcast_to(t, v.shape)
    return t


def jvp_graph(graph: Graph, wrt: Sequence[int]) -> Graph:
    """The forward-mode graph of `graph` w.r.t. the inputs at positions `wrt`.

    Inputs: the graph's inputs, then one tangent per `wrt` input (typed like that input).
    Outputs: the graph's outputs, then one tangent per output (zeros of the output's shape
    where it does not depend on any `wrt` input; float64 zeros for non-float outputs).
    """
    ctx = TraceContext(depth=len(active_contexts()) + 1)
    b = ctx.builder
    env: dict[Value, Tracer] = {}
    tans: dict[Value, Tracer] = {}
    with tracing(ctx):
        for v in graph.inputs:
            env[v] = Tracer(ctx, b.add_input(v.type))
        wrt_vals = [graph.inputs[i] for i in wrt]
        for v in wrt_vals:
            t = Tracer(ctx, b.add_input(v.type))
            if v.type.is_float:  # int/bool inputs have no tangent space
                tans[v] = t
        dep = _depends(graph, [v for v in wrt_vals if v in tans])
        for n in graph.nodes:
            replay_node(ctx, n, env)
            if not any(v in dep for v in n.outputs) or not any(v in tans for v in n.inputs):
                continue
            ctx.loc = n.loc
            rule_in = [env[v] for v in n.inputs]
            t_in = [tans.get(v) for v in n.inputs]
            if n.op not in LOOP_OPS:
                t_out = rule_of(n).jvp(t_in, *rule_in, out=env[n.out], **n.attrs)
                tans[n.out] = _fit(ctx.lift(t_out), n.out)
            else:  # loop nodes: one tangent (or None) per output
                outs = tuple(env[v] for v in n.outputs)
                for v, t in zip(n.outputs, rule_of(n).jvp(t_in, *rule_in, out=outs, **n.attrs)):
                    if t is not None:
                        tans[v] = _fit(ctx.lift(t), v)
            ctx.loc = None
        out_tans = [_or_zeros(ctx, tans.get(v), v).value for v in graph.outputs]
    outputs = [env[v].value for v in graph.outputs] + out_tans
    return b.build(outputs, meta={"n_primal_outputs": len(graph.outputs)})
