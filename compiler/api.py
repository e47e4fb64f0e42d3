"""The public API: grad, value_and_grad, vjp, jit.

Each transformed function specialises on the signature of its arguments (pytree structure,
shapes, dtypes, static values): the first call with a new signature traces and compiles;
later calls go straight to the compiled code. Called on traced values (inside another
transformation), a transformation is inlined into the enclosing trace instead, which is what
makes `grad(grad(f))` work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree

from compiler import debug_nans, pipeline
from compiler.arguments import check_scalar_output, grad_layout
from compiler.autodiff import vjp_graph
from compiler.autodiff.apply import vjp_in_trace
from compiler.autodiff.inline import check_aux, differentiable_leaves, splice
from compiler.codegen.llcall import attach
from compiler.codegen.pyscalar import CONSTANTS, python_scalar
from compiler.ir.graph import copy_into
from compiler.passes import disabled_from_env
from compiler.pipeline import (
    Compiled,
    Options,
    Signature,
    Stages,
    Transform,
    default_backend,
)
from compiler.plan import mark_segment
from compiler.trace import ARRAY, STATIC, Tracer, flatten, trace_tree
from compiler.trace.creation import TRACES_ACTIVE, active_contexts
from compiler.trace.draws import sample as sample_draws
from compiler.trace.entry import call_user, leaf_kind
from compiler.trace.loops import loop_memory
from runtime.call import grad_assembler
from runtime.dispatch import Dispatcher, normalize_leaves
from runtime.memo import per_function
from runtime.scalar_call import build_scalar_call
from runtime.signature import normalize_array
from runtime.tier import TieredStage

_ENV_DISABLED = disabled_from_env()  # read once, at import


def _tracing() -> bool:
    return bool(active_contexts())


class _Transform:
    def __init__(
        self,
        fun: Callable,
        mode: str,
        argnums: int | Sequence[int] = 0,
        has_aux: bool = False,
        backend: str | None = None,
        disable: Sequence[str] = (),
        memory: str | None = None,
        memory_budget: int | None = None,
        compile: str | None = None,
    ) -> None:
        if not callable(fun):
            raise TypeError(f"{mode} expects a callable, got {type(fun).__name__}")
        self.fun = fun
        self.mode = mode
        self.single = isinstance(argnums, (int, np.integer))
        self.argnums = (int(argnums),) if self.single else tuple(int(a) for a in argnums)
        self.has_aux = has_aux
        self.opts = Options(
            backend or default_backend(),
            tuple(disable) + _ENV_DISABLED,
            memory,
            memory_budget,
            compile,
        )
        self.backend = self.opts.backend
        self.transform = Transform(mode, self.argnums, has_aux)
        self.disable = self.opts.disable
        self._dispatch = Dispatcher(self._entry)
        # the generated __call__ of the first all-float signature (runtime/scalar_call.py)
        self._scalar: Callable[..., Any] | None = None
        functools.update_wrapper(self, fun, updated=())

    def __reduce__(self) -> tuple:
        # A transform pickles as the user's function plus its options; compiled code and the
        # lock stay behind, and the receiving process (a Dask worker) rebuilds them, from the
        # disk cache when it shares one. See compiler/distributed.
        argnums = self.argnums[0] if self.single else self.argnums
        o = self.opts
        options = (self.has_aux, o.backend, self.disable, o.memory, o.memory_budget, o.compile)
        return (_Transform, (self.fun, self.mode, argnums, *options))

    # -- calls: the per-signature dispatcher (runtime.dispatch) ------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # inside another trace: become part of it (TRACES_ACTIVE, counted over all threads,
        # spares the common case the thread-local lookup)
        if TRACES_ACTIVE[0] and _tracing():
            leaves, _ = optree.tree_flatten((args, kwargs), none_is_leaf=False)
            return self._inline(args, kwargs, leaves)
        return self._dispatch(args, kwargs)

    @property
    def _cache(self) -> dict[Any, Compiled]:
        return self._dispatch.cache

    def _entry(self, args: tuple, kwargs: dict, leaves: list) -> Compiled:
        """Compile one signature into the dispatcher's entry."""
        spec = pipeline.compile(
            self.fun, Signature(args, kwargs, leaves), self.transform, self.opts
        )
        spec.single = self.single
        spec.fast = None if debug_nans.ENABLED else self._fast_assembler(spec)
        if isinstance(spec.fn, TieredStage):
            spec.fn.on_switch(functools.partial(self._switched, spec))
        if isinstance(spec.bwd, TieredStage):
            spec.bwd.on_switch(lambda fn: setattr(spec, "bwd", fn))
        spec.run = functools.partial(self._run, spec)
        if self._scalar is None and not kwargs:
            self._scalar_call(spec, args, leaves)
        return spec

    def _scalar_call(self, spec: Compiled, args: tuple, leaves: list) -> None:
        """Give this transformation the scalar call path of `spec`'s signature if it is all
        Python floats (runtime/scalar_call.py); never with the interpreter (the oracle)."""
        if self.backend != "numba" or debug_nans.ENABLED or spec.draws:
            return
        if len(spec.stages.lowered) != 1 or type(self) is not _Transform:
            return
        body_graph = spec.stages.lowered[0].graph
        body = python_scalar(body_graph)
        if body is None:
            return
        general, tracing = _Transform.__call__, TRACES_ACTIVE
        mode, aux = self.mode, self.has_aux
        call = build_scalar_call(body, spec, mode, aux, args, leaves, general, tracing, CONSTANTS)
        if call is not None:
            # Python looks `__call__` up on the type, so the generated one needs a class of
            # its own: one subclass per transformation, which saves the general __call__'s
            # frame and checks (~0.1 us of ~0.4 us); pickling still names _Transform
            self._scalar = call
            self.__class__ = type("_ScalarTransform", (_Transform,), {"__call__": call})
            # and, built off the caller's thread, the same call as machine code
            attach(self, call, body_graph, args, leaves, spec, aux, tracing, self.opts.compile)

    def _switched(self, spec: Compiled, fn: Callable) -> None:
        # the compiled tier is ready (docs/tiers.md): call it with no indirection from now
        # on, and rebuild the fast path (for an all-scalar stage: its raw njit body)
        spec.fn = fn
        if spec.fast is not None:
            spec.fast = self._fast_assembler(spec)

    def _run(self, spec: Compiled, flat: list) -> Any:
        if spec.draws:  # random draws inside the function: fresh from the real generators
            flat = [*flat, *sample_draws(spec.draws)]
        outs = spec.fn(*flat)
        if debug_nans.ENABLED:
            self._debug_nans(spec, flat, outs)
        return self._assemble(spec, outs, flat)

    def _fast_assembler(self, spec: Compiled) -> Callable | None:
        """`flat -> result` for grad/value_and_grad without aux; None: use the general path."""
        if self.mode not in ("grad", "value_and_grad") or self.has_aux or spec.draws:
            return None
        stage = spec.fn
        raw = None if isinstance(stage, TieredStage) else getattr(stage, "raw", None)
        final = spec.stages.lowered[0].graph
        # plain scalars out of the all-scalar kernel fit only when every gradient is a float
        use_raw = (
            raw is not None
            and all(v.dtype == np.float64 for v in final.outputs)
            and all(k == "float" for k in spec.grad_kinds)
        )
        fn = raw if use_raw else stage
        assemble = grad_assembler(
            spec.n_out,
            spec.out_tree,
            spec.grad_trees,
            spec.grad_kinds,
            spec.single,
            with_value=self.mode == "value_and_grad",
            value_dtype=np.float64 if fn is raw else None,
        )
        return lambda flat: assemble(fn(*flat))

    def _debug_nans(self, spec: Compiled, flat: list, outs: Sequence[Any]) -> None:
        name = getattr(self.fun, "__name__", "function")
        traced = spec.stages.traced
        if self.mode in ("grad", "value_and_grad"):
            graph, n_fwd = spec.stages.grad, len(traced.nodes)
        else:
            graph, n_fwd = traced, None
            outs = outs[: spec.n_out]  # vjp: the residuals are the planner's business
        debug_nans.check(graph, flat, outs, f"{self.mode}({name})", n_fwd)

    # -- results ------------------------------------------------------------------------------
    def _grads(self, spec: Compiled, flat: Sequence[Any]) -> Any:
        leaves = []
        for g, kind in zip(flat, spec.grad_kinds):
            if kind == "float":
                g = float(g) if not isinstance(g, Tracer) else g
            elif kind == "generic" and not isinstance(g, Tracer):
                g = np.asarray(g)[()]
            leaves.append(g)
        out, pos = [], 0
        for t in spec.grad_trees:
            n = t.num_leaves
            out.append(optree.tree_unflatten(t, leaves[pos : pos + n]))
            pos += n
        return out[0] if spec.single else tuple(out)

    def _assemble(self, spec: Compiled, outs: Sequence[Any], flat: Sequence[Any] = ()) -> Any:
        if self.mode == "jit":
            return optree.tree_unflatten(spec.out_tree, [_scalarize(o) for o in outs])
        if self.mode == "vjp":
            return self._vjp_result(spec, outs, flat)
        primal = optree.tree_unflatten(spec.out_tree, [_scalarize(o) for o in outs[: spec.n_out]])
        grads = self._grads(spec, outs[spec.n_out :])
        if self.mode == "grad":
            return (grads, primal[1]) if self.has_aux else grads
        return (primal, grads)

    def _vjp_result(self, spec: Compiled, outs: Sequence[Any], primals: Sequence[Any]) -> Any:
        primal_flat = list(outs[: spec.n_out])
        residuals = list(outs[spec.n_out :])
        primal = optree.tree_unflatten(spec.out_tree, [_scalarize(o) for o in primal_flat])
        out_part = primal[0] if self.has_aux else primal
        ct_tree = optree.tree_structure(out_part, none_is_leaf=False)
        ct_types = [(np.shape(o), np.asarray(o).dtype) for o in primal_flat[: ct_tree.num_leaves]]
        transform = self

        def pullback(ct: Any) -> tuple:
            ct_leaves, tree = optree.tree_flatten(ct, none_is_leaf=False)
            if tree != ct_tree:
                raise TypeError(
                    f"vjp pullback: the cotangent must have the output's "
                    f"structure {ct_tree}, got {tree}"
                )
            flat = []
            for c, (shape, dt) in zip(ct_leaves, ct_types):
                c = c if isinstance(c, Tracer) else np.asarray(c)
                if c.shape != shape:
                    raise ValueError(
                        f"vjp pullback: cotangent shaped {c.shape} for an output shaped {shape}"
                    )
                flat.append(
                    c if isinstance(c, Tracer) else normalize_array(c.astype(dt, copy=False))
                )
            if any(isinstance(c, Tracer) for c in flat):
                # called inside a trace (grad of a pullback): splice the joint graph there
                n = len(spec.stages.traced.outputs)
                grads = splice(spec.stages.grad, [*primals, *flat], "vjp pullback")[n:]
                g = transform._grads(spec, grads)
                return (g,) if spec.single else g
            grads = spec.bwd(*residuals, *flat)
            if debug_nans.ENABLED and primals:
                n_fwd = len(spec.stages.traced.nodes)
                name = getattr(transform.fun, "__name__", "function")
                debug_nans.check(
                    spec.stages.grad, [*primals, *flat], grads, f"vjp({name}) pullback", n_fwd
                )
            g = transform._grads(spec, grads)
            return (g,) if spec.single else g

        return (primal[0], pullback, primal[1]) if self.has_aux else (out_part, pullback)

    # -- inside another trace ------------------------------------------------------------------
    def _inline(self, args: tuple, kwargs: dict, leaves: list) -> Any:
        if self.mode == "jit":
            return call_user(self.fun, args, kwargs)
        if self.mode == "vjp":  # forward spliced now; the pullback splices its backward
            return vjp_in_trace(self.fun, args, self.has_aux)
        ctx = active_contexts()[-1] if active_contexts() else None
        with loop_memory(self.opts.memory):
            tr = trace_tree(check_aux(self.fun, self.has_aux, self.mode), args, kwargs)
        if ctx is None:
            raise RuntimeError("internal: traced arguments outside a trace")
        dyn = [i for i, k in enumerate(tr.kinds) if k != STATIC]
        spec = Compiled(None, dyn, tr.out_tree, len(tr.graph.outputs), single=self.single)
        wrt = differentiable_leaves(self.fun, args, self.argnums, tr.kinds, self.mode)
        spec.grad_trees, spec.grad_kinds = grad_layout(self.argnums, args, wrt, tr.kinds, leaves)
        wrt_inputs = [dyn.index(i) for i in wrt]
        check_scalar_output(self.mode, self.has_aux, tr)
        joint = vjp_graph(tr.graph, wrt_inputs, seeds="ones", ct_outputs=(0,))
        ins = [ctx.lift(leaves[i]).value for i in dyn] + [ctx.lift(c).value for c in tr.captured]
        ins += [v for v in map(ctx.draw_input, tr.draws) if v is not None]
        outs = copy_into(ctx.builder, joint, ins)
        return self._assemble(spec, [Tracer(ctx, v) for v in outs])

    # -- introspection ---------------------------------------------------------------------------
    def stages(self, *args: Any, **kwargs: Any) -> Stages:
        """Every stage of the compile for these arguments (compiling if needed)."""
        return self._dispatch.entry(args, kwargs).stages

    def build_stages(self, *args: Any, keep=None, **kwargs: Any) -> Stages:
        """The stages for these arguments without compiling (`keep(name, graph)` is called
        after every pass; `gradc ir` uses it)."""
        leaves, _ = optree.tree_flatten((args, kwargs), none_is_leaf=False)
        sig = Signature(args, kwargs, normalize_leaves(leaves) or leaves)
        return pipeline.compile(
            self.fun, sig, self.transform, self.opts, keep=keep, build=False
        ).stages


