"""The named stages from a traced graph to something callable.

    traced -> grad (joint graph) -> passes -> plan -> kernel

Each stage is a pure function; the CLI dumps any of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from compiler.interpret import run_graph
from compiler.ir.graph import Graph
from compiler.logging_setup import slow

log = logging.getLogger("gradc")

BACKENDS = ("numba", "interpret")


def optimize(graph: Graph, disable: Sequence[str] = (), report: list | None = None) -> Graph:
    """Run the default pass pipeline (minus `disable`)."""
    from compiler.autodiff.custom import expand_custom
    from compiler.passes import run_passes

    t0 = time.perf_counter()
    graph = expand_custom(graph)  # custom-rule calls become their bodies: passes see primitives
    out = run_passes(graph, disable=tuple(disable), report=report)
    log.info(
        "passes: %d -> %d nodes in %.3f s",
        len(graph.nodes),
        len(out.nodes),
        time.perf_counter() - t0,
    )
    return out


def _fuse(graph: Graph, disable: Sequence[str]) -> Graph:
    from compiler.passes import run_passes

    return graph if "fuse" in disable else run_passes(graph, names=("fuse",))


def grad_stages(
    joint: Graph,
    disable: Sequence[str] = (),
    memory: str | None = None,
    memory_budget: int | None = None,
) -> dict[str, Any]:
    """joint -> passes (all but fuse) -> plan -> fuse; planning sits between them because
    recomputed clones must not be merged back by CSE, and fusing after planning puts the
    recomputed elementwise values inside the backward's loops."""
    from compiler.plan import plan_graph

    pre = optimize(joint, (*disable, "fuse"))
    plan = plan_graph(pre, memory=memory, memory_budget=memory_budget)
    return {"grad": joint, "passes": pre, "plan": plan, "final": _fuse(plan.graph, disable)}


def vjp_stages(
    joint: Graph, n_primal_in: int, n_out: int, disable: Sequence[str] = ()
) -> dict[str, Any]:
    """Like `grad_stages`, then split into a forward stage (outputs + planned residuals) and a
    backward stage (residuals + cotangents -> gradients), each fused on its own."""
    from compiler.plan import plan_graph, split_plan

    pre = optimize(joint, (*disable, "fuse"))
    plan = plan_graph(pre)
    split = split_plan(plan, n_primal_in, n_out)
    return {
        "grad": joint,
        "passes": pre,
        "plan": plan,
        "forward": _fuse(split.forward, disable),
        "backward": _fuse(split.backward, disable),
        "n_residuals": split.n_residuals,
    }


def lower(graph: Graph, backend: str, stage: str) -> Callable[..., list]:
    """A callable `fn(*flat_inputs) -> list of outputs` for the graph on `backend`."""
    if backend == "interpret":

        def run(*flat: Any) -> list:
            return run_graph(graph, flat)

        run.graph = graph
        return run
    if backend == "numba":
        from compiler.codegen import compile_graph

        t0 = time.perf_counter()
        with slow(f"compiling the {stage} stage ({len(graph.nodes)} nodes)"):
            fn = compile_graph(graph, stage=stage)
        dt = time.perf_counter() - t0
        log.log(
            logging.INFO,
            "codegen %s: %d nodes, %d kernels in %.3f s",
            stage,
            len(graph.nodes),
            getattr(fn, "kernel_count", 0),
            dt,
        )
        return fn
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
