"""The pass registry and runner: named `graph -> graph` functions, run in an explicit order.

A pass is pure and returns the SAME object when it changes nothing, so a runner detects "no
change" with `is` instead of comparing dumps. The whole compile pipeline, these passes
included, is the list `PIPELINE` (run by `compiler.pipeline`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from compiler.ir.graph import Graph
from compiler.ir.verify import VerifyError, verify

Pass = Callable[[Graph], Graph]

PASSES: dict[str, Pass] = {}

# Why this order:
# - simplify first: the adjoint is full of `* 1`, `+ 0`, zero fills and reshape/broadcast
#   chains; removing them exposes constant subgraphs and makes equal expressions look equal;
# - fold next: what simplify leaves computed from constants only becomes one constant;
# - batch after both: it matches `transpose(a) @ b` terms of add chains and products of a
#   shared operand, which simplify makes visible (transpose chains, `* 1` and zero terms
#   gone); before cse, which merges the equal concatenations it emits (the forward's
#   `concat(x_t)` and the weight gradient's), and which could make a term used twice (a
#   term with another user is not batched); it looks through a weight's per-use
#   transposes itself;
# - cse after those, on canonical forms, so `transpose W` built twice (by two VJPs) and
#   constants that folding made equal are merged;
# - dce then drops everything the passes above left without users (only batch skips the
#   nodes it absorbs, all of them single-use);
# - fuse last: it groups the final elementwise chains into loop nests, and its `fused`
#   nodes are opaque to the other passes. (The compile pipeline runs it later, after
#   planning and routing: see PIPELINE.)
# - loops first: it merges each loop with the residual-storing twin its VJP rule emitted by
#   comparing their bodies as emitted (before other passes make them differ), then runs
#   these passes inside the bodies (compiler/passes/loops.py).
ALGEBRAIC_PASSES: tuple[str, ...] = ("loops", "simplify", "fold", "batch", "cse", "dce")
DEFAULT_PASSES: tuple[str, ...] = (*ALGEBRAIC_PASSES, "fuse")

# Every pass of the compile pipeline, in order (`compiler.pipeline` runs them; each can be
# printed with `gradc ir --print-after NAME` and switched off with `--disable NAME`):
# the algebraic passes; `plan` (store or recompute, checkpoint segments); `route` (which ops
# the backend runs as library calls); `fuse` (loop nests, routed ops as barriers);
# `pushdown` (cheap group outputs recomputed in their readers); `rowfuse` (a matvec, the
# loop over its rows and the transposed matvec as one pass over the matrix); `schedule`
# (node order for memory); `buffers` (arena slots). Those after `dce` need the pipeline's
# context (the backend, the memory policy), so they are not registered here.
PIPELINE: tuple[str, ...] = (
    *ALGEBRAIC_PASSES,
    "plan",
    "route",
    "fuse",
    "pushdown",
    "rowfuse",
    "schedule",
    "buffers",
)

ENV_DISABLE = "GRADC_DISABLE_PASSES"


@dataclass(frozen=True)
class PassRecord:
    """What one pass did: node counts before and after, and the time it took."""

    name: str
    nodes_before: int
    nodes_after: int
    seconds: float
    changed: bool


def register_pass(name: str) -> Callable[[Pass], Pass]:
    """Decorator: register `fn` as the pass called `name` (names are unique)."""

    def deco(fn: Pass) -> Pass:
        if name in PASSES:
            raise ValueError(f"pass {name!r} registered twice")
        PASSES[name] = fn
        return fn

    return deco


def known_passes() -> tuple[str, ...]:
    """Every pass name `run_passes` and `disable` accept, sorted."""
    return tuple(sorted(set(PASSES) | set(PIPELINE)))


def _check_names(names: Iterable[str], what: str) -> None:
    known = known_passes()
    for name in names:
        if name not in known:
            raise ValueError(f"unknown pass {name!r} in {what}; known passes: {', '.join(known)}")


def get_pass(name: str) -> Pass:
    """The registered pass `name` (ValueError listing the known passes otherwise)."""
    if name not in PASSES:
        _check_names([name], "get_pass")
        raise ValueError(f"pass {name!r} runs only in the pipeline (compiler.pipeline)")
    return PASSES[name]


def _as_names(arg: str | Iterable[str] | None) -> tuple[str, ...]:
    if arg is None:
        return ()
    if isinstance(arg, str):
        return (arg,)
    return tuple(arg)


def run_passes(
    graph: Graph,
    names: Sequence[str] = DEFAULT_PASSES,
    disable: Collection[str] = (),
    check: bool = False,
    print_after: str | Iterable[str] | None = None,
    report: list[PassRecord] | None = None,
    keep: Callable[[str, Graph], None] | None = None,
) -> Graph:
    """Run the passes `names` in order, skipping `disable`; return the final graph.

    `check` verifies the graph after every pass (tests always set it); `print_after` names
    passes whose result is printed to stdout; `report`, a list, receives one PassRecord per
    pass run; `keep(name, graph)` is called with each pass's result. Every name is checked
    first: an unknown one is a ValueError listing the known passes, before any pass runs.
    """
    names = _as_names(names)
    disable = _as_names(disable)
    shown = _as_names(print_after)
    _check_names(names, "names")
    _check_names(disable, "disable")
    _check_names(shown, "print_after")
    for name in names:
        if name in disable:
            continue
        if name not in PASSES:
            raise ValueError(f"pass {name!r} runs only in the pipeline (compiler.pipeline)")
        before = len(graph.nodes)
        t0 = time.perf_counter()
        new = PASSES[name](graph)
        seconds = time.perf_counter() - t0
        if check:
            try:
                verify(new)
            except VerifyError as exc:
                raise VerifyError(f"after pass {name!r}: {exc}") from exc
        if report is not None:
            report.append(PassRecord(name, before, len(new.nodes), seconds, new is not graph))
        if name in shown:
            print(f"# after {name}\n{new}")
        if keep is not None:
            keep(name, new)
        graph = new
    return graph


def disabled_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Pass names listed in GRADC_DISABLE_PASSES (`cse,fuse`); ValueError for unknown names."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_DISABLE, "")
    names = tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
    _check_names(names, ENV_DISABLE)
    return names


def format_report(report: Sequence[PassRecord]) -> str:
    """A small table of a run's PassRecords (for the CLI and benchmarks)."""
    lines = [f"{'pass':<10} {'before':>6} {'after':>6} {'ms':>8}"]
    for r in report:
        lines.append(f"{r.name:<10} {r.nodes_before:>6} {r.nodes_after:>6} {r.seconds * 1e3:>8.2f}")
    return "\n".join(lines)
