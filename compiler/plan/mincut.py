"""A minimum s-t cut by maximum flow (Dinic's algorithm), for the store-or-recompute choice.

gradc used networkx's `minimum_cut` here. Importing networkx takes 0.1-0.3 s, most of a
first call's budget (docs/performance.md, "First call"), and the planner is the only part of
a compile that needs it; this module is the one algorithm the planner used from it. The cut it
returns is networkx's: the nodes that cannot reach the sink in the residual graph of a maximum
flow. That set is the same for every maximum flow (it is the source side of the minimum cut
with the smallest sink side), so the choice does not depend on how the flow was found.
`tests/plan/test_mincut.py` checks it against networkx on random graphs and on plans.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


def min_cut_source_side(
    n: int, edges: Iterable[tuple[int, int, int | None]], src: int, sink: int
) -> list[bool]:
    """Per node of `0..n-1`, whether it is on the source side of a minimum `src`-`sink` cut.

    `edges` are `(u, v, capacity)` with a non-negative integer capacity, or None for an edge
    that is never cut. Raises ValueError when every cut crosses such an edge."""
    to: list[int] = []
    cap: list[int] = []
    adj: list[list[int]] = [[] for _ in range(n)]
    finite = 0
    unbounded: list[int] = []
    for u, v, c in edges:
        adj[u].append(len(to))
        to.append(v)
        if c is None:
            unbounded.append(len(cap))
            cap.append(0)
        else:
            cap.append(c)
            finite += c
        adj[v].append(len(to))  # the paired reverse edge is e ^ 1
        to.append(u)
        cap.append(0)
    inf = finite + 1  # more than any cut of finite edges can carry
    for e in unbounded:
        cap[e] = inf
    if _max_flow(adj, to, cap, src, sink) >= inf:
        raise ValueError("min_cut_source_side: every source-sink cut crosses an uncuttable edge")
    # the nodes that reach the sink through edges with residual capacity: the sink side
    reach = [False] * n
    reach[sink] = True
    queue = deque([sink])
    while queue:
        v = queue.popleft()
        for e in adj[v]:
            u = to[e]
            if not reach[u] and cap[e ^ 1] > 0:  # residual u -> v
                reach[u] = True
                queue.append(u)
    return [not r for r in reach]


def _max_flow(adj: list[list[int]], to: list[int], cap: list[int], src: int, sink: int) -> int:
    """Dinic: augment along shortest paths, one level graph at a time; edits `cap` in place."""
    n = len(adj)
    total = 0
    while True:
        level = [-1] * n
        level[src] = 0
        queue = deque([src])
        while queue:
            u = queue.popleft()
            for e in adj[u]:
                v = to[e]
                if level[v] < 0 and cap[e] > 0:
                    level[v] = level[u] + 1
                    queue.append(v)
        if level[sink] < 0:
            return total
        total += _blocking_flow(adj, to, cap, level, src, sink)


def _blocking_flow(
    adj: list[list[int]], to: list[int], cap: list[int], level: list[int], src: int, sink: int
) -> int:
    """Augment along level-increasing paths until none is left (iterative: paths can be long)."""
    nxt = [0] * len(adj)  # per node, the first edge not yet found useless
    pushed = 0
    path: list[int] = []  # edges from src to the current node
    u = src
    while True:
        if u == sink:
            f = min(cap[e] for e in path)
            for e in path:
                cap[e] -= f
                cap[e ^ 1] += f
            pushed += f
            # back up to the tail of the first saturated edge
            k = next(i for i, e in enumerate(path) if cap[e] == 0)
            del path[k:]
            u = to[path[-1]] if path else src
            continue
        edges = adj[u]
        i = nxt[u]
        while i < len(edges):
            e = edges[i]
            v = to[e]
            if cap[e] > 0 and level[v] == level[u] + 1:
                break
            i += 1
        nxt[u] = i
        if i < len(edges):
            path.append(edges[i])
            u = to[edges[i]]
            continue
        # dead end: no level-increasing edge leaves u
        if u == src:
            return pushed
        level[u] = -1  # never enter it again in this phase
        e = path.pop()
        u = to[e ^ 1]
        nxt[u] += 1
