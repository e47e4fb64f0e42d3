"""Split a planned joint graph (with cotangent inputs) into vjp's forward and backward stages.

The residuals are exactly what the plan keeps: the stored values plus the primal inputs the
backward reads. Clones stay in the backward (`autodiff.partition.split_joint`, a split by
cotangent dependence alone, would hoist them into the forward: it splits forward-mode graphs
into primal and linear parts, where nothing is planned); constants are re-emitted there.
"""

from __future__ import annotations

from compiler.autodiff.partition import Split
from compiler.ir.graph import Builder, Graph, Value
from compiler.plan.planner import Plan


def split_plan(plan: Plan, n_primal_in: int, n_out: int) -> Split:
    """Forward: primals -> outputs, residuals. Backward: residuals, cotangents -> gradients."""
    g = plan.graph
    fwd_nodes, bwd_nodes = g.nodes[: plan.n_forward], g.nodes[plan.n_forward :]
    cts = set(g.inputs[n_primal_in:])
    for n in fwd_nodes:
        if cts.intersection(n.inputs):
            raise ValueError(
                f"split_plan: forward node {n.op} reads a cotangent (a fused group mixes "
                "forward and backward nodes); run `fuse` on each stage after splitting"
            )
    consts = {n.out: n for n in fwd_nodes if n.op == "const"}
    fwd_vals = set(g.inputs[:n_primal_in]) | {v for n in fwd_nodes for v in n.outputs}
    residuals: dict[Value, None] = {}
    reads = [v for n in bwd_nodes for v in n.inputs] + list(g.outputs[n_out:])
    for v in reads:
        if v in fwd_vals and v not in consts:
            residuals[v] = None
    fwd = Graph(
        g.inputs[:n_primal_in], tuple(fwd_nodes), tuple(g.outputs[:n_out]) + tuple(residuals)
    )
    b = Builder()
    env = {v: b.add_input(v.type) for v in residuals}
    env.update({v: b.add_input(v.type) for v in g.inputs[n_primal_in:]})
    for v in dict.fromkeys(reads):
        if v in consts and v not in env:
            n = consts[v]
            env[v] = b.add_node(n.op, [], n.attrs, [v.type], loc=n.loc)[0]
    for n in bwd_nodes:
        outs = b.add_node(
            n.op, [env[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs], loc=n.loc
        )
        env.update(zip(n.outputs, outs))
    return Split(fwd, b.build([env[v] for v in g.outputs[n_out:]]), len(residuals))
