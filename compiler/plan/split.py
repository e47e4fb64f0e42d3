"""Split a planned joint graph (with cotangent inputs) into vjp's forward and backward stages.

The residuals are exactly what the plan keeps: the stored values plus the primal inputs the
backward reads. Clones stay in the backward (`autodiff.partition.split_joint`, a split by
cotangent dependence alone, would hoist them into the forward: it splits forward-mode graphs
into primal and linear parts, where nothing is planned); constants are re-emitted there.
Why the two splitters stay separate: docs/architecture.md, "Two residual splitters".
"""

from __future__ import annotations

from compiler.autodiff.partition import Split, assemble
from compiler.ir.graph import Value
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
    # constants first, in the order the backward first reads them, then the backward nodes
    reemit = [consts[v] for v in dict.fromkeys(reads) if v in consts]
    return assemble(g, n_primal_in, n_out, fwd_nodes, reemit + list(bwd_nodes), list(residuals))