def _scalarize(x: Any) -> Any:
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x[()]
    return x


def _make(mode: str):
    def transform(
        fun: Callable | None = None,
        argnums: int | Sequence[int] = 0,
        *,
        has_aux: bool = False,
        backend: str | None = None,
        disable: Sequence[str] = (),
        memory: str | None = None,
        memory_budget: int | None = None,
        compile: str | None = None,
    ) -> Any:
        opts = {"memory": memory, "memory_budget": memory_budget, "compile": compile}
        if fun is None:
            return lambda f: _Transform(f, mode, argnums, has_aux, backend, disable, **opts)
        return _Transform(fun, mode, argnums, has_aux, backend, disable, **opts)

    transform.__name__ = mode
    return transform


grad = _make("grad")
grad.__doc__ = "`grad(f)(*args)`: the gradient of scalar f w.r.t. `argnums`, compiled."
value_and_grad = _make("value_and_grad")
value_and_grad.__doc__ = "`value_and_grad(f)(*args)` -> (value, grads); JAX's conventions."


def jit(
    fun: Callable | None = None,
    *,
    backend: str | None = None,
    disable: Sequence[str] = (),
    compile: str | None = None,
) -> Any:
    """Compile the forward computation alone through the same pipeline."""
    if fun is None:
        return lambda f: _Transform(f, "jit", 0, False, backend, disable, compile=compile)
    return _Transform(fun, "jit", 0, False, backend, disable, compile=compile)


