"""`gradc ir`: the graph (or generated source, or plan) of one pipeline stage, in one format.

Everything printed comes from one run of the pipeline (`compiler.pipeline`) with the Numba
backend's lowering decisions, so `--stage kernel` compiles exactly the graph and buffer plan
that `--print-after schedule` and `--stage plan` show.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from compiler.api import _Transform
from compiler.cli.target import Target, UsageError
from compiler.ir.graph import Graph
from compiler.ir.nx import to_dot
from compiler.ir.printer import format_graph
from compiler.logging_setup import slow
from compiler.passes import PIPELINE
from compiler.pipeline import Stages, lower
from compiler.plan import format_plan, plan_json
from compiler.transforms import hessian, jacobian

log = logging.getLogger("gradc")

STAGES = ("traced", "grad", "passes", "plan", "kernel")
MODES = ("value_and_grad", "jit", "vjp", "jacobian", "hessian")
# modes compiled as a `jit` of a transformed function: their stages are jit's
_JIT_OF = {"jacobian": jacobian, "hessian": hessian}
FORMATS = ("text", "dot", "json", "svg", "png")
# the section title of each compiled graph (its codegen stage name) in `--stage passes`
_TITLE = {
    "value_and_grad": "passes",
    "jit": "jit",
    "vjp_forward": "forward",
    "vjp_backward": "backward",
}


@dataclass
class Section:
    """One named piece of output: a graph, or text with its JSON form (plan, kernel)."""

    title: str
    graph: Graph | None = None
    text: str | None = None
    data: dict[str, Any] | None = None


def transform(
    target: Target,
    mode: str,
    disable: Sequence[str],
    backend: str,
    memory: str | None = None,
    compile: str | None = None,
) -> _Transform:
    """The API transform a command line describes (`vjp` as a reusable transform)."""
    if mode not in MODES:
        raise UsageError(f"unknown --mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode in _JIT_OF:  # the traced graph's first lines say which mode jacobian chose
        fun = _JIT_OF[mode](
            target.fun, target.argnums, backend=backend, disable=disable, compile=compile
        )
        return _Transform(fun, "jit", 0, False, backend, tuple(disable), compile=compile)
    try:
        return _Transform(
            target.fun,
            mode,
            target.argnums,
            False,
            backend,
            tuple(disable),
            memory=memory,
            compile=compile,
        )
    except ValueError as exc:  # an unknown --disable name
        raise UsageError(str(exc)) from None


def stage_sections(
    target: Target,
    stage: str,
    mode: str = "value_and_grad",
    disable: Sequence[str] = (),
    print_after: str | None = None,
    memory: str | None = None,
) -> list[Section]:
    """The sections `gradc ir` prints for `stage`, or for `--print-after NAME` the graph
    right after that pass (several for vjp: forward and backward)."""
    if stage not in STAGES:
        raise UsageError(f"unknown --stage {stage!r}; choose one of {', '.join(STAGES)}")
    if print_after is not None:
        if print_after not in PIPELINE:
            raise UsageError(
                f"--print-after {print_after!r}: not a pipeline pass ({', '.join(PIPELINE)})"
            )
        if print_after in disable:
            raise UsageError(f"--print-after {print_after!r}: that pass is disabled")
    kept: list[tuple[str, Graph]] = []

    def keep(name: str, graph: Graph) -> None:
        if name == print_after:
            kept.append((name, graph))

    t = transform(target, mode, disable, "numba", memory)
    st = t.build_stages(*target.args, keep=keep)
    mode = "jit" if mode in _JIT_OF else mode
    if print_after is not None:
        return _after(st, print_after, kept, mode)
    if stage == "traced":
        return [Section("traced", st.traced)]
    if stage == "grad":
        if st.grad is None:
            raise UsageError("--mode jit has no gradient stage; use --stage traced or passes")
        return [Section("grad", st.grad)]
    if stage == "passes":  # the graphs codegen compiles: optimized, planned, lowered
        return [Section(_TITLE[low.name], low.graph) for low in st.lowered]
    compiled = [(low.name, low.graph, low.buffers) for low in st.lowered]
    if stage == "plan":
        return [
            Section(
                f"plan of {mode}",
                text=format_plan(st.plan, compiled),
                data=plan_json(st.plan, compiled),
            )
        ]
    return _kernels(st)


def _after(st: Stages, name: str, kept: list[tuple[str, Graph]], mode: str) -> list[Section]:
    if name == "buffers":  # the plan of the scheduled graph: shown as the plan stage does
        compiled = [(low.name, low.graph, low.buffers) for low in st.lowered]
        return [
            Section(
                f"after buffers ({low.name})",
                text=format_plan(None, [c]),
                data=plan_json(None, [c]),
            )
            for low, c in zip(st.lowered, compiled)
        ]
    if not kept:
        raise UsageError(f"--print-after {name!r}: that pass does not run in --mode {mode}")
    lowered = [low.name for low in st.lowered]
    titles = [f"after {name} ({n})" for n in lowered] if len(kept) == len(lowered) > 1 else None
    return [Section(titles[i] if titles else f"after {name}", g) for i, (_, g) in enumerate(kept)]


def _kernels(st: Stages) -> list[Section]:
    out = []
    for low in st.lowered:
        with slow(f"codegen {low.name}: {len(low.graph.nodes)} nodes"):
            fn = lower(low, "numba")  # the graph and buffer plan the stages above show
        arena = 0 if fn.arena is None else fn.arena.nbytes
        data = {
            "name": low.name,
            "driver": fn.driver_kind,
            "kernels": fn.kernel_count,
            "arena_bytes": arena,
            "source": fn.source,
        }
        out.append(Section(f"kernel for {low.name}", text=fn.source, data=data))
    return out


# -- output formats ------------------------------------------------------------------------------
def render(sections: list[Section], fmt: str, locs: bool = False) -> bytes:
    """The bytes to write for `sections` in format `fmt`."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    graphs = [s.graph for s in sections]
    if fmt == "text":
        return _text(sections, locs).encode()
    if fmt == "json":
        items = [s.graph.to_json() if s.graph is not None else s.data for s in sections]
        data = items[0] if len(items) == 1 else {s.title: d for s, d in zip(sections, items)}
        return (json.dumps(data, indent=1) + "\n").encode()
    if any(g is None for g in graphs):
        raise UsageError(f"--format {fmt} needs a graph stage; the plan and kernel are text")
    if len(sections) > 1 and fmt in ("svg", "png"):
        raise UsageError(
            f"--format {fmt} draws one graph; this stage has "
            f"{len(sections)} ({', '.join(s.title for s in sections)}): use dot"
        )
    dot = "\n".join(to_dot(g) for g in graphs) + "\n"
    if fmt == "dot":
        return dot.encode()
    return _graphviz(dot, fmt)


def _text(sections: list[Section], locs: bool) -> str:
    parts = []
    for s in sections:
        body = s.text if s.graph is None else format_graph(s.graph, locs=locs)
        if locs:
            body = body.replace(os.getcwd() + os.sep, "")
        parts.append(f"# {s.title}\n{body.rstrip()}" if len(sections) > 1 else body.rstrip())
    return "\n\n".join(parts) + "\n"


def _graphviz(dot: str, fmt: str) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError(
            f"--format {fmt} needs the Graphviz `dot` program, which is not on PATH. Install "
            "Graphviz (apt install graphviz, brew install graphviz, conda install graphviz), "
            "or write DOT with --format dot and render it elsewhere"
        )
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True)
    if proc.returncode != 0:
        raise UsageError(f"dot -T{fmt} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout
