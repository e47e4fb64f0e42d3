"""Split a joint graph with cotangent inputs into a forward and a backward stage.

The forward stage computes the primal outputs plus the residuals: the forward values that
the backward stage reads. The backward stage takes residuals then cotangents and returns
the gradients. Constants and fills used by the backward stage are re-emitted there rather
than stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.ir.graph import Builder, Graph, Node, Value


@dataclass(frozen=True)
class Split:
    forward: Graph  # inputs: primals; outputs: primal outputs, then residuals
    backward: Graph  # inputs: residuals, then cotangents; outputs: gradients
    n_residuals: int


def split_joint(joint: Graph, n_primal_in: int, n_out: int) -> Split:
    """Partition `joint` (inputs: primals then cotangents; outputs: primal outputs then
    gradients) into forward and backward graphs."""
    ct_inputs = set(joint.inputs[n_primal_in:])
    bwd_nodes = set()
    tainted: set[Value] = set(ct_inputs)
    for n in joint.nodes:
        if any(v in tainted for v in n.inputs):
            tainted.update(n.outputs)
            bwd_nodes.add(id(n))
    producers = joint.producers()
    grads = joint.outputs[n_out:]
    # constants that only the backward reads are recomputed there, not stored
    needed_bwd: set[int] = set()
    for n in joint.nodes:
        if id(n) in bwd_nodes:
            for v in n.inputs:
                p = producers.get(v)
                if p is not None and not p.inputs:
                    needed_bwd.add(id(p))
    for g in grads:
        p = producers.get(g)
        if p is not None and not p.inputs and g not in tainted:
            needed_bwd.add(id(p))
    residuals: list[Value] = []
    seen: set[Value] = set()

    def need(v: Value) -> None:
        p = producers.get(v)
        if v in tainted or v in seen or (p is not None and id(p) in needed_bwd):
            return
        seen.add(v)
        residuals.append(v)

    for n in joint.nodes:
        if id(n) in bwd_nodes:
            for v in n.inputs:
                need(v)
    for g in grads:
        need(g)
    sp = assemble(
        joint,
        n_primal_in,
        n_out,
        [n for n in joint.nodes if id(n) not in bwd_nodes],
        [n for n in joint.nodes if id(n) in bwd_nodes or id(n) in needed_bwd],
        residuals,
    )
    live = sp.forward.live_values()
    fwd = sp.forward.keep_nodes(lambda n: any(v in live for v in n.outputs))
    return Split(fwd, sp.backward, sp.n_residuals)


def assemble(
    g: Graph,
    n_primal_in: int,
    n_out: int,
    forward: Sequence[Node],
    backward: Sequence[Node],
    residuals: Sequence[Value],
) -> Split:
    """The two graphs of a split decided by the caller: the forward runs `forward` and
    returns the primal outputs then `residuals`; the backward takes the residuals then the
    cotangent inputs, replays `backward` (in that order) and returns the other outputs."""
    fwd = Graph(g.inputs[:n_primal_in], tuple(forward), tuple(g.outputs[:n_out]) + tuple(residuals))
    b = Builder()
    env = {v: b.add_input(v.type) for v in residuals}
    env.update({v: b.add_input(v.type) for v in g.inputs[n_primal_in:]})
    for n in backward:
        outs = b.add_node(
            n.op, [env[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs], loc=n.loc
        )
        env.update(zip(n.outputs, outs))
    return Split(fwd, b.build([env[v] for v in g.outputs[n_out:]]), len(residuals))
