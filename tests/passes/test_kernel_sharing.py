"""Kernels shared across repeats: an unrolled N-step loop compiles as many kernels as it has
distinct step bodies, not N (compiler/passes/chunks.py). Structure only: nothing compiles."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import value_and_grad
from compiler.codegen.compile import generate
from compiler.interpret import run_graph
from compiler.passes.chunks import WINDOW, anchors, signatures

DT = 0.05


def euler(steps: int):
    """A field of damped pendulums, explicit Euler, unrolled by a Python loop."""

    def loss(k, c, x0, target):
        x, v = x0, 0.0 * x0
        for t in range(steps):
            x, v = x + DT * v, v + DT * (-k * np.sin(x) - c * v + 0.1 * np.cos(0.3 * t))
        return np.sum((x - target) ** 2)

    return loss


def _args(size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [1.0 + rng.random(size), 0.2 + rng.random(size), *rng.standard_normal((2, size))]


def _lowered(steps: int, size: int = 8000):
    st = value_and_grad(euler(steps), argnums=(0, 1)).build_stages(*_args(size))
    (low,) = st.lowered
    return low


def _kernels(steps: int) -> tuple[int, int]:
    """(distinct loop kernels in the stage's module, fused loops in its graph)."""
    low = _lowered(steps)
    lines = generate(low.graph, low.buffers, low.name).source.splitlines()
    # each kernel once, whatever calls it; its parallel twin (another decorator) not counted
    serial = sum(
        a.startswith("@numba.njit") and "parallel" not in a and b.startswith("def k_")
        for a, b in zip(lines, lines[1:])
    )
    return serial, sum(n.op == "fused" for n in low.graph.nodes)


@pytest.fixture(scope="module")
def counts() -> dict[int, tuple[int, int]]:
    return {n: _kernels(n) for n in (5, 20, 60)}


def test_unrolled_steps_share_kernels(counts):
    (k5, _), (k20, f20), (k60, f60) = counts[5], counts[20], counts[60]
    # three times the steps: about three times the loops, and not one kernel more
    assert f60 >= 2.5 * f20
    assert k60 <= k20
    # 5 steps are mostly the start and the end of the loop: no more kernels than 20 steps
    assert k5 <= k20
    # before kernel identity was structural, 20 steps compiled a kernel per loop
    assert k20 < f20


def test_a_new_size_renders_the_same_module():
    a, b = _lowered(20, 8000), _lowered(20, 8008)
    ga, gb = generate(a.graph, a.buffers, a.name), generate(b.graph, b.buffers, b.name)
    assert ga.source == gb.source


def test_chunked_fusion_computes_what_the_traced_graph_does():
    """The lowered (chunked, fused) graph against the traced function, on the interpreter."""
    args = _args(16)
    f = value_and_grad(euler(20), argnums=(0, 1), backend="interpret")
    st = f.build_stages(*args)
    got = run_graph(st.lowered[0].graph, args)
    want = run_graph(st.traced, args)[0]
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    # the gradient in k against central differences along a random direction
    d = np.random.default_rng(1).standard_normal(16)
    eps = 1e-6
    k = args[0]
    up = run_graph(st.traced, [k + eps * d, *args[1:]])[0]
    down = run_graph(st.traced, [k - eps * d, *args[1:]])[0]
    np.testing.assert_allclose(got[1] @ d, (up - down) / (2 * eps), rtol=1e-6)


def test_minimizers_put_an_anchor_in_every_window_and_repeat_with_the_input():
    rng = np.random.default_rng(0)
    period = list(rng.integers(0, 2**32, size=11))
    seq = list(rng.integers(0, 2**32, size=7)) + period * 9
    found = anchors(seq)
    assert all(any(j <= a < j + WINDOW for a in found) for j in range(len(seq) - WINDOW + 1))
    tail = [a for a in found if a >= 7 + WINDOW]  # past the first window of the periodic part
    phases = {(a - 7) % 11 for a in tail}
    assert len(phases) == 1  # one anchor per period, at the same place in each
    assert [b - a for a, b in zip(tail, tail[1:])] == [11] * (len(tail) - 1)


def test_signatures_ignore_sizes_and_constant_values():
    a, b = _lowered(3, 100), _lowered(3, 300)
    assert signatures(a.graph) == signatures(b.graph)
