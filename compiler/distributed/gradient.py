"""value_and_grad over Dask arrays: each chunk's value and gradient is computed by gradc's
compiled value_and_grad on a worker, and the partial results are summed by a tree reduction of
Dask tasks (`split_every` partials per combine task, the shape of Dask's own reductions).

One call builds this graph:

    shared (one node per call) ───┐
    data chunk i (the Dask array) ┴─► partial i = (rows, value, grads) ─► tree sum ─► client

`shared` holds the shipped loss and the non-data arguments. Every chunk task depends on that one
node, so it reaches each worker once per call (computed on one worker, fetched by the others),
not once per chunk. It is a node of the graph rather than data put on the workers with
`Client.scatter`, because scattered data has no recipe: Dask's active memory manager trims a
broadcast down to one replica, and when the worker holding it dies the call fails ("lost
scattered data, which can't be recovered"), seen in the killed-worker test. A graph node is
recomputed elsewhere like any other task.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import dask
import optree

from compiler.distributed.layout import Layout, batch_layout
from compiler.distributed.shipping import Options, RemoteLoss, count_chunk, ship
from compiler.pipeline import BACKENDS, COMPILE_MODES
from compiler.plan import Policy

REDUCTIONS = ("sum", "mean")
SPLIT_EVERY = 8  # partials per combine task (dask.bag's default fan-in)


class DaskValueAndGrad:
    """`f(*args)` -> `(value, grads)` with the data arguments as Dask arrays (see module doc)."""

    def __init__(
        self,
        fun: Callable,
        argnums: int | Sequence[int],
        reduce: str,
        split_every: int | None,
        client: Any,
        options: Options,
    ) -> None:
        if not callable(fun):
            raise TypeError(
                f"distributed.value_and_grad expects a callable, got {type(fun).__name__}"
            )
        if reduce not in REDUCTIONS:
            raise ValueError(
                f"distributed.value_and_grad: reduce={reduce!r}; choose 'sum' (the loss sums "
                "over the batch axis) or 'mean' (it averages over it)"
            )
        if split_every is not None and (not isinstance(split_every, int) or split_every < 2):
            raise ValueError(
                f"distributed.value_and_grad: split_every={split_every!r} must be an int >= 2 "
                "(partials combined per reduction task)"
            )
        self.fun = fun
        self.argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        self.reduce = reduce
        self.split_every = split_every
        self.client = client
        self.options = options
        self._remote: RemoteLoss | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        layout = batch_layout(self.fun, args, kwargs, self.argnums)
        if self._remote is None:  # pickled on first use, as a trace is made on first use
            self._remote = ship(self.fun, self.options)
        rest = tuple(None if i in layout.data else a for i, a in enumerate(args))
        shared = (self._remote, rest, kwargs)
        # one graph node per call, not a Client.scatter: see the module docstring
        ref = dask.delayed(shared, traverse=False, name=f"gradc-shared-{uuid.uuid4().hex}")
        total = self._graph(ref, args, layout)
        client = self.client if self.client is not None else _default_client()
        if client is None:  # no cluster: Dask's local scheduler (threads unless configured)
            rows, value, grads = total.compute()
        else:
            rows, value, grads = client.compute(total, sync=True)
        if self.reduce == "mean":
            value = value / rows
            grads = optree.tree_map(lambda g: g / rows, grads, none_is_leaf=False)
        return value, grads

    def _graph(self, ref: Any, args: Sequence[Any], layout: Layout) -> Any:
        """The Dask graph of one call: a partial per non-empty chunk, then the tree sum."""
        blocks = [args[i].to_delayed(optimize_graph=False).reshape(-1) for i in layout.data]
        weighted = self.reduce == "mean"
        parts = [
            dask.delayed(_chunk_partial, pure=False)(
                ref, layout.data, weighted, *[b[k] for b in blocks]
            )
            for k, n in enumerate(layout.chunks)
            if n > 0  # an empty chunk adds nothing to a sum, and a mean over it is undefined
        ]
        return _tree_sum(parts, self.split_every or SPLIT_EVERY)


def _tree_sum(parts: list, split_every: int) -> Any:
    """Sum the partials `split_every` at a time, level by level, as Dask's reductions do.

    Built from delayed tasks rather than `dask.bag.Bag.reduction`: after fusion the Bag keeps an
    alias task per partition, which measured 1.8x the scheduling time per chunk (64 chunks, 2
    workers: 300 vs 169 ms per call); see docs/distributed.md."""
    while len(parts) > 1:
        parts = [
            dask.delayed(_sum_partials, pure=False)(parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]


def _chunk_partial(
    shared: tuple[RemoteLoss, tuple, dict], data: tuple[int, ...], weighted: bool, *blocks: Any
) -> tuple[int, Any, Any]:
    """On a worker: `(rows, value, grads)` of one chunk (weighted by rows for a mean)."""
    remote, rest, kwargs = shared
    args = list(rest)
    for i, block in zip(data, blocks):
        args[i] = block
    value, grads = remote.transform()(*args, **kwargs)
    rows = int(blocks[0].shape[0])
    if weighted:
        value = value * rows
        grads = optree.tree_map(lambda g: g * rows, grads, none_is_leaf=False)
    count_chunk()
    return rows, value, grads


def _sum_partials(parts: Sequence[tuple[int, Any, Any]]) -> tuple[int, Any, Any]:
    """Sum partial (rows, value, grads) triples; new arrays, never into a partial, since Dask
    may hand the same partial to a retried task."""
    parts = list(parts)
    rows, value, grads = parts[0]
    for r, v, g in parts[1:]:
        rows += r
        value = value + v
        grads = optree.tree_map(operator.add, grads, g, none_is_leaf=False)
    return rows, value, grads


def _default_client() -> Any:
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no Client in this process: use Dask's local scheduler
        return None


def value_and_grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    reduce: str = "sum",
    *,
    split_every: int | None = None,
    client: Any = None,
    backend: str | None = None,
    disable: Sequence[str] = (),
    memory: str | None = None,
    memory_budget: int | None = None,
    compile: str | None = None,
) -> DaskValueAndGrad:
    """`value_and_grad(loss)(params, X, y)` with X, y Dask arrays chunked along axis 0: the
    whole dataset's value and gradient, each chunk computed by compiled code on a worker."""
    argnums = _check_argnums(argnums)
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if compile is not None and compile not in COMPILE_MODES:
        raise ValueError(f"unknown compile={compile!r}; choose one of {COMPILE_MODES}")
    Policy(memory=memory, memory_budget=memory_budget)  # checked here, not on every worker
    options = Options(argnums, backend, tuple(disable), memory, memory_budget, compile)
    return DaskValueAndGrad(fun, argnums, reduce, split_every, client, options)


def _check_argnums(argnums: Any) -> int | tuple[int, ...]:
    many = isinstance(argnums, (tuple, list))
    items = tuple(argnums) if many else (argnums,)
    if not any(isinstance(a, bool) for a in items):
        try:
            ints = tuple(operator.index(a) for a in items)
        except TypeError:
            pass
        else:
            return ints if many else ints[0]
    raise TypeError(
        f"distributed.value_and_grad: argnums must be an int or a tuple of ints, got {argnums!r}"
    )
