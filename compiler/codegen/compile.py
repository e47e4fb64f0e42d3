"""`compile_graph(graph, buffers)`: render a stage's module, load it through the disk cache,
bind its params.

Codegen only renders: it compiles exactly the graph and buffer plan it is given (the pipeline's
`schedule` and `buffers` stages, `compiler.pipeline`) and edits neither.

The module text depends only on the graph's *structure* (ops, ranks, dtypes, broadcast
patterns): sizes and constant values are bound as arguments. So a new batch size maps to the
same module, which `runtime.cache.load_module` returns from memory, and whose kernels are
already compiled for the same argument types: nothing new compiles.
"""

from __future__ import annotations

import functools
import linecache
import os
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compiler.codegen.arena import StageBuffers
from compiler.codegen.driver import PyDriver
from compiler.codegen.njit_driver import njit_generate, njit_rule, tiers
from compiler.codegen.rendered import load_rendered, render_key, store_rendered
from compiler.codegen.scalar import ScalarDriver, scalar_eligible
from compiler.codegen.source import FASTMATH, digest
from compiler.interpret import run_graph
from compiler.ir.graph import Graph
from compiler.plan.buffers import Buffers
from runtime.version import VERSION

# Parallel kernels run on Numba's OpenMP pool. By default its idle threads spin for a while
# after each parallel loop, which on 2 cores took the core that the next BLAS call or ufunc
# needed: the mlp (float32) gradient went 21 -> 34 ms with spinning, 22 ms passive. Only
# applies if the user has not chosen, and before the OpenMP runtime starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_lock = threading.Lock()
# One dispatcher per kernel name in this process: a kernel that two stage modules both define
# (the same source, hence the same name) is compiled once and shared.
_KERNELS: dict[str, Any] = {}
_DRIVERS: dict[str, Any] = {}  # njit drivers, by module name
_MODULES: set[str] = set()


class CompiledStage(functools.partial):
    """The compiled stage: call it with one array or scalar per graph input.

    Returns a list with one fresh ndarray per graph output. A `functools.partial` (called in
    C) over the generated driver with the stage's sizes and constants bound, so calling it
    costs no extra Python frame.
    """

    source: str
    kernel_count: int
    driver_kind: str
    stage: str
    module: Any
    graph: Graph  # the graph the driver runs (exactly the one it was given)
    buffers: Buffers | None  # its buffer plan; `buffers.peak_bytes` is the arena's size
    arena: StageBuffers | None  # this stage's buffer sets (None: no arena values)

    def __repr__(self) -> str:
        return (
            f"<CompiledStage {self.stage!r}: {self.driver_kind} driver, "
            f"{self.kernel_count} kernels, module {self.module.__name__}>"
        )


@dataclass(frozen=True)
class CompileStats:
    """Process-wide counts. `compiled`: kernel specialisations Numba compiled in this process
    (cache misses); `cache_hits`: specialisations loaded from Numba's disk cache."""

    modules: int
    kernels: int
    compiled: int
    cache_hits: int


def compile_stats() -> CompileStats:
    """Counters over every kernel and njit driver loaded in this process."""
    compiled = hits = 0
    with _lock:
        disps = list(_KERNELS.values()) + list(_DRIVERS.values())
        modules, kernels = len(_MODULES), len(_KERNELS)
    for d in disps:
        stats = getattr(d, "stats", None)
        if stats is None:  # NUMBA_DISABLE_JIT: plain functions
            continue
        h = sum(stats.cache_hits.values())
        hits += h
        compiled += len(d.overloads) - h
    return CompileStats(modules, kernels, compiled, hits)


@dataclass
class Generated:
    """What `generate` returns: the module text and what the stage binds to it."""

    source: str
    params: list[object]
    kind: str  # "njit" (all-scalar), "njit-array" (njit_driver.py) or "python"
    count: int  # njit functions in the module
    graph: Graph  # the graph the driver runs (the one given)
    buffers: Buffers | None = None  # its buffer plan (Python driver; the one given)
    layout: tuple = ()  # (slot, shape) per arena view the driver unpacks
    small_sites: tuple = ()  # (param index, kernel name, ops) per small loop


def uses_arena(graph: Graph) -> bool:
    """Whether the stage for `graph` keeps intermediates in an arena (a buffer plan): every
    graph but an all-scalar one, whose njit driver keeps its values in registers."""
    return not scalar_eligible(graph)


