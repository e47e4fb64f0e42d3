"""The planner's minimum cut against networkx's, which it replaced (compiler/plan/mincut.py)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from compiler.plan.mincut import min_cut_source_side


def _networkx_side(n, edges, src, sink):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for u, v, c in edges:
        if c is None:
            g.add_edge(u, v)
        else:
            g.add_edge(u, v, capacity=c)
    _, (side, _) = nx.minimum_cut(g, src, sink, flow_func=nx.algorithms.flow.boykov_kolmogorov)
    return [i in side for i in range(n)]


def _random_graph(rng, n):
    # the planner's shape: value i is the edge 2i -> 2i+1, data edges 2j+1 -> 2i (j < i) are
    # never cut, the source feeds some values and some values drain into the sink
    src, sink = 2 * n, 2 * n + 1
    edges = []
    for i in range(n):
        cap = None if rng.random() < 0.1 else int(rng.integers(0, 4))  # small: many ties
        edges.append((2 * i, 2 * i + 1, cap))
        for j in rng.choice(i, size=min(i, int(rng.integers(0, 3))), replace=False):
            edges.append((2 * int(j) + 1, 2 * i, None))
        if rng.random() < 0.3:
            edges.append((src, 2 * i, None))
        if rng.random() < 0.3:
            edges.append((2 * i + 1, sink, None))
    return 2 * n + 2, edges, src, sink


@pytest.mark.parametrize("seed", range(60))
def test_mincut_matches_networkx_on_planner_shaped_graphs(seed):
    rng = np.random.default_rng(seed)
    n, edges, src, sink = _random_graph(rng, int(rng.integers(1, 40)))
    try:
        expected = _networkx_side(n, edges, src, sink)
    except nx.NetworkXUnbounded:
        with pytest.raises(ValueError, match="uncuttable"):
            min_cut_source_side(n, edges, src, sink)
        return
    assert min_cut_source_side(n, edges, src, sink) == expected


@pytest.mark.parametrize("seed", range(30))
def test_mincut_matches_networkx_on_general_graphs(seed):
    # any digraph with finite capacities: cycles, antiparallel edges, unreachable nodes
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(2, 25))
    pairs = {(int(u), int(v)) for u, v in rng.integers(0, n, size=(3 * n, 2)) if u != v}
    edges = [(u, v, int(rng.integers(0, 6))) for u, v in sorted(pairs)]
    assert min_cut_source_side(n, edges, 0, n - 1) == _networkx_side(n, edges, 0, n - 1)


def test_mincut_of_a_path_cuts_its_cheapest_edge():
    edges = [(0, 1, 5), (1, 2, 2), (2, 3, 7)]
    assert min_cut_source_side(4, edges, 0, 3) == [True, True, False, False]


def test_mincut_without_a_finite_cut_raises():
    with pytest.raises(ValueError, match="uncuttable"):
        min_cut_source_side(3, [(0, 1, None), (1, 2, None)], 0, 2)
