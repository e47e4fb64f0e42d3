"""The compile pipeline: one explicit list of named passes from a traced graph to kernels.

    traced --autodiff--> grad --simplify, fold, batch, cse, dce--> passes --plan--> plan
        --route, fuse, pushdown, rowfuse, schedule, buffers--> (graph, buffer plan)
        --codegen--> kernel

`PIPELINE` (compiler.passes.manager) names every pass in order. Each is a pure function of its
input; each can be printed (`gradc ir --print-after NAME`, through the `keep` hook) and
switched off (`Options.disable`, `--disable NAME`, GRADC_DISABLE_PASSES). The last two stages
give codegen exactly what it renders: `Lowered.graph` and its buffer plan `Lowered.buffers`.
The lowering decisions (what is routed, what fits one loop nest, whether a graph uses an
arena) are the Numba backend's; `backend="interpret"` runs the same lowered graph.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optree

from compiler.arguments import check_scalar_output, grad_layout
from compiler.autodiff import vjp_graph
from compiler.autodiff.custom import expand_custom
from compiler.autodiff.inline import check_aux, differentiable_leaves
from compiler.codegen import compile_graph, compile_numpy
from compiler.codegen.helper import prefill
from compiler.codegen.prepare import Keep, Lowered, lower_passes
from compiler.codegen.routing import Routing, current_routing, queue_wanted
from compiler.codegen.warmup import values_matter
from compiler.interpret import run_graph
from compiler.ir.graph import Graph
from compiler.logging_setup import slow
from compiler.passes import ALGEBRAIC_PASSES, PIPELINE, known_passes, run_passes
from compiler.plan import Policy, plan, split_plan
from compiler.stage_cache import cached_stages, gc_paused
from compiler.stages import Stages
from compiler.trace import STATIC, trace_tree
from compiler.trace.loops import loop_memory
from runtime import background, yielding
from runtime.tier import TieredStage, sample_of, zeros_sample

log = logging.getLogger("gradc")

BACKENDS = ("numba", "interpret")
LOWERING = ("route", "fuse", "pushdown", "rowfuse", "schedule", "buffers")
# when a numba-backend stage gets its compiled code (docs/tiers.md): "background" answers on
# the NumPy tier while a background thread compiles, "eager" compiles before the first call
# returns, "never" stays on the NumPy tier
COMPILE_MODES = ("background", "eager", "never")
COMPILE_ENV_VAR = "GRADC_COMPILE"
COMPILE_IN_ENV_VAR = "GRADC_COMPILE_IN"  # "thread" or "process" (docs/tiers.md)


def default_backend() -> str:
    """The backend when none is named: GRADC_BACKEND, else numba."""
    return os.environ.get("GRADC_BACKEND", "numba")


def default_compile() -> str:
    """The compile mode when a transformation names none: GRADC_COMPILE, else background."""
    value = os.environ.get(COMPILE_ENV_VAR, "").strip().lower()
    if value and value not in COMPILE_MODES:
        raise ValueError(
            f"{COMPILE_ENV_VAR}={value!r} is not a compile mode; choose one of {COMPILE_MODES}"
        )
    return value or "background"


@dataclass(frozen=True)
class Options:
    """Everything a transformation's compile depends on besides the function and arguments."""

    backend: str = "numba"
    disable: tuple[str, ...] = ()  # pass names (see PIPELINE) to skip
    memory: str | None = None  # "sqrt": automatic checkpoint segments
    memory_budget: int | None = None  # bytes: least recomputation whose planned peak fits
    compile: str | None = None  # COMPILE_MODES; None: `default_compile()` (GRADC_COMPILE)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {BACKENDS}")
        if self.compile is None:
            object.__setattr__(self, "compile", default_compile())
        elif self.compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile={self.compile!r}; choose one of {COMPILE_MODES}")
        known = known_passes()
        for name in self.disable:
            if name not in known:
                raise ValueError(
                    f"unknown pass {name!r} in disable; known passes: {', '.join(known)}"
                )
        self.policy()  # validates memory and memory_budget

    def policy(self) -> Policy:
        """The planner's policy: `disable=("plan",)` stores every value the backward reads."""
        if "plan" in self.disable:
            return Policy(recompute=False, checkpoints=False)
        return Policy(memory=self.memory, memory_budget=self.memory_budget)


