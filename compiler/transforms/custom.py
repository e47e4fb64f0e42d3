"""`custom_vjp`, `custom_jvp` and `stop_gradient`: user-defined derivatives, used by every
transformation.

Called outside any transformation, a decorated function just runs. Called inside one, it
becomes `custom` nodes (see `compiler/autodiff/custom.py`) whose rules call the user's
functions on tracers, so the rule's arithmetic is traced like any other code. Each kind also
serves the other mode: a `custom_vjp` function under `jvp` gets `J t` as the gradient of
`<bwd(res, c), t>` in `c` (the VJP is linear in `c`, so this is exact), and a `custom_jvp`
function under `grad` gets `J^T c` as the gradient of `<c, jvp(x, t)>` in `t`. The user's
rule is therefore what every transformation differentiates with, at every nesting level.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from compiler.api import grad
from compiler.autodiff.custom import CUSTOM, CustomRule
from compiler.autodiff.inline import arg_names, current_trace, describe
from compiler.ir.graph import Graph, Value
from compiler.trace import STATIC, Tracer, trace_tree
from compiler.trace.creation import active_contexts
from compiler.trace.tracer import user_location


def _name(f: Callable | None) -> str:
    return getattr(f, "__name__", type(f).__name__)


class _Call:
    """One traced call of a custom function: how to rebuild its arguments from node inputs."""

    def __init__(self, kind: str, owner: Any, args: tuple, tr: Any) -> None:
        self.kind, self.owner = kind, owner
        self.leaves, self.in_tree = optree.tree_flatten((args, {}), none_is_leaf=False)
        self.dyn = [i for i, k in enumerate(tr.kinds) if k != STATIC]
        self.out_tree = tr.out_tree
        self.out_types = [v.type for v in tr.graph.outputs]
        self.n_args = len(args)
        self.arg_trees = [optree.tree_structure(a, none_is_leaf=False) for a in args]

    def args(self, xs: tuple) -> tuple:
        leaves = list(self.leaves)
        for i, x in zip(self.dyn, xs):
            leaves[i] = x
        return optree.tree_unflatten(self.in_tree, leaves)[0]

    def where(self) -> str:
        return f"{self.kind} function {_name(self.owner.fun)}"


class _Rule(CustomRule):
    """The rules for output leaf `index` of one call."""

    def __init__(self, call: _Call, index: int) -> None:
        self.call, self.index = call, index

    def __str__(self) -> str:
        return f"{self.call.kind}:{_name(self.call.owner.fun)}[{self.index}]"

    __repr__ = __str__  # error messages (a graph that cannot be serialised) name the rule

    def _ct_tree(self, ct: Any) -> Any:
        """The output cotangent pytree: `ct` at our leaf, zeros elsewhere."""
        leaves = [
            ct if j == self.index else np.zeros(t.shape, t.dtype if t.is_float else np.float64)
            for j, t in enumerate(self.call.out_types)
        ]
        return optree.tree_unflatten(self.call.out_tree, leaves)

    # -- custom_vjp -------------------------------------------------------------------------
    def _bwd(self, xs: tuple, ct_tree: Any) -> list:
        """The user's bwd, checked; one cotangent (or None) per node input."""
        call, owner = self.call, self.call.owner
        res_pair = owner.fwd(*call.args(xs))
        if not (isinstance(res_pair, (tuple, list)) and len(res_pair) == 2):
            raise TypeError(
                f"custom_vjp fwd rule {_name(owner.fwd)} of {_name(owner.fun)} must return "
                f"(output, residuals); it returned {describe(res_pair)}"
            )
        args, nd = call.args(xs), owner.nondiff_argnums
        cts = owner.bwd(*[args[i] for i in nd], res_pair[1], ct_tree)
        return _check_cotangents(call, cts, xs, f"custom_vjp bwd rule {_name(owner.bwd)}")

    # -- custom_jvp -------------------------------------------------------------------------
    def _tangent_out(self, xs: tuple, tangents: list) -> Any:
        """Our leaf of the user's output tangent, checked."""
        call, owner = self.call, self.call.owner
        tans = list(call.leaves)
        for i, x, t in zip(call.dyn, xs, tangents):
            tans[i] = t if t is not None else np.zeros(x.shape, _tangent_dtype(x))
        for i in set(range(len(tans))) - set(call.dyn):
            tans[i] = 0.0  # a static argument has no tangent space
        t_args = optree.tree_unflatten(call.in_tree, tans)[0]
        args, nd = call.args(xs), owner.nondiff_argnums
        diff = [i for i in range(len(args)) if i not in nd]
        pair = owner.jvp_rule(
            *[args[i] for i in nd],
            tuple(args[i] for i in diff),
            tuple(t_args[i] for i in diff),
        )
        rule = f"custom_jvp rule {_name(owner.jvp_rule)} of {_name(owner.fun)}"
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(
                f"{rule} must return (output, output_tangent); it returned {describe(pair)}"
            )
        t_leaves, t_tree = optree.tree_flatten(pair[1], none_is_leaf=False)
        if t_tree != call.out_tree:
            raise TypeError(
                f"{rule} returned a tangent with structure {t_tree}; expected the output's "
                f"structure {call.out_tree}"
            )
        t, want = t_leaves[self.index], call.out_types[self.index]
        if tuple(np.shape(t)) != want.shape:
            raise ValueError(
                f"{rule} returned an output tangent of shape {tuple(np.shape(t))} for output "
                f"{self.index}; expected {want.shape} (the output's shape)"
            )
        return t

    # -- the two rules the autodiff drivers call --------------------------------------------
    def vjp(self, ct: Any, *xs: Any, out: Any, **attrs: Any) -> tuple:
        if self.call.kind == "custom_vjp":
            return tuple(self._bwd(xs, self._ct_tree(ct)))
        floats = [k for k, x in enumerate(xs) if x.dtype.kind == "f"]
        if not floats:
            return (None,) * len(xs)

        def inner(*ts: Any) -> Any:  # <ct, J t>, linear in t: its gradient is J^T ct
            full: list[Any] = [None] * len(xs)
            for k, t in zip(floats, ts):
                full[k] = t
            return np.sum(ct * self._tangent_out(xs, full))

        zeros = [np.zeros(xs[k].shape, xs[k].dtype) for k in floats]
        gs = grad(inner, argnums=tuple(range(len(floats))), backend="interpret")(*zeros)
        res: list[Any] = [None] * len(xs)
        for k, g in zip(floats, gs):
            res[k] = g
        return tuple(res)

    def jvp(self, tangents: list, *xs: Any, out: Any, **attrs: Any) -> Any:
        if self.call.kind == "custom_jvp":
            return self._tangent_out(xs, tangents)
        want = self.call.out_types[self.index]

        def inner(c: Any) -> Any:  # <J^T c, t>, linear in c: its gradient is J t
            cts = self._bwd(xs, self._ct_tree(c))
            terms = [
                np.sum(g * t) for g, t in zip(cts, tangents) if g is not None and t is not None
            ]
            return sum(terms, np.zeros((), want.dtype))

        return grad(inner, backend="interpret")(np.zeros(want.shape, want.dtype))


