"""The lowering passes of the pipeline (`route`, `fuse`, `pushdown`, `rowfuse`, `schedule`,
`buffers`):
one graph in, the graph and buffer plan `compile_graph` renders out.

`compiler.pipeline` runs them on every compiled stage (printing and disabling them by name);
`loop_node` runs them on loop bodies, which compile as stages of their own. They live here,
beside codegen, because their decisions are the Numba backend's: what it runs as a library
call, what fits one loop nest, and whether a graph needs an arena.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compiler.codegen.compile import uses_arena
from compiler.codegen.loops import fits_loop
from compiler.codegen.pushdown import push_down
from compiler.codegen.routing import Routing, current_routing
from compiler.codegen.rowfuse import row_fuse
from compiler.codegen.schedule import sink
from compiler.ir.graph import Graph
from compiler.passes.fuse import fuse, inline_fused
from compiler.passes.route import route
from compiler.plan.buffers import Buffers, assign_buffers

Keep = Callable[[str, Graph], None]


@dataclass(frozen=True)
class Lowered:
    """One graph as codegen renders it: the `schedule` stage's graph and the `buffers` plan."""

    name: str  # the codegen stage: value_and_grad, jit, vjp_forward or vjp_backward
    graph: Graph
    buffers: Buffers | None  # None: the backend keeps no arena for it (an all-scalar graph)
    # the stage cache's name for exactly this graph and plan (its entry's key and the stage),
    # under which codegen keeps what it renders (codegen/rendered.py); None: not cached
    key: str | None = None

    @property
    def arena_bytes(self) -> int:
        """Bytes of the arena the compiled stage allocates (its planned peak)."""
        return 0 if self.buffers is None else self.buffers.peak_bytes


def _fuse(graph: Graph) -> Graph:
    # sunk first, so a backward-only elementwise value the planner left in the forward (like
    # `1 - t*t` after a tanh) sits next to its backward reader and fuses into that loop;
    # groups that are not one loop nest are inlined again (codegen lowers them op by op)
    return inline_fused(fuse(sink(graph)), lambda body: not fits_loop(body))


def lower_passes(
    graph: Graph,
    name: str,
    disable: Sequence[str] = (),
    keep: Keep | None = None,
    routing: Routing | None = None,
) -> Lowered:
    """route, fuse, pushdown, rowfuse, schedule, buffers: the graph and plan codegen
    renders. `routing`: the route pass's decisions (default: `current_routing()`)."""
    arena = uses_arena(graph)
    rt = current_routing() if routing is None else routing
    steps: list[tuple[str, Callable[[Graph], Graph]]] = [
        ("route", lambda g: route(g, library=arena, prefers=rt.prefers)),
        ("fuse", _fuse),
        ("pushdown", push_down),
        ("rowfuse", row_fuse),
        ("schedule", sink),
    ]
    for step, fn in steps:
        if step in disable:
            continue
        graph = fn(graph)
        if keep is not None:
            keep(step, graph)
    buffers = None
    if uses_arena(graph):
        buffers = assign_buffers(graph, share="buffers" not in disable)
    return Lowered(name, graph, buffers)