def optimize(graph: Graph, disable: Sequence[str] = (), keep: Keep | None = None) -> Graph:
    """The algebraic passes (minus `disable`)."""
    t0 = time.perf_counter()
    graph = expand_custom(graph)  # custom-rule calls become their bodies: passes see primitives
    out = run_passes(graph, ALGEBRAIC_PASSES, disable=tuple(disable), keep=keep)
    log.info(
        "passes: %d -> %d nodes in %.3f s",
        len(graph.nodes),
        len(out.nodes),
        time.perf_counter() - t0,
    )
    return out


def grad_stages(
    traced: Graph,
    joint: Graph,
    opts: Options,
    keep: Keep | None = None,
    routing: Routing | None = None,
) -> Stages:
    """value_and_grad: passes, plan, then lowering of the planned joint graph (`routing`: the
    route pass's decisions, default the current ones)."""
    pre = optimize(joint, opts.disable, keep)
    p = plan(pre, opts.policy())
    if keep is not None:
        keep("plan", p.graph)
    low = lower_passes(p.graph, "value_and_grad", opts.disable, keep, routing)
    return Stages(traced, joint, pre, p, (low,))


def vjp_stages(
    traced: Graph,
    joint: Graph,
    n_primal_in: int,
    n_out: int,
    opts: Options,
    keep: Keep | None = None,
    routing: Routing | None = None,
) -> Stages:
    """vjp: passes and plan, then a forward stage (outputs + planned residuals) and a backward
    stage (residuals + cotangents -> gradients), each lowered on its own."""
    pre = optimize(joint, opts.disable, keep)
    p = plan(pre, opts.policy())
    if keep is not None:
        keep("plan", p.graph)
    split = split_plan(p, n_primal_in, n_out)
    fwd = lower_passes(split.forward, "vjp_forward", opts.disable, keep, routing)
    bwd = lower_passes(split.backward, "vjp_backward", opts.disable, keep, routing)
    return Stages(traced, joint, pre, p, (fwd, bwd), split.n_residuals)


def jit_stages(
    traced: Graph, opts: Options, keep: Keep | None = None, routing: Routing | None = None
) -> Stages:
    """jit: passes, then lowering (a forward graph has nothing to store or recompute)."""
    pre = optimize(traced, opts.disable, keep)
    low = lower_passes(pre, "jit", opts.disable, keep, routing)
    return Stages(traced, None, pre, None, (low,))


def lower(
    low: Lowered, backend: str, compile: str = "eager", *, eager: bool = True, name: str = ""
) -> Callable[..., list]:
    """A callable `fn(*flat_inputs) -> list of outputs` running `low` on `backend`.

    On numba, `compile` (COMPILE_MODES) picks the tier: "never" the NumPy tier, "eager" the
    compiled stage (every small loop on its kernel when `eager`), "background" a
    `TieredStage` that starts on the NumPy tier. `name` says whose stage it is in logs."""
    if backend == "interpret":
        graph = low.graph

        def run(*flat: Any) -> list:
            return run_graph(graph, flat)

        run.graph = graph
        return run
    what = name if name.startswith(low.name + "(") else f"{name} {low.name}".strip()
    if compile == "never":
        return _numpy_tier(low, what)
    if compile == "background":
        nodes = low.graph.nodes
        detail = f"{len(nodes)} nodes, {sum(n.op == 'fused' for n in nodes)} fused loops"
        yielding.compile_share()  # a bad GRADC_COMPILE_SHARE fails here, on the caller's call
        build = functools.partial(_background_build, low, what, compile_in() == "process")
        sample = sample_of if values_matter(low.graph) else zeros_sample
        return TieredStage(what, _numpy_tier(low, what, True), build, detail, sample)
    return _compiled_tier(low, what, eager)


def compile_in() -> str:
    """Where a background compile runs: GRADC_COMPILE_IN, "thread" (default) or "process"."""
    value = os.environ.get(COMPILE_IN_ENV_VAR, "").strip().lower() or "thread"
    if value not in ("thread", "process"):
        raise ValueError(
            f"{COMPILE_IN_ENV_VAR}={value!r}: choose 'thread' (the default) or 'process'"
        )
    return value