def _tangent_dtype(x: Any) -> Any:
    return x.dtype if x.dtype.kind == "f" else np.float64


def _check_cotangents(call: _Call, cts: Any, xs: tuple, rule: str) -> list:
    """One cotangent per node input from a bwd rule's per-argument tuple, checked."""
    fun = _name(call.owner.fun)
    names = arg_names(call.owner.fun, call.n_args)
    nd = call.owner.nondiff_argnums
    slots = [k for k in range(call.n_args) if k not in nd]  # JAX: none for nondiff_argnums
    if not isinstance(cts, (tuple, list)) or len(cts) != len(slots):
        got = f"{len(cts)} cotangents" if isinstance(cts, (tuple, list)) else describe(cts)
        which = "differentiable positional" if nd else "positional"
        raise TypeError(
            f"{rule} of {fun} returned {got}; expected a tuple of {len(slots)}, one per "
            f"{which} argument of {fun} ({', '.join(names[k] for k in slots)}), None for no "
            "gradient"
        )
    full: list[Any] = [None] * call.n_args
    for k, c in zip(slots, cts):
        full[k] = c
    cts = full
    flat: list[Any] = []
    for name, tree, c in zip(names, call.arg_trees, cts):
        if c is None:
            flat.extend([None] * tree.num_leaves)
            continue
        leaves, got = optree.tree_flatten(c, none_is_leaf=False)
        if got != tree:
            raise TypeError(
                f"{rule} of {fun} returned a cotangent for argument {name!r} with structure "
                f"{got}; expected the argument's structure {tree}"
            )
        flat.extend(leaves)
    out = []
    for k, i in enumerate(call.dyn):
        c, x = flat[i], xs[k]
        if c is not None and tuple(np.shape(c)) != x.shape:
            name = names[_arg_of(call, i)]
            raise ValueError(
                f"{rule} of {fun} returned a cotangent of shape {tuple(np.shape(c))} for "
                f"argument {name!r}; expected {x.shape} (the argument's shape)"
            )
        out.append(c if x.dtype.kind == "f" else None)
    return out


def _arg_of(call: _Call, leaf: int) -> int:
    pos = 0
    for a, t in enumerate(call.arg_trees):
        pos += t.num_leaves
        if leaf < pos:
            return a
    return call.n_args - 1