def generate(
    graph: Graph, buffers: Buffers | None, stage: str, tier: str = "lazy", driver: str = "auto"
) -> Generated:
    """The module source for `graph` following the buffer plan `buffers` (None exactly when
    the graph uses no arena, see `uses_arena`), and the params the stage binds.

    `tier` is the Python driver's (`PyDriver`): "numpy" gives a module that imports no Numba
    (the NumPy tier, docs/tiers.md). `driver`: "auto" compiles the driver too where
    `njit_rule` says so and the graph's ops allow it (never on the NumPy tier); "python"
    never does."""
    kernels: dict[str, str] = {}
    numpy = tier == "numpy"
    imports = ["import math", "", "import numpy as np", ""]
    if not numpy:
        imports.insert(2, "import numba")
    bufs = None
    layout: tuple = ()
    small: tuple = ()
    if not uses_arena(graph):
        if buffers is not None:
            raise ValueError("an all-scalar graph compiles without a buffer plan")
        if numpy:
            raise ValueError("an all-scalar graph has no NumPy-tier module (compile_numpy)")
        gen = ScalarDriver(graph)
        driver_src = gen.generate()
        kind = "njit"
    else:
        if buffers is None:
            raise ValueError("this graph needs its buffer plan (pipeline stage `buffers`)")
        bufs = buffers
        pick = driver == "auto" and not numpy and njit_rule(graph)
        gen = njit_generate(graph, kernels, bufs) if pick else None
        if gen is not None:  # small arrays: the driver compiled too (njit_driver.py)
            driver_src, kind = gen.driver_src, "njit-array"
        else:
            gen = PyDriver(graph, kernels, bufs, tier)
            driver_src, kind = gen.generate(), "numpy" if numpy else "python"
        layout = tuple(gen.layout)
        small = tuple(gen.small_sites)
    count = len(kernels) + (kind not in ("python", "numpy"))
    parts = ["\n".join(imports), ""]
    if not numpy:
        parts += [
            f"_FASTMATH = {FASTMATH}",
            "",
        ]
    for text in kernels.values():
        parts += ["", text]
    parts += ["", driver_src]
    body = "\n".join(parts)
    header = (
        f"# gradc {VERSION} generated module: stage {stage}, {kind} driver, "
        f"{count} njit functions\n"
        f"# structure {digest(body, 20)}: sizes and constants are arguments (P), so every graph\n"
        "# with this structure (ops, ranks, dtypes, broadcast pattern) shares this module.\n"
    )
    return Generated(header + body, gen.params, kind, count, graph, bufs, layout, small)


def _generate(
    key: str | None,
    graph: Graph,
    buffers: Buffers | None,
    stage: str,
    tier: str,
    driver: str = "auto",
    defer: Callable[[Callable[[], None]], None] | None = None,
) -> Generated:
    """`generate`, through the render cache when the stage cache names the graph (`key`);
    `defer(store)` runs the store later (a tiered stage's first call: the background thread)."""
    if key is None:
        return generate(graph, buffers, stage, tier, driver)
    rkey = render_key(key, tier, driver)
    fields = load_rendered(rkey)
    if fields is not None:
        arena = fields.pop("arena")
        return Generated(graph=graph, buffers=buffers if arena else None, **fields)
    gen = generate(graph, buffers, stage, tier, driver)
    if defer is None:
        store_rendered(rkey, gen)
    else:  # gen is not changed after this: the store may pickle it later
        defer(functools.partial(store_rendered, rkey, gen))
    return gen


def _load(source: str):
    """Import generated source through the content-addressed disk cache."""
    from compiler.codegen import simd
    from runtime.cache import load_module

    # libmvec is loaded before any code that may call it links, and each SIMD mode caches in
    # its own namespace: Numba's cache key does not include the mode (simd.py)
    return load_module(source, prefix="gradc", mode=simd.cache_mode(simd.setup()))


def _share(module: Any, kind: str) -> None:
    with _lock:
        _MODULES.add(module.__name__)
        # A compiled driver's module keeps its own kernels: Numba's cached `_body` names the
        # module of every kernel it calls, and another process (a Dask worker, the helper)
        # may never load the module a shared kernel came from.
        for name in list(vars(module)) if kind != "njit-array" else ():
            if not name.startswith("k_"):
                continue
            have = _KERNELS.get(name)
            if have is None:
                _KERNELS[name] = getattr(module, name)
            elif getattr(module, name) is not have:
                setattr(module, name, have)  # the Python driver looks kernels up at call time
        if kind != "python":
            _DRIVERS[module.__name__] = module._body