def vjp(
    fun: Callable,
    *primals: Any,
    has_aux: bool = False,
    backend: str | None = None,
    disable: Sequence[str] = (),
    compile: str | None = None,
) -> Any:
    """`out, pullback = vjp(f, *primals)`; `pullback(ct)` returns a tuple of gradients, one
    per primal (JAX's convention)."""
    # one transform per (function, options): its backward is compiled once per signature
    key = ("vjp", len(primals), has_aux, backend, tuple(disable), compile)
    argnums = tuple(range(len(primals)))
    t = per_function(
        fun,
        key,
        lambda: _Transform(fun, "vjp", argnums, has_aux, backend, disable, compile=compile),
    )
    return t(*primals)


def checkpoint(fun: Callable) -> Callable:
    """Mark `fun` as a checkpoint segment: the backward pass recomputes its activations from
    its inputs instead of storing them."""
    if not callable(fun):
        raise TypeError(f"checkpoint expects a callable, got {type(fun).__name__}")

    @functools.wraps(fun)
    def segment(*args: Any, **kwargs: Any) -> Any:
        # record the nodes this call appends to every active trace and tag them as one segment
        starts = [(ctx.builder, len(ctx.builder.nodes)) for ctx in active_contexts()]
        out = fun(*args, **kwargs)
        for b, start in starts:
            mark_segment(b, start)
        return out

    return segment


__all__ = [
    "grad",
    "jit",
    "value_and_grad",
    "vjp",
    "checkpoint",
    "ARRAY",
    "flatten",
    "leaf_kind",
]
