"""Content-defined chunks of a graph's node order: where fusion may cut, decided by structure.

Fusion caps a group's size (Numba's compile time grows superlinearly with a function's size).
Counting nodes from the start of the graph would put the cuts of an unrolled loop at a
different place in each step, so every step would fuse into a slightly different group and
compile a kernel of its own. Instead the order is cut as content-defined chunking cuts a byte
stream (rsync, deduplicating stores): at positions chosen by the local structure alone.

- Each node gets a *shape-free signature*: its op, output dtype and broadcast pattern (rank,
  which dimensions are 1), its route tag, and for each operand where it comes from: a graph
  input (by index), a constant (value ignored), a node at most `NEAR` positions back (by its
  distance), or a node farther away (by its op only: a loop invariant hoisted to the top, or
  a forward value the backward reads). Sizes and constant values never enter, so a new batch
  size or new constants cut in the same places.
- Anchors are *minimizers*: in every window of `WINDOW` consecutive positions, the leftmost
  position of the smallest signature hash. Every window holds an anchor, so segments between
  anchors are at most `WINDOW` long; and in a stretch that repeats with period p <= WINDOW
  the anchors repeat with the same period.
- Segments are packed in order, the same number into every chunk: as many of the largest
  segment as fit in `limit` fusable nodes. A periodic run of segments then packs into
  identical chunks, and a loop's forward and backward steps into chunks of as many steps
  each, so an N-step loop has a fixed number of distinct chunks whatever N is (the first
  and last steps, and the boundary between the forward and the backward, add a few).
"""

from __future__ import annotations

import zlib
from collections import deque

from compiler.ir.graph import Graph, Node, Value
from compiler.passes.route import routed
from compiler.primitives import CONST_OPS, OPS, REDUCE_OPS, Lowering

WINDOW = 32  # positions per minimizer window: the longest segment between two anchors
NEAR = 48  # an operand produced farther back is described by its op, not its distance


def _fusable(n: Node) -> bool:
    d = OPS.get(n.op)
    scalar = d is not None and d.lowering is Lowering.SCALAR and not routed(n)
    return scalar or n.op in REDUCE_OPS


def _typical(counts: list[int]) -> int:
    """The segment size chunks are packed for: the 90th percentile, so that the steps of the
    loop that makes up most of the graph set it, not one odd segment at its edge (a chunk
    with such a segment may exceed `limit`; fusion's own cap then splits it)."""
    return counts[(len(counts) * 9) // 10] if counts else 1


def signatures(graph: Graph) -> list[int]:
    """One stable 32-bit hash per node of its shape-free signature (see module doc)."""
    prod: dict[Value, int] = {}
    inputs = {v: k for k, v in enumerate(graph.inputs)}
    out: list[int] = []
    for i, n in enumerate(graph.nodes):
        parts = [n.op, "L" if routed(n) else ""]
        for v in n.outputs:
            parts.append(f"{v.dtype.str}{''.join('1' if s == 1 else '*' for s in v.shape)};")
        for u in n.inputs:
            j = prod.get(u)
            if j is None:
                parts.append(f"i{inputs.get(u, -1)}")
                continue
            src = graph.nodes[j]
            if src.op in CONST_OPS:
                parts.append("c")
            elif i - j <= NEAR:
                parts.append(f"n{i - j}")
            else:
                parts.append(f"f{src.op}")
        for v in n.outputs:
            prod[v] = i
        # crc32 and not hash(): str hashes differ between processes, and the cuts (so the
        # generated modules) must not
        out.append(zlib.crc32("|".join(parts).encode()))
    return out


def anchors(hashes: list[int], window: int = WINDOW) -> list[int]:
    """The minimizer positions: in each window of `window` positions, the leftmost minimum."""
    n = len(hashes)
    if n == 0:
        return []
    found: set[int] = set()
    q: deque[int] = deque()  # positions with increasing hashes (a sliding-window minimum)
    for i in range(n):
        while q and hashes[q[-1]] > hashes[i]:  # strictly greater: the leftmost minimum stays
            q.pop()
        q.append(i)
        start = i - window + 1
        if q[0] < start:
            q.popleft()
        if start >= 0 or i == n - 1:
            found.add(q[0])
    return sorted(found)


def chunks(graph: Graph, limit: int) -> list[int]:
    """A chunk number per node position: fusion groups never span two chunks."""
    nodes = graph.nodes
    cuts = set(anchors(signatures(graph)))
    bounds = sorted(cuts | {0}) + [len(nodes)]  # segments run from one anchor to the next
    segs = [
        (a, b, sum(_fusable(nodes[k]) for k in range(a, b))) for a, b in zip(bounds, bounds[1:])
    ]
    # the same number of segments in every chunk (as many typical ones as fit): so a loop's
    # forward steps and its backward steps are packed alike, and every forward chunk meets
    # the backward chunks at the same place (which decides what `pushdown` moves)
    per = max(1, limit // max(1, _typical(sorted(c for _, _, c in segs))))
    out: list[int] = []
    for j, (a, b, _c) in enumerate(segs):
        out.extend([j // per] * (b - a))
    return out


__all__ = ["NEAR", "WINDOW", "anchors", "chunks", "signatures"]