def compile_graph(
    graph: Graph,
    buffers: Buffers | None,
    stage: str = "forward",
    *,
    eager: bool = False,
    key: str | None = None,
) -> CompiledStage:
    """Compile `graph` with buffer plan `buffers` to a callable
    `fn(*flat_inputs) -> list[np.ndarray]` (see module doc). `compiler.pipeline.lower_graph`
    runs the lowering passes and then this.

    `eager` runs every small loop's kernel from the first call instead of NumPy calls first
    (the compiled tier of the pipeline, docs/tiers.md: no call after the first waits on a
    compiler; the tests run each op through its kernel as well as through NumPy calls).

    A graph `njit_rule` picks runs the Python driver first and switches to its compiled
    driver (`njit_driver.tiers`), which the background thread compiles (docs/tiers.md).

    `key` (`Lowered.key`) names the graph and plan in the stage cache: the rendered text is
    then cached too (codegen/rendered.py)."""
    tier = "eager" if eager else "lazy"
    gen = _generate(key, graph, buffers, stage, tier)
    if gen.kind != "njit-array":
        return _bind(gen, stage, eager)
    first = _bind(_generate(key, graph, buffers, stage, tier, "python"), stage, eager)
    # the compiled driver's module loads when the stage switches to it, not before
    return tiers(first, functools.partial(_bind, gen, stage, eager), CompiledStage)


def _bind(gen: Generated, stage: str, eager: bool) -> CompiledStage:
    """Load `gen`'s module and bind its params: the stage's callable."""
    module = _load(gen.source)
    _share(module, gen.kind)
    params = gen.params
    arena = None
    if gen.kind == "njit":
        fn = CompiledStage(module.driver, *params)
        # the raw body returns plain scalars (no 0-d arrays): the API's fast path uses it
        fn.raw = functools.partial(module._body, *params)
    else:
        if gen.layout:  # a new Arena per compile: its slots have this graph's sizes
            arena = StageBuffers(gen.buffers.arena_specs(), gen.layout)
        params = [arena, *params[1:]]
        for j, kname, _ops in gen.small_sites:
            # a kernel this process already compiled costs nothing more: use it at once
            if eager or getattr(getattr(module, kname, None), "overloads", None):
                params[j] = 0
        fn = CompiledStage(module.driver, tuple(params))
    return _describe(fn, gen, stage, module, arena)


def _describe(
    fn: CompiledStage, gen: Generated, stage: str, module: Any, arena: StageBuffers | None
) -> CompiledStage:
    fn.source = gen.source
    fn.kernel_count = gen.count
    fn.driver_kind = gen.kind
    fn.stage = stage
    fn.module = module
    fn.graph = gen.graph
    fn.buffers = gen.buffers
    fn.arena = arena
    return fn


def compile_numpy(
    graph: Graph,
    buffers: Buffers | None,
    stage: str = "forward",
    *,
    key: str | None = None,
    defer: Callable[[Callable[[], None]], None] | None = None,
) -> Any:
    """The NumPy tier of a stage (docs/tiers.md): the same graph and buffer plan as
    `compile_graph`, every loop as NumPy calls writing into the planned buffers, nothing for
    Numba to compile and no Numba import. An all-scalar graph (no arena) runs on the
    interpreter: a few NumPy scalar calls per node. `defer`: see `_generate`."""
    if not uses_arena(graph):
        run = _Interpreted(_interpret, graph)
        run.graph, run.stage, run.buffers = graph, stage, None
        run.driver_kind, run.kernel_count, run.arena, run.source = "interpret", 0, None, ""
        return run
    gen = _generate(key, graph, buffers, stage, "numpy", defer=defer)
    module = _numpy_module(gen.source)
    arena = StageBuffers(gen.buffers.arena_specs(), gen.layout) if gen.layout else None
    fn = CompiledStage(module.driver, (arena, *gen.params[1:]))
    return _describe(fn, gen, stage, module, arena)


class _Interpreted(functools.partial):
    """An all-scalar stage's NumPy tier (attributes as on `CompiledStage`)."""


def _interpret(graph: Graph, *flat: Any) -> list:
    return run_graph(graph, flat)


_NUMPY_MODULES: dict[str, Any] = {}


def _numpy_module(source: str) -> Any:
    """Execute a NumPy-tier module from memory: nothing to compile, so nothing to cache on
    disk (and no `version_tag`, which would import Numba). Tracebacks show its lines."""
    name = f"gradc_np_{digest(source, 24)}"
    module = _NUMPY_MODULES.get(name)
    if module is None:
        filename = f"<gradc numpy tier {name}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        module = types.ModuleType(name)
        exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)
        with _lock:
            module = _NUMPY_MODULES.setdefault(name, module)
    return module
