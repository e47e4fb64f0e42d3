"""`scan`, `fori_loop` and `while_loop`: loops traced once into a loop node, not unrolled.

The step (or cond/body) is traced once, in a nested trace, at the carry's and one x slice's
types; values it closes over from the enclosing trace become the node's leading operands
(`consts`). The node holds the traced step as its `body` attribute (see
`compiler/primitives/control.py`). Outside any trace the loop runs eagerly on the
interpreter, so these functions also work on plain arrays.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import optree

from compiler.ir.graph import OUT_TYPES_RULES, Graph, ShapeError
from compiler.ir.types import TensorType
from compiler.trace.creation import active_contexts
from compiler.trace.entry import trace_tree
from compiler.trace.tracer import TraceContext, Tracer, TracerError, user_location

# The enclosing transform's memory mode: with "sqrt", a scan without an explicit
# `checkpoint` stores every ceil(sqrt(length))-th carry (set by the API while it traces).
_MEMORY: contextvars.ContextVar[str | None] = contextvars.ContextVar("gradc_loop_memory")


@contextlib.contextmanager
def loop_memory(mode: str | None) -> Iterator[None]:
    """Trace loops under the transform's `memory` option (see `scan(checkpoint=...)`)."""
    token = _MEMORY.set(mode)
    try:
        yield
    finally:
        _MEMORY.reset(token)


def _where(fn: Callable) -> str:
    """`name (file:line)` of a user function, for error messages."""
    code = getattr(fn, "__code__", None)
    name = getattr(fn, "__name__", type(fn).__name__)
    if code is None:
        return f"`{name}`"
    return f"`{name}` ({code.co_filename}:{code.co_firstlineno})"


def _flat(tree: Any) -> tuple[list, Any]:
    return optree.tree_flatten(tree, none_is_leaf=False)


def _leaf_type(x: Any, what: str) -> TensorType:
    if isinstance(x, Tracer):
        return x.type
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{what}: a {type(x).__name__} leaf is not an array or scalar")
    return TensorType(arr.shape, arr.dtype)


def _proto(t: TensorType) -> np.ndarray:
    """A stand-in of type `t` for tracing the step (no memory: a broadcast zero)."""
    return np.broadcast_to(np.zeros((), t.dtype), t.shape)


def _trace_fn(
    fn: Callable, args: tuple, what: str, user: Callable | None = None
) -> tuple[Graph, list[Tracer], Any]:
    """Trace `fn(*args)` (args: pytrees of prototypes); return (body, captured, out_tree).
    `user` is the user's function `fn` wraps, named in errors."""
    try:
        tr = trace_tree(fn, args, {})
    except ShapeError as exc:
        raise ShapeError(f"{what}: tracing {_where(user or fn)}: {exc}") from None
    if tr.draws:
        raise TracerError(
            f"{what}: {_where(user or fn)} draws random numbers ({tr.draws[0].describe()}); a "
            "loop step is traced once, so it would draw once. Draw the noise for every step "
            "before the loop (rng.standard_normal((length, ...))) and pass it in as xs"
        )
    return tr.graph, tr.captured, tr.out_tree


def emit_loop(ctx: TraceContext, op: str, inputs: Sequence[Any], attrs: dict) -> list[Tracer]:
    """Append a loop node to ctx's graph (every output typed by the op's rule)."""
    vals = [ctx.lift(x).value for x in inputs]
    types = OUT_TYPES_RULES[op]([v.type for v in vals], **attrs)
    outs = ctx.builder.add_node(op, vals, attrs, types, loc=ctx.loc or user_location())
    return [Tracer(ctx, v) for v in outs]


def _context() -> TraceContext | None:
    """The innermost active trace: the loop node goes there."""
    stack = active_contexts()
    return stack[-1] if stack else None


def _check_carry(
    fn: Callable, what: str, want: list[TensorType], tree: Any, got_g: Graph, got_tree: Any, k0: int
) -> None:
    """The step returned a carry of the same structure and types as it was given."""
    if got_tree != tree:
        raise TypeError(
            f"{what}: {_where(fn)} returns a carry structured {got_tree}, "
            f"but was given a carry structured {tree}"
        )
    got = [v.type for v in got_g.outputs[k0 : k0 + len(want)]]
    for i, (w, g) in enumerate(zip(want, got)):
        if w != g:
            raise TypeError(
                f"{what}: {_where(fn)} changes the carry: leaf {i} goes in as {w} and comes "
                f"out as {g}; a loop carry keeps its shape and dtype (cast it, e.g. "
                f"`.astype(np.{w.dtype.name})`, or start from an init of type {g})"
            )


