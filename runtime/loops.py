"""The loops that run `scan` and `while_loop` nodes, around a step callable.

One implementation serves both backends: the interpreter passes a step that evaluates the
body graph on the ops' NumPy references, compiled stages pass the body's compiled stage
(its kernels compiled once, whatever the trip count). Outputs are written into arrays the
caller allocated (the interpreter's fresh arrays, or the compiled driver's planned buffers),
so the loop itself allocates only what the step returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Step = Callable[..., Sequence[Any]]


class LoopError(RuntimeError):
    """A loop could not run as traced (a while_loop past its `max_steps`)."""


def run_scan(
    step: Step,
    consts: Sequence[Any],
    carries: Sequence[Any],
    xs: Sequence[np.ndarray],
    ys_out: Sequence[np.ndarray],
    saved_out: Sequence[np.ndarray],
    length: int,
    reverse: bool,
    save_every: int,
) -> list[Any]:
    """Run `carry, y = step(*consts, *carry, *x_t)` over t; return the final carries.

    `ys_out[j][t]` receives the j-th y of the step at position t (position, not iteration:
    a reverse scan fills them from the end, as JAX does). With `save_every = k`, block
    `m` of `saved_out[i]` receives the i-th carry entering positions `[m*k, (m+1)*k)` in the
    scan's direction: what a checkpointed reverse pass restarts each block from.
    """
    carries = list(carries)
    n_carry = len(carries)
    blocks = length // save_every if save_every else 0
    for it in range(length):
        t = length - 1 - it if reverse else it
        if save_every and it % save_every == 0:
            m = it // save_every
            m = blocks - 1 - m if reverse else m
            for s, c in zip(saved_out, carries):
                s[m] = c
        outs = step(*consts, *carries, *[x[t] for x in xs])
        carries = list(outs[:n_carry])
        for y, o in zip(ys_out, outs[n_carry:]):
            y[t] = o
    return carries


def run_while(
    cond: Step,
    body: Step,
    consts: Sequence[Any],
    carries: Sequence[Any],
    max_steps: int,
    history_out: Sequence[np.ndarray] = (),
) -> tuple[list[Any], int]:
    """Run `carry = body(*consts, *carry)` while `cond(*consts, *carry)`; return the final
    carries and the trip count. `history_out[i][j]` receives the i-th carry entering step j
    (reverse mode replays the steps from them). `max_steps` > 0 bounds the trip count."""
    carries = list(carries)
    count = 0
    while bool(np.asarray(cond(*consts, *carries)[0])):
        if max_steps and count >= max_steps:
            raise LoopError(
                f"while_loop: still running after max_steps={max_steps} steps; "
                "raise max_steps (it sizes the carry history reverse mode keeps)"
            )
        for h, c in zip(history_out, carries):
            h[count] = c
        carries = list(body(*consts, *carries))
        count += 1
    return carries, count