def _background_build(low: Lowered, what: str, helper: bool, sample: tuple) -> Callable:
    # runs in the background compile thread (runtime/background.py); with a helper process,
    # Numba compiles there and this thread only loads the result from the disk cache. A
    # routing calibration the compile found missing is queued here, behind this stage's job,
    # so it never delays the switch from the NumPy tier (compiler/codegen/routing.py)
    queue_wanted()
    if helper:
        t0 = time.perf_counter()
        ok = prefill(low, sample)
        log.info(
            "compile helper %s: %s in %.2f s",
            what,
            "compiled into the disk cache" if ok else "failed",
            time.perf_counter() - t0,
        )
    return _compiled_tier(low, what, True)


def _numpy_tier(low: Lowered, what: str, tiered: bool = False) -> Callable[..., list]:
    t0 = time.perf_counter()
    # a tiered stage's render is stored for later processes by the background thread
    defer = background.before_next_job if tiered else None
    fn = compile_numpy(low.graph, low.buffers, low.name, key=low.key, defer=defer)
    log.info(
        "numpy tier %s: %d nodes in %.3f s", what, len(low.graph.nodes), time.perf_counter() - t0
    )
    return fn


def _compiled_tier(low: Lowered, what: str, eager: bool) -> Callable[..., list]:
    t0 = time.perf_counter()
    with slow(f"compiling the {what} stage ({len(low.graph.nodes)} nodes)"):
        fn = compile_graph(low.graph, low.buffers, low.name, eager=eager, key=low.key)
    log.info(
        "codegen %s: %d nodes, %d kernels in %.3f s",
        what,
        len(low.graph.nodes),
        fn.kernel_count,
        time.perf_counter() - t0,
    )
    return fn


@dataclass(frozen=True)
class Transform:
    """Which transformation to compile: grad, value_and_grad, vjp or jit."""

    mode: str
    argnums: tuple[int, ...] = (0,)
    has_aux: bool = False


@dataclass(frozen=True)
class Signature:
    """The example arguments a compile specialises on, and their flattened leaves."""

    args: tuple
    kwargs: dict
    leaves: list


@dataclass
class Compiled:
    """One signature's compile: its stages, its callables, and how its flat inputs and
    outputs map to the user's pytrees."""

    stages: Stages | None  # None only for a transformation inlined into an outer trace
    dyn: list[int]  # positions (among all leaves) of the graph inputs
    out_tree: Any  # the function's output pytree
    n_out: int  # graph outputs of the function itself (then gradients or residuals)
    grad_trees: list = field(default_factory=list)  # one pytree per differentiated argument
    grad_kinds: list = field(default_factory=list)  # per gradient leaf: float, generic, array
    n_res: int = 0  # vjp: residuals the forward stage returns after the outputs
    fn: Callable | None = None  # the (first) compiled stage
    bwd: Callable | None = None  # vjp: the backward stage
    single: bool = False  # argnums was an int: return one gradient, not a tuple
    draws: tuple = ()  # random draws inside the function: extra inputs sampled per call
    fast: Callable | None = None  # set by the API's dispatcher (runtime.dispatch)
    run: Callable | None = None  # set by the API's dispatcher


def compile(
    fun: Callable,
    signature: Signature,
    transform: Transform,
    options: Options,
    *,
    keep: Keep | None = None,
    build: bool = True,
) -> Compiled:
    """Trace `fun` on the signature, run the pipeline for the transformation, and (unless
    `build=False`: stages only, nothing compiled) lower each stage on the backend."""
    # the collector paused throughout: tracing, the passes and codegen allocate many small
    # objects and free them by reference counting, and the collections they trigger were
    # ~20% of a cold first call's compile (deep: 0.171 -> 0.139 s of CPU)
    with gc_paused():
        return _compile(fun, signature, transform, options, keep, build)