def scan(
    step: Callable,
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    checkpoint: int | None = None,
) -> tuple[Any, Any]:
    """JAX's `lax.scan`: `carry, y = step(carry, x)` over the leading axis of `xs`.

    Returns `(final_carry, ys)` with the ys stacked on a new leading axis. Carries, xs and ys
    are pytrees (None allowed). The step is traced once. `checkpoint=k` stores every k-th
    carry for reverse mode and recomputes each block of k steps (memory ~ T/k + k carries
    and step residuals instead of T).
    """
    ctx = _context()
    if ctx is None:  # eager: trace this one call, run it on the interpreter
        return _eager(lambda i, x: scan(step, i, x, length, reverse, checkpoint), init, xs)
    what = "scan"
    init_l, c_tree = _flat(init)
    xs_l, x_tree = _flat(xs)
    c_types = [_leaf_type(c, f"{what} init") for c in init_l]
    x_types = [_leaf_type(x, f"{what} xs") for x in xs_l]
    lengths = {t.shape[0] for t in x_types if t.ndim}
    if any(t.ndim == 0 for t in x_types):
        raise ShapeError(f"{what}: xs leaves must have a leading axis to scan over (got 0-d)")
    if length is None:
        if not lengths:
            raise TypeError(f"{what}: pass `length` when there are no xs to scan over")
        length = lengths.pop() if len(lengths) == 1 else -1
    if lengths - {length} or length < 0:
        sizes = ", ".join(str(t) for t in x_types)
        raise ShapeError(
            f"{what}: xs leaves disagree on the scanned length ({sizes}; length={length})"
        )
    k = checkpoint
    if k is None and _MEMORY.get(None) == "sqrt" and length > 3:
        k = math.isqrt(length - 1) + 1
    k = int(k or 0)
    if k < 0:
        raise ValueError(f"{what}: checkpoint={checkpoint} must be a positive int")
    if k >= length or k == 1:
        k = 0  # one block, or a block per step: the plain reverse loop stores the same
    if k and length % k:
        return _split_scan(step, init, xs, length, reverse, k)
    c_protos = optree.tree_unflatten(c_tree, [_proto(t) for t in c_types])
    x_protos = optree.tree_unflatten(
        x_tree, [_proto(TensorType(t.shape[1:], t.dtype)) for t in x_types]
    )

    def flat_step(c, x):
        out = step(c, x)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"{what}: {_where(step)} must return a pair (carry, y)")
        return out

    g, captured, out_tree = _trace_fn(flat_step, (c_protos, x_protos), what, step)
    carry_tree = optree.tree_structure((c_protos, None), none_is_leaf=False)
    n_carry = len(c_types)
    # the output tree is ((carry...), (y...)); compare the carry part
    got_c, got_y = optree.tree_unflatten(out_tree, list(range(out_tree.num_leaves)))
    _check_carry(
        step, what, c_types, c_tree, g, optree.tree_structure(got_c, none_is_leaf=False), 0
    )
    del carry_tree
    # body inputs were (carry leaves, x leaves, captured); the node wants consts first
    n_cap = len(captured)
    body = Graph(
        tuple(g.inputs[len(g.inputs) - n_cap :]) + tuple(g.inputs[: len(g.inputs) - n_cap]),
        g.nodes,
        g.outputs,
    )
    attrs = {
        "body": body,
        "length": int(length),
        "reverse": bool(reverse),
        "n_consts": n_cap,
        "n_carry": n_carry,
        "save_every": 0,
        "checkpoint": k,
    }
    outs = emit_loop(ctx, "scan", [*captured, *init_l, *xs_l], attrs)
    y_tree = optree.tree_structure(got_y, none_is_leaf=False)
    carry = optree.tree_unflatten(c_tree, outs[:n_carry])
    ys = optree.tree_unflatten(y_tree, outs[n_carry:])
    return carry, ys


