"""Data-parallel gradients on a Dask cluster (`pip install gradc[distributed]`).

    from compiler.distributed import value_and_grad
    f = value_and_grad(loss, reduce="mean")      # loss(params, X, y) averages over rows
    value, grads = f(params, X, y)               # X, y: dask.array, chunked along axis 0

Each chunk runs gradc's compiled value_and_grad on a worker; Dask's tree reduction sums the
partials. See docs/distributed.md.
"""

from __future__ import annotations

from compiler.distributed.gradient import REDUCTIONS, DaskValueAndGrad, value_and_grad
from compiler.distributed.shipping import worker_stats

__all__ = ["REDUCTIONS", "DaskValueAndGrad", "value_and_grad", "worker_stats"]
