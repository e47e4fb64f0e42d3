"""`gradc ir`: the graph (or generated source) of one pipeline stage, in one output format."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from compiler.api import _Transform
from compiler.cli.target import Target, UsageError
from compiler.ir.graph import Graph
from compiler.ir.nx import to_dot
from compiler.ir.printer import format_graph
from compiler.logging_setup import slow
from compiler.pipeline import lower
from compiler.transforms import hessian, jacobian

log = logging.getLogger("gradc")

STAGES = ("traced", "grad", "passes", "plan", "kernel")
MODES = ("value_and_grad", "jit", "vjp", "jacobian", "hessian")
# modes compiled as a `jit` of a transformed function: their stages are jit's
_JIT_OF = {"jacobian": jacobian, "hessian": hessian}
FORMATS = ("text", "dot", "json", "svg", "png")

# the codegen stage name of each compiled graph, per mode (as compiler.api passes them)
_CODEGEN_STAGE = {
    "passes": "value_and_grad",
    "jit": "jit",
    "forward": "vjp_forward",
    "backward": "vjp_backward",
}


@dataclass
class Section:
    """One named piece of output: a graph, or text (a plan or generated source)."""

    title: str
    graph: Graph | None = None
    text: str | None = None


def transform(target: Target, mode: str, disable: Sequence[str], backend: str) -> _Transform:
    """The API transform a command line describes (`vjp` as a reusable transform)."""
    if mode not in MODES:
        raise UsageError(f"unknown --mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode in _JIT_OF:  # the traced graph's first lines say which mode jacobian chose
        fun = _JIT_OF[mode](target.fun, target.argnums, backend=backend, disable=disable)
        return _Transform(fun, "jit", 0, False, backend, tuple(disable))
    return _Transform(target.fun, mode, target.argnums, False, backend, tuple(disable))


def stage_sections(
    target: Target,
    stage: str,
    mode: str = "value_and_grad",
    disable: Sequence[str] = (),
    print_after: str | None = None,
) -> list[Section]:
    """The sections `gradc ir` prints for `stage` (several for vjp: forward and backward)."""
    if stage not in STAGES:
        raise UsageError(f"unknown --stage {stage!r}; choose one of {', '.join(STAGES)}")
    if print_after is not None and stage != "passes":
        raise UsageError("--print-after needs --stage passes")
    graphs = transform(target, mode, disable, "interpret").stages(*target.args)
    mode = "jit" if mode in _JIT_OF else mode
    if stage == "traced":
        return [Section("traced", graphs["traced"])]
    if stage == "grad":
        if "grad" not in graphs:
            raise UsageError("--mode jit has no gradient stage; use --stage traced or passes")
        return [Section("grad", graphs["grad"])]
    if print_after is not None:
        return [
            Section(f"after {print_after}", g)
            for g in _after_pass(graphs, print_after, disable, mode)
        ]
    optimized = _optimized(graphs, mode)
    if stage == "passes":
        return [Section(name, g) for name, g in optimized]
    if stage == "plan":
        return [Section(f"plan of {mode}", text=_plan_text(graphs))]
    return [Section(f"kernel for {name}", text=_kernel_source(g, name)) for name, g in optimized]


def _optimized(graphs: dict, mode: str) -> list[tuple[str, Graph]]:
    """The graphs codegen compiles: optimized, planned (gradients) and fused."""
    if mode == "vjp":
        return [("forward", graphs["forward"]), ("backward", graphs["backward"])]
    if mode == "jit":
        return [("jit", graphs["passes"])]
    return [("passes", graphs["final"])]


def _after_pass(graphs: dict, name: str, disable: Sequence[str], mode: str) -> list[Graph]:
    """Each pre-pass graph run through the default passes up to and including `name`."""
    try:
        from compiler.passes import DEFAULT_PASSES, run_passes
    except ImportError as exc:
        raise UsageError(
            f"--print-after needs compiler.passes, which is unavailable: {exc}"
        ) from None
    if name not in DEFAULT_PASSES:
        raise UsageError(
            f"--print-after {name!r}: not a default pass ({', '.join(DEFAULT_PASSES)})"
        )
    if name in disable:
        raise UsageError(f"--print-after {name!r}: that pass is disabled")
    prefix = DEFAULT_PASSES[: DEFAULT_PASSES.index(name) + 1]
    if mode == "jit":
        pre = [graphs["traced"]]
    elif mode == "vjp":
        pre = [graphs["forward"], graphs["backward"]]
    else:
        pre = [graphs["grad"]]
    return [run_passes(g, names=prefix, disable=tuple(disable)) for g in pre]


def _plan_text(graphs: dict) -> str:
    from compiler.plan import format_plan, plan_graph

    plan = graphs.get("plan")
    if plan is None:  # jit: liveness and buffer slots of the forward graph alone
        plan = plan_graph(graphs["passes"])
    return format_plan(plan)


def _kernel_source(graph: Graph, name: str) -> str:
    try:
        from compiler.codegen import compile_graph  # noqa: F401  (is the backend there?)
    except ImportError as exc:
        raise UsageError(
            f"--stage kernel needs the Numba backend (compiler.codegen), which is unavailable: "
            f"{exc}"
        ) from None
    stage = _CODEGEN_STAGE[name]
    with slow(f"codegen {stage}: {len(graph.nodes)} nodes"):
        fn = lower(graph, "numba", stage)  # the same path as the API's, planning included
    source = getattr(fn, "source", None)
    if source is None:
        raise UsageError("--stage kernel: the compiled function has no .source")
    return source


# -- output formats ------------------------------------------------------------------------------
def render(sections: list[Section], fmt: str, locs: bool = False) -> bytes:
    """The bytes to write for `sections` in format `fmt`."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    graphs = [s.graph for s in sections]
    if fmt != "text" and any(g is None for g in graphs):
        raise UsageError(f"--format {fmt} needs a graph stage; the plan and kernel are text")
    if fmt == "text":
        return _text(sections, locs).encode()
    if fmt == "json":
        if len(sections) == 1:
            data = graphs[0].to_json()
        else:
            data = {s.title: s.graph.to_json() for s in sections}
        return (json.dumps(data, indent=1) + "\n").encode()
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