def _split_scan(step, init, xs, length, reverse, k):
    """A checkpointed scan whose length k does not divide: a divisible part, then the rest."""
    main = length - length % k

    def part(tree, a, b):
        return optree.tree_map(lambda x: x[a:b], tree, none_is_leaf=False)

    # the part that runs first covers positions [0, main) forward, [length - main, length) back
    first, second = (
        ((0, main), (main, length))
        if not reverse
        else ((length - main, length), (0, length - main))
    )
    c, ys1 = scan(step, init, part(xs, *first), first[1] - first[0], reverse, k)
    c, ys2 = scan(step, c, part(xs, *second), second[1] - second[0], reverse, 0)
    lo, hi = (ys1, ys2) if not reverse else (ys2, ys1)
    ys = optree.tree_map(lambda a, b: np.concatenate([a, b]), lo, hi, none_is_leaf=False)
    return c, ys


def _eager(fn: Callable, *args: Any) -> Any:
    from compiler.interpret import interpret
    from compiler.trace.entry import trace

    args = optree.tree_map(np.asarray, args, none_is_leaf=False)
    return interpret(trace(fn, *args), *args)


def while_loop(cond: Callable, body: Callable, init: Any, max_steps: int | None = None) -> Any:
    """`while cond(carry): carry = body(carry)`, traced once; returns the final carry.

    Reverse mode records the trip count and the carry entering each step, into a history
    of `max_steps` entries, then runs that many steps backwards; differentiating a
    while_loop therefore needs `max_steps` (running past it is an error).
    """
    ctx = _context()
    if ctx is None:
        return _eager(lambda i: while_loop(cond, body, i, max_steps), init)
    what = "while_loop"
    init_l, c_tree = _flat(init)
    c_types = [_leaf_type(c, f"{what} init") for c in init_l]
    protos = optree.tree_unflatten(c_tree, [_proto(t) for t in c_types])
    cg, c_cap, _ = _trace_fn(cond, (protos,), what)
    if len(cg.outputs) != 1 or cg.outputs[0].type != TensorType((), np.dtype(bool)):
        got = ", ".join(str(v.type) for v in cg.outputs)
        raise TypeError(
            f"{what}: the cond function {_where(cond)} must return a scalar bool (a 0-d "
            f"bool array, e.g. `x > 0` on a scalar or `np.all(...)`), got ({got})"
        )
    bg, b_cap, b_tree = _trace_fn(body, (protos,), what)
    _check_carry(body, what, c_types, c_tree, bg, b_tree, 0)
    consts = list({id(t): t for t in [*c_cap, *b_cap]}.values())  # one operand per value
    cond_g = _with_consts(cg, c_cap, consts, len(c_types))
    body_g = _with_consts(bg, b_cap, consts, len(c_types))
    attrs = {
        "cond": cond_g,
        "body": body_g,
        "n_consts": len(consts),
        "max_steps": int(max_steps or 0),
        "record": False,
    }
    outs = emit_loop(ctx, "while_loop", [*consts, *init_l], attrs)
    return optree.tree_unflatten(c_tree, outs)


def _with_consts(g: Graph, cap: list[Tracer], consts: list[Tracer], n_carry: int) -> Graph:
    """`g` (inputs: carries, then its captured values) taking (all consts, carries)."""
    from compiler.ir.graph import Builder, copy_into

    b = Builder()
    const_in = [b.add_input(t.type) for t in consts]
    carry_in = [b.add_input(v.type) for v in g.inputs[:n_carry]]
    pos = {id(t): i for i, t in enumerate(consts)}
    args = carry_in + [const_in[pos[id(t)]] for t in cap]
    return b.build(copy_into(b, g, args))


def fori_loop(
    lower: Any, upper: Any, body: Callable, init: Any, max_steps: int | None = None
) -> Any:
    """`for i in range(lower, upper): carry = body(i, carry)`, traced once.

    Python int bounds make a scan over `i` (reverse mode stores per-step residuals); traced
    bounds make a while_loop (reverse mode then needs `max_steps`).
    """
    if isinstance(lower, (int, np.integer)) and isinstance(upper, (int, np.integer)):
        idx = np.arange(int(lower), max(int(lower), int(upper)), dtype=np.int64)

        def step(c, i):
            return body(i, c), None

        carry, _ = scan(step, init, idx)
        return carry

    def cond(s):
        return s[0] < s[1]

    def wbody(s):
        i, hi, c = s
        return (i + 1, hi, body(i, c))

    lo = lower if isinstance(lower, Tracer) else np.int64(lower)
    hi = upper if isinstance(upper, Tracer) else np.int64(upper)
    return while_loop(cond, wbody, (lo, hi, init), max_steps)[2]


__all__ = ["TracerError", "fori_loop", "loop_memory", "scan", "while_loop"]
