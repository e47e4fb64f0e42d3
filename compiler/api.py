"""The public API: grad, value_and_grad, vjp, jit.

Each transformed function specialises on the signature of its arguments (pytree structure,
shapes, dtypes, static values): the first call with a new signature traces and compiles;
later calls go straight to the compiled code. Called on traced values (inside another
transformation), a transformation is inlined into the enclosing trace instead, which is what
makes `grad(grad(f))` work.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree

from compiler import debug_nans
from compiler.autodiff import vjp_graph
from compiler.autodiff.apply import vjp_in_trace
from compiler.autodiff.inline import check_aux, differentiable_leaves, splice
from compiler.ir.graph import copy_into
from compiler.passes import disabled_from_env
from compiler.pipeline import grad_stages, lower, optimize, vjp_stages
from compiler.plan import Policy, mark_segment
from compiler.trace import ARRAY, FLOAT, STATIC, Tracer, flatten, trace_tree
from compiler.trace.creation import active_contexts
from compiler.trace.draws import sample as sample_draws
from compiler.trace.entry import call_user, leaf_kind
from compiler.trace.loops import loop_memory
from runtime.call import grad_assembler
from runtime.memo import per_function
from runtime.pytree import flatten_args
from runtime.signature import normalize_array, signature_key

_ENV_DISABLED = disabled_from_env()  # read once, at import


def _tracing() -> bool:
    return bool(active_contexts())


def default_backend() -> str:
    return os.environ.get("GRADC_BACKEND", "numba")


def _leaf_key(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return (x.shape, x.dtype.char)
    if type(x) is float:
        return "f"
    if isinstance(x, np.generic):
        return ("g", x.dtype.char)
    if isinstance(x, Tracer):
        return ("t", x.shape, x.dtype.char)
    try:
        hash(x)
    except TypeError:
        raise TypeError(
            f"gradc cannot use an argument of type {type(x).__name__} (not an "
            "array, scalar or hashable static value)"
        ) from None
    return ("s", type(x), x)


class _Spec:
    """What one signature compiled to, and how to assemble results from flat outputs."""

    __slots__ = (
        "fn",
        "dyn",
        "n_out",
        "out_tree",
        "grad_trees",
        "grad_kinds",
        "single",
        "graphs",
        "bwd",
        "n_res",
        "ct_tree",
        "fast",
        "all_dyn",
        "has_arrays",
        "draws",
    )


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
    ) -> None:
        if not callable(fun):
            raise TypeError(f"{mode} expects a callable, got {type(fun).__name__}")
        self.fun = fun
        self.mode = mode
        self.single = isinstance(argnums, (int, np.integer))
        self.argnums = (int(argnums),) if self.single else tuple(int(a) for a in argnums)
        self.has_aux = has_aux
        self.backend = backend or default_backend()
        self.disable = tuple(disable) + _ENV_DISABLED
        Policy(memory=memory, memory_budget=memory_budget)  # validates both options
        self.memory, self.memory_budget = memory, memory_budget
        self._cache: dict[Any, _Spec] = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, fun, updated=())

    def __reduce__(self) -> tuple:
        # A transform pickles as the user's function plus its options; compiled code and the
        # lock stay behind, and the receiving process (a Dask worker) rebuilds them, from the
        # disk cache when it shares one. See compiler/distributed.
        argnums = self.argnums[0] if self.single else self.argnums
        options = (self.has_aux, self.backend, self.disable, self.memory, self.memory_budget)
        return (_Transform, (self.fun, self.mode, argnums, *options))

    # -- the call fast path -------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _tracing():  # inside another trace: become part of it
            leaves, _ = optree.tree_flatten((args, kwargs), none_is_leaf=False)
            return self._inline(args, kwargs, leaves)
        if kwargs:
            leaves, tree = optree.tree_flatten((args, kwargs), none_is_leaf=False)
        else:
            leaves, tree = flatten_args(args)
        key = signature_key(leaves, tree)
        spec = self._cache.get(key)
        if spec is None:
            return self._first_call(key, args, kwargs, leaves)
        if spec.has_arrays:
            fixed = _normalize_leaves(leaves)
            if fixed is not None:  # a strided, Fortran-order or byte-swapped array: copy once
                leaves = fixed
        flat = leaves if spec.all_dyn else [leaves[i] for i in spec.dyn]
        if spec.draws:  # random draws inside the function: fresh from the real generators
            flat = [*flat, *sample_draws(spec.draws)]
        if spec.fast is not None and not debug_nans.ENABLED:
            return spec.fast(flat)
        outs = spec.fn(*flat)
        if debug_nans.ENABLED:
            self._debug_nans(spec, flat, outs)
        return self._assemble(spec, outs, flat)

    def _first_call(self, key: Any, args: tuple, kwargs: dict, leaves: list) -> Any:
        fixed = _normalize_leaves(leaves)
        if fixed is not None:
            leaves = fixed
            tree = optree.tree_structure((args, kwargs), none_is_leaf=False)
            args, kwargs = optree.tree_unflatten(tree, leaves)
        with self._lock:
            spec = self._cache.get(key)
            if spec is None:
                spec = self._compile(args, kwargs, leaves)
                spec.all_dyn = len(spec.dyn) == len(leaves)
                spec.has_arrays = any(isinstance(x, np.ndarray) for x in leaves)
                spec.fast = self._fast_assembler(spec)
                self._cache[key] = spec
        flat = [leaves[i] for i in spec.dyn]
        if spec.draws:
            flat += sample_draws(spec.draws)
        outs = spec.fn(*flat)
        if debug_nans.ENABLED:
            self._debug_nans(spec, flat, outs)
        return self._assemble(spec, outs, flat)

    def _fast_assembler(self, spec: _Spec) -> Callable | None:
        """`flat -> result` for grad/value_and_grad without aux; None: use the general path."""
        if self.mode not in ("grad", "value_and_grad") or self.has_aux or spec.draws:
            return None
        raw = getattr(spec.fn, "raw", None)
        final = spec.graphs.get("final")
        # plain scalars out of the all-scalar kernel fit only when every gradient is a float
        use_raw = (
            raw is not None
            and final is not None
            and all(v.dtype == np.float64 for v in final.outputs)
            and all(k == "float" for k in spec.grad_kinds)
        )
        fn = raw if use_raw else spec.fn
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

    def _debug_nans(self, spec: _Spec, flat: list, outs: Sequence[Any]) -> None:
        name = getattr(self.fun, "__name__", "function")
        traced = spec.graphs["traced"]
        if self.mode in ("grad", "value_and_grad"):
            graph, n_fwd = spec.graphs["grad"], len(traced.nodes)
        else:
            graph, n_fwd = traced, None
            outs = outs[: spec.n_out]  # vjp: the residuals are the planner's business
        debug_nans.check(graph, flat, outs, f"{self.mode}({name})", n_fwd)

    # -- building ---------------------------------------------------------------------------
    def _checked_fun(self) -> Callable:
        return check_aux(self.fun, self.has_aux, self.mode)

    def _wrt(self, args: tuple, kinds: list[str]) -> list[int]:
        """Leaf positions (among all leaves) of the differentiated arguments, checked."""
        return differentiable_leaves(self.fun, args, self.argnums, kinds, self.mode)

    def _trace(self, args: tuple, kwargs: dict):
        # memory="sqrt" also checkpoints the scans traced inside (compiler/trace/loops.py)
        with loop_memory(getattr(self, "memory", None)):
            tr = trace_tree(self._checked_fun(), args, kwargs)
        dyn = [i for i, k in enumerate(tr.kinds) if k != STATIC]
        return tr, dyn

    def _value_leaf_check(self, tr) -> int:
        """Number of leaves of the primal output part; checks it is a float scalar."""
        g = tr.graph
        val_tree = tr.out_tree
        if self.has_aux:
            val_tree = optree.tree_structure(
                optree.tree_unflatten(tr.out_tree, list(range(tr.out_tree.num_leaves)))[0],
                none_is_leaf=False,
            )
        n_val = val_tree.num_leaves
        v = g.outputs[0] if g.outputs else None
        # a tuple/list/dict output (even of one scalar) is an error, as in JAX: without
        # has_aux only the first leaf would be differentiated and the rest dropped
        if not val_tree.is_leaf() or v is None or v.shape != () or not v.type.is_float:
            shape = (
                f"a pytree {val_tree} (use has_aux=True to return extra values)"
                if not val_tree.is_leaf()
                else (f"shape {v.shape} dtype {v.dtype}" if v is not None else "nothing")
            )
            raise TypeError(
                f"{self.mode} needs a function returning a float scalar; it "
                f"returned {shape}. For non-scalar outputs use "
                "compiler.vjp (or sum the output)"
            )
        return n_val

    def _compile(self, args: tuple, kwargs: dict, leaves: list) -> _Spec:
        tr, dyn = self._trace(args, kwargs)
        if tr.captured:
            raise RuntimeError("internal: captured values outside a trace")
        spec = _Spec()
        spec.dyn = dyn
        spec.draws = tr.draws
        spec.out_tree = tr.out_tree
        spec.n_out = len(tr.graph.outputs)
        spec.single = self.single
        if self.mode == "jit":
            graph = optimize(tr.graph, self.disable)
            spec.graphs = {"traced": tr.graph, "passes": graph}
            spec.fn = lower(graph, self.backend, "jit")
            return spec
        wrt_leaves = self._wrt(args, tr.kinds)
        wrt_inputs = [dyn.index(i) for i in wrt_leaves]
        spec.grad_trees, spec.grad_kinds = self._grad_layout(args, wrt_leaves, tr.kinds, leaves)
        if self.mode == "vjp":
            return self._compile_vjp(tr, spec, wrt_inputs)
        self._value_leaf_check(tr)
        joint = vjp_graph(tr.graph, wrt_inputs, seeds="ones", ct_outputs=(0,))
        st = grad_stages(joint, self.disable, self.memory, self.memory_budget)
        spec.graphs = {"traced": tr.graph, **st}
        spec.fn = lower(st["final"], self.backend, "value_and_grad")
        return spec

    def _compile_vjp(self, tr, spec: _Spec, wrt_inputs: list[int]) -> _Spec:
        g = tr.graph
        n_in, n_out = len(g.inputs), len(g.outputs)
        n_primal = n_out
        if self.has_aux:
            first = optree.tree_unflatten(tr.out_tree, list(range(n_out)))[0]
            n_primal = optree.tree_structure(first, none_is_leaf=False).num_leaves
        ct_outs = tuple(range(n_primal))
        joint = vjp_graph(g, wrt_inputs, seeds="input", ct_outputs=ct_outs)
        st = vjp_stages(joint, n_in, n_out, self.disable)
        spec.graphs = {"traced": g, **st}
        spec.fn = lower(st["forward"], self.backend, "vjp_forward")
        spec.bwd = lower(st["backward"], self.backend, "vjp_backward")
        spec.n_res = st["n_residuals"]
        return spec

    def _grad_layout(self, args, wrt_leaves, kinds, leaves):
        trees, grad_kinds = [], []
        for a in self.argnums:
            trees.append(optree.tree_structure(args[a % len(args)], none_is_leaf=False))
        for i in wrt_leaves:
            x = leaves[i]
            grad_kinds.append(
                "float"
                if kinds[i] == FLOAT
                else ("generic" if isinstance(x, np.generic) else "array")
            )
        return trees, grad_kinds

    # -- results ------------------------------------------------------------------------------
    def _grads(self, spec: _Spec, flat: Sequence[Any]) -> Any:
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

    def _assemble(self, spec: _Spec, outs: Sequence[Any], flat: Sequence[Any] = ()) -> Any:
        if self.mode == "jit":
            return optree.tree_unflatten(spec.out_tree, [_scalarize(o) for o in outs])
        if self.mode == "vjp":
            return self._vjp_result(spec, outs, flat)
        primal = optree.tree_unflatten(spec.out_tree, [_scalarize(o) for o in outs[: spec.n_out]])
        grads = self._grads(spec, outs[spec.n_out :])
        if self.mode == "grad":
            return (grads, primal[1]) if self.has_aux else grads
        return (primal, grads)

    def _vjp_result(self, spec: _Spec, outs: Sequence[Any], primals: Sequence[Any]) -> Any:
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
                n = len(spec.graphs["traced"].outputs)
                grads = splice(spec.graphs["grad"], [*primals, *flat], "vjp pullback")[n:]
                g = transform._grads(spec, grads)
                return (g,) if spec.single else g
            grads = spec.bwd(*residuals, *flat)
            if debug_nans.ENABLED and primals:
                n_fwd = len(spec.graphs["traced"].nodes)
                name = getattr(transform.fun, "__name__", "function")
                debug_nans.check(
                    spec.graphs["grad"], [*primals, *flat], grads, f"vjp({name}) pullback", n_fwd
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
        tr, dyn = self._trace(args, kwargs)
        if ctx is None:
            raise RuntimeError("internal: traced arguments outside a trace")
        spec = _Spec()
        spec.dyn, spec.out_tree, spec.n_out, spec.single = (
            dyn,
            tr.out_tree,
            len(tr.graph.outputs),
            self.single,
        )
        wrt_leaves = self._wrt(args, tr.kinds)
        spec.grad_trees, spec.grad_kinds = self._grad_layout(args, wrt_leaves, tr.kinds, leaves)
        wrt_inputs = [dyn.index(i) for i in wrt_leaves]
        self._value_leaf_check(tr)
        joint = vjp_graph(tr.graph, wrt_inputs, seeds="ones", ct_outputs=(0,))
        ins = [ctx.lift(leaves[i]).value for i in dyn] + [ctx.lift(c).value for c in tr.captured]
        ins += [v for v in map(ctx.draw_input, tr.draws) if v is not None]
        outs = copy_into(ctx.builder, joint, ins)
        return self._assemble(spec, [Tracer(ctx, v) for v in outs])

    # -- introspection ---------------------------------------------------------------------------
    def stages(self, *args: Any, **kwargs: Any) -> dict:
        """The graphs of each stage for these arguments (compiling if needed)."""
        if kwargs:
            leaves, tree = optree.tree_flatten((args, kwargs), none_is_leaf=False)
        else:
            leaves, tree = flatten_args(args)
        key = signature_key(leaves, tree)
        if key not in self._cache:
            self(*args, **kwargs)
        return self._cache[key].graphs


def _normalize_leaves(leaves: list) -> list | None:
    """The leaves with every array C-contiguous and native-endian (what compiled code reads),
    or None when they already are: the common case costs one flags check per array."""
    out = None
    for i, x in enumerate(leaves):
        if type(x) is np.ndarray:
            if x.flags.c_contiguous and x.dtype.isnative:
                continue
            x = normalize_array(x)
        elif isinstance(x, np.ndarray):
            x = normalize_array(_plain_array(x))
        else:
            continue
        if out is None:
            out = list(leaves)
        out[i] = x
    return out


def _plain_array(x: np.ndarray) -> np.ndarray:
    # A memmap is an ndarray with a file behind it. Other subclasses (np.matrix, masked
    # arrays) change what operators mean, so the traced function would not be the one the
    # user ran on them: refuse rather than differentiate something else.
    if isinstance(x, np.memmap):
        return np.asarray(x)
    raise TypeError(
        f"gradc does not accept {type(x).__module__}.{type(x).__name__} arguments (an "
        "ndarray subclass whose operators differ from ndarray's); pass np.asarray(x), or "
        "x.filled(...) for a masked array"
    )


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
    ) -> Any:
        opts = {"memory": memory, "memory_budget": memory_budget}
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
    fun: Callable | None = None, *, backend: str | None = None, disable: Sequence[str] = ()
) -> Any:
    """Compile the forward computation alone through the same pipeline."""
    if fun is None:
        return lambda f: _Transform(f, "jit", 0, False, backend, disable)
    return _Transform(fun, "jit", 0, False, backend, disable)


def vjp(
    fun: Callable,
    *primals: Any,
    has_aux: bool = False,
    backend: str | None = None,
    disable: Sequence[str] = (),
) -> Any:
    """`out, pullback = vjp(f, *primals)`; `pullback(ct)` returns a tuple of gradients, one
    per primal (JAX's convention)."""
    # one transform per (function, options): its backward is compiled once per signature
    key = ("vjp", len(primals), has_aux, backend, tuple(disable))
    argnums = tuple(range(len(primals)))
    t = per_function(fun, key, lambda: _Transform(fun, "vjp", argnums, has_aux, backend, disable))
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
