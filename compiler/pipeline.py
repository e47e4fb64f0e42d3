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

log = logging.getLogger("gradc")

BACKENDS = ("numba", "interpret")


def optimize(graph: Graph, disable: Sequence[str] = (), report: list | None = None) -> Graph:
    """Run the default pass pipeline (minus `disable`)."""
    try:
        from compiler.passes import run_passes
    except ImportError:  # TODO(#5): remove once the passes package lands
        return graph

    t0 = time.perf_counter()
    out = run_passes(graph, disable=tuple(disable), report=report)
    log.info(
        "passes: %d -> %d nodes in %.3f s",
        len(graph.nodes),
        len(out.nodes),
        time.perf_counter() - t0,
    )
    return out


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