def _compile(
    fun: Callable,
    signature: Signature,
    transform: Transform,
    options: Options,
    keep: Keep | None,
    build: bool,
) -> Compiled:
    mode, has_aux = transform.mode, transform.has_aux
    args, kwargs, leaves = signature.args, signature.kwargs, signature.leaves
    # memory="sqrt" also checkpoints the scans traced inside (compiler/trace/loops.py)
    with loop_memory(options.memory):
        tr = trace_tree(check_aux(fun, has_aux, mode), args, kwargs)
    if tr.captured:
        raise RuntimeError("internal: captured values outside a trace")
    g = tr.graph
    dyn = [i for i, k in enumerate(tr.kinds) if k != STATIC]
    c = Compiled(None, dyn, tr.out_tree, len(g.outputs), draws=tr.draws)
    # one snapshot of the routing decisions for every stage of this compile, and in the stage
    # cache's key: a calibration that lands later never meets stages lowered under another
    # routing (a missing calibration is queued on the background thread when Numba compiles)
    numba = build and options.backend == "numba" and options.compile != "never"
    rt = current_routing(background=numba)
    if numba and options.compile == "eager":
        queue_wanted()  # (background: queued by the stage's compile job, see _background_build)
    # a tiered stage stores its stages for later processes from the background thread,
    # after its first call (a stage that is never called stores them with the next job)
    tiered = build and options.backend == "numba" and options.compile == "background"
    defer = background.before_next_job if tiered else None
    if mode == "jit":
        c.stages = cached_stages(
            g, ("jit", rt.key), options, keep, lambda: jit_stages(g, options, keep, rt), defer
        )
    else:
        wrt = differentiable_leaves(fun, args, transform.argnums, tr.kinds, mode)
        wrt_inputs = [dyn.index(i) for i in wrt]
        c.grad_trees, c.grad_kinds = grad_layout(transform.argnums, args, wrt, tr.kinds, leaves)
        if mode == "vjp":
            n_in, n_out = len(g.inputs), len(g.outputs)
            n_primal = n_out
            if has_aux:
                first = optree.tree_unflatten(tr.out_tree, list(range(n_out)))[0]
                n_primal = optree.tree_structure(first, none_is_leaf=False).num_leaves

            def vjp_build() -> Stages:
                cts = tuple(range(n_primal))
                joint = vjp_graph(g, wrt_inputs, seeds="input", ct_outputs=cts)
                return vjp_stages(g, joint, n_in, n_out, options, keep, rt)

            what = ("vjp", tuple(wrt_inputs), n_primal, rt.key)
            c.stages = cached_stages(g, what, options, keep, vjp_build, defer)
            c.n_res = c.stages.n_residuals
        else:
            check_scalar_output(mode, has_aux, tr)

            def grad_build() -> Stages:
                joint = vjp_graph(g, wrt_inputs, seeds="ones", ct_outputs=(0,))
                return grad_stages(g, joint, options, keep, rt)

            what = ("grad", tuple(wrt_inputs), rt.key)
            c.stages = cached_stages(g, what, options, keep, grad_build, defer)
    if build:
        lowered = c.stages.lowered
        name = f"{mode}({getattr(fun, '__name__', 'function')})"
        c.fn = lower(lowered[0], options.backend, options.compile, name=name)
        if len(lowered) > 1:
            c.bwd = lower(lowered[1], options.backend, options.compile, name=name)
    return c


def lower_graph(
    graph: Graph,
    stage: str = "test",
    disable: Sequence[str] = (),
    *,
    eager: bool = False,
    compile: str = "eager",
) -> Callable[..., list]:
    """`graph` through the lowering passes, then built on `compile`'s tier (tools and tests;
    "eager": compiled by Numba, small loops on NumPy calls until hot unless `eager`)."""
    return lower(lower_passes(graph, stage, disable), "numba", compile, eager=eager)


__all__ = [
    "BACKENDS",
    "COMPILE_MODES",
    "Compiled",
    "Signature",
    "Transform",
    "compile",
    "LOWERING",
    "PIPELINE",
    "Lowered",
    "Options",
    "Stages",
    "default_backend",
    "default_compile",
    "grad_stages",
    "jit_stages",
    "lower",
    "lower_graph",
    "lower_passes",
    "optimize",
    "vjp_stages",
]
