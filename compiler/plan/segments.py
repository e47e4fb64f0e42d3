"""Checkpoint segments: user-marked (`checkpoint`) and automatic (`memory="sqrt"`, budgets).

A user segment is recorded while tracing as the tag `checkpoint=k` on each of its nodes
(`Node.tags`): every copy of a node keeps its tags (`vjp_graph`, `copy_into`, the passes),
the adjoint nodes of a tagged node get its tags, and no op rule reads them.

An automatic segmentation cuts the forward chain at values through which all of the
forward computation flows (the residual stream of a deep net), and groups the nodes between
every few such cuts into one segment, so that about sqrt(depth) boundaries are stored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence

from compiler.ir.graph import Builder, Node, Value

CHECKPOINT = "checkpoint"


def node_segment(node: Node) -> int | None:
    """The user segment of a node; a fused node belongs to the one all its body shares."""
    if node.op == "fused":
        tags = {n.tags.get(CHECKPOINT) for n in node.attrs["body"].nodes}
        if len(tags) == 1:
            return tags.pop()
    return node.tags.get(CHECKPOINT)


def mark_segment(b: Builder, start: int) -> None:
    """Tag the nodes `b` appended since index `start` as one checkpoint segment."""
    for i in range(start, len(b.nodes)):
        n = b.nodes[i]
        # an enclosing segment is marked after the inner one and replaces it
        b.nodes[i] = dataclasses.replace(n, tags={**n.tags, CHECKPOINT: start})


def user_segments(fwd: Sequence[Node]) -> dict[Node, Hashable]:
    """Forward node -> user segment id, from the `checkpoint` tags."""
    out: dict[Node, Hashable] = {}
    for n in fwd:
        s = node_segment(n)
        if s is not None:
            out[n] = s
    return out


def chain_cuts(fwd: Sequence[Node], free: set[Value]) -> list[tuple[int, Value]]:
    """(i, v) where v, made by node i, is the only forward value later forward nodes read."""
    # These are the articulation points of the forward chain. Inputs, constants, outputs and
    # fills (`free`, and zero-input nodes) are ignored: they are available anywhere.
    pos = {v: i for i, n in enumerate(fwd) for v in n.outputs}
    last: dict[Value, int] = {}
    for i, n in enumerate(fwd):
        for v in n.inputs:
            if v in pos and v not in free and fwd[pos[v]].inputs:
                last[v] = i
    diff = [0] * (len(fwd) + 1)
    for v, j in last.items():
        diff[pos[v]] += 1
        diff[j] -= 1  # crossing the gaps pos[v] .. j-1
    cuts, acc = [], 0
    for i, n in enumerate(fwd):
        acc += diff[i]
        crossing = [v for v in n.outputs if last.get(v, -1) > i]
        if acc == 1 and len(crossing) == 1:
            cuts.append((i, crossing[0]))
    return cuts


def choose_boundaries(
    cuts: Sequence[int],
    weights: Sequence[int],
    boundary_bytes: float,
    n_segments: int | None = None,
) -> list[int]:
    """Cut positions that split the chain into segments of about equal weight."""
    # `weights[j]` is the activation bytes between cut j-1 and cut j. With n_segments=None the
    # target weight per segment is sqrt(total * boundary_bytes), which balances the stored
    # boundaries against the activations live while one segment is recomputed: both grow
    # like sqrt(depth).
    total = sum(weights)
    if not cuts or total <= 0:
        return []
    if n_segments is None:
        target = math.sqrt(total * max(boundary_bytes, 1.0))
    else:
        target = total / max(1, n_segments)
    chosen, acc = [], 0
    for c, w in zip(cuts, weights):
        acc += w
        if acc >= target:
            chosen.append(c)
            acc = 0
    return chosen


def auto_segments(
    fwd: Sequence[Node],
    free: set[Value],
    needed: set[Value],
    taken: dict[Node, Hashable],
    n_segments: int | None = None,
) -> dict[Node, Hashable]:
    """Automatic segments between chosen chain cuts (nodes in user segments are left alone)."""
    # The tail after the last boundary is not a segment: the backward starts there, so its
    # activations are kept rather than recomputed at once.
    found = [(c, v) for c, v in chain_cuts(fwd, free) if fwd[c] not in taken]
    cuts = [c for c, _ in found]
    weights, prev = [], -1
    for c in cuts:
        span = fwd[prev + 1 : c + 1]
        weights.append(sum(v.type.nbytes for n in span for v in n.outputs if v in needed))
        prev = c
    boundary = sum(v.type.nbytes for _, v in found) / max(1, len(found))
    out: dict[Node, Hashable] = {}
    prev = -1
    for k, c in enumerate(choose_boundaries(cuts, weights, boundary, n_segments)):
        for n in fwd[prev + 1 : c + 1]:
            if n not in taken and n.inputs:
                out[n] = ("auto", k)
        prev = c
    return out