def _emit(kind: str, owner: Any, args: tuple) -> Any:
    """Trace `owner.fun(*args)` and put one `custom` node per output leaf in the trace."""
    ctx = current_trace(kind)
    tr = trace_tree(owner.fun, args, {})
    if tr.captured:
        raise TypeError(
            f"{kind} function {_name(owner.fun)} reads a value traced by an enclosing "
            "transformation from its closure; pass that value as an argument instead"
        )
    if tr.draws:
        raise TypeError(
            f"{kind} function {_name(owner.fun)} draws random numbers; its rules could not "
            "see the same draw. Draw outside it and pass the noise in as an argument"
        )
    call = _Call(kind, owner, args, tr)
    ins = [ctx.lift(call.leaves[i]).value for i in call.dyn]
    loc = user_location()
    outs = []
    for k, v in enumerate(tr.graph.outputs):
        body = Graph(tr.graph.inputs, tr.graph.nodes, (v,))
        live = body.live_values()
        body = body.keep_nodes(lambda n, live=live: any(o in live for o in n.outputs))
        val = ctx.builder.add(CUSTOM, ins, {"body": body, "rule": _Rule(call, k)}, loc=loc)
        outs.append(Tracer(ctx, val))
    return optree.tree_unflatten(tr.out_tree, outs)


class _CustomFunction:
    kind = ""

    def __init__(self, fun: Callable, nondiff_argnums: tuple[int, ...] = ()) -> None:
        if not callable(fun):
            raise TypeError(f"{self.kind} expects a callable, got {type(fun).__name__}")
        self.fun = fun
        # JAX's convention: these arguments are passed first to the rules and get no
        # tangent or cotangent (their gradient is zero)
        self.nondiff_argnums = tuple(sorted(int(i) for i in nondiff_argnums))
        functools.update_wrapper(self, fun, updated=())

    def _ready(self) -> bool:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(
                f"{self.kind} function {_name(self.fun)}: pass arguments by position "
                f"(got keywords {sorted(kwargs)}), so each one has a cotangent slot"
            )
        if not active_contexts():  # no transformation: the function itself
            return self.fun(*args)
        if not self._ready():
            raise TypeError(f"{self.kind} function {_name(self.fun)} has no rule yet: {self.hint}")
        return _emit(self.kind, self, args)


class custom_vjp(_CustomFunction):  # noqa: N801  (JAX's name)
    """`@custom_vjp` then `f.defvjp(fwd, bwd)`: `fwd(*args) -> (out, residuals)`,
    `bwd(*nondiff_args, residuals, ct) -> tuple` with one cotangent per differentiable
    positional argument (None: zero)."""

    kind = "custom_vjp"
    hint = "call f.defvjp(fwd, bwd)"
    fwd: Callable | None = None
    bwd: Callable | None = None

    def defvjp(self, fwd: Callable, bwd: Callable) -> custom_vjp:
        """Set the forward (output and residuals) and backward (cotangents) rules."""
        if not (callable(fwd) and callable(bwd)):
            raise TypeError("custom_vjp.defvjp(fwd, bwd) needs two callables")
        self.fwd, self.bwd = fwd, bwd
        return self

    def _ready(self) -> bool:
        return self.fwd is not None


class custom_jvp(_CustomFunction):  # noqa: N801  (JAX's name)
    """`@custom_jvp` then `@f.defjvp def rule(*nondiff_args, primals, tangents)` returning
    `(out, tangent_out)`; primals and tangents leave out `nondiff_argnums`."""

    kind = "custom_jvp"
    hint = "decorate a rule with @f.defjvp"
    jvp_rule: Callable | None = None

    def defjvp(self, rule: Callable) -> Callable:
        """Set the rule `(primals, tangents) -> (out, tangent_out)`; returns it (a decorator)."""
        if not callable(rule):
            raise TypeError("custom_jvp.defjvp needs a callable")
        self.jvp_rule = rule
        return rule

    def _ready(self) -> bool:
        return self.jvp_rule is not None


class _StopRule(CustomRule):
    differentiable = False  # the drivers never ask it for a rule: zero gradient and tangent

    def __str__(self) -> str:
        return "stop_gradient"

    __repr__ = __str__


_STOP = _StopRule()


def stop_gradient(x: Any) -> Any:
    """`x` unchanged, but every transformation treats it as a constant (zero gradient)."""
    if not active_contexts():
        return x
    ctx = current_trace("stop_gradient")

    def stop(leaf: Any) -> Any:
        if not isinstance(leaf, Tracer) or leaf.dtype.kind != "f":
            return leaf
        t = ctx.lift(leaf)
        v = Value(t.type)
        body = Graph((v,), (), (v,))  # the identity
        return Tracer(ctx, ctx.builder.add(CUSTOM, [t.value], {"body": body, "rule": _STOP}))

    return optree.tree_map(stop, x, none_is_leaf=False)
