"""Uniform runners for the implementations being compared: gradc, hand-written NumPy, JAX, torch.

``Framework.prepare(workload, params, data)`` returns a ``Runner`` (or ``None`` when the
framework has no version of the workload). ``Runner.call()`` is the timed unit: one full
value-and-gradient evaluation, finished (JAX results are blocked on). ``Runner.call_numpy()``
returns ``(float value, grads pytree of NumPy arrays / floats)`` for comparison.

Threading must be configured before NumPy, JAX or torch is imported: see ``run.thread_env``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from workloads import Workload, tree_flatten, tree_unflatten


class Runner:
    def __init__(
        self,
        call: Callable[[], Any],
        to_numpy: Callable[[Any], tuple[float, Any]],
        settle: Callable[[], None] | None = None,
    ):
        self.call = call
        self._to_numpy = to_numpy
        # gradc: wait for the background compile (the steady state is the compiled tier)
        self.settle = settle

    def call_numpy(self) -> tuple[float, Any]:
        return self._to_numpy(self.call())


class Framework:
    name = "?"

    def prepare(self, w: Workload, params, data) -> Runner | None:
        raise NotImplementedError


def _as_numpy_tree(tree):
    leaves, spec = tree_flatten(tree)
    out = [leaf if isinstance(leaf, float) else np.asarray(leaf) for leaf in leaves]
    return tree_unflatten(spec, out)


class NumpyFramework(Framework):
    name = "NumPy"

    def prepare(self, w, params, data):
        return Runner(
            lambda: w.numpy_vg(params, *data), lambda out: (float(out[0]), _as_numpy_tree(out[1]))
        )


class GradcFramework(Framework):
    name = "gradc"

    def __init__(self):
        from compiler import value_and_grad

        self.value_and_grad = value_and_grad
        self._compiled: dict[str, Callable] = {}

    def function(self, w: Workload) -> Callable:
        """One ``value_and_grad`` object per workload, so later calls hit its cache."""
        if w.name not in self._compiled:
            self._compiled[w.name] = self.value_and_grad(w.loss, **w.gradc_options)
        return self._compiled[w.name]

    def memory(self, w: Workload) -> dict:
        """Bytes gradc holds between calls and what its plans say, over compiled signatures.

        ``held``: the stages' arena buffer sets (allocated on the first call, reused by every
        later one, so a steady call's tracemalloc peak does not show them); ``planned``: the
        arena size the buffer plan of the compiled graphs asks for (intermediates, inputs and
        outputs excluded); ``plan_stage``: the planner's own peak for its (pre-fusion) graph.
        """
        out = {"held": 0, "planned": 0, "plan_stage": 0}
        fn = self._compiled.get(w.name)
        for spec in getattr(fn, "_cache", {}).values():
            for stage in (getattr(spec, "fn", None), getattr(spec, "bwd", None)):
                arena = getattr(stage, "arena", None)
                if arena is not None:
                    out["held"] += arena.nbytes * arena.num_sets
                bufs = getattr(stage, "buffers", None)
                if bufs is not None:
                    out["planned"] += bufs.peak_bytes
            stages = getattr(spec, "stages", None)
            plan = getattr(stages, "plan", None)
            if plan is not None:
                out["plan_stage"] += plan.peak_bytes
        return out

    def prepare(self, w, params, data):
        fn = self.function(w)
        from runtime import background

        return Runner(
            lambda: fn(params, *data),
            lambda out: (float(out[0]), _as_numpy_tree(out[1])),
            settle=background.wait_idle,
        )


class JaxFramework(Framework):
    name = "JAX"

    def __init__(self):
        import jax

        jax.config.update("jax_enable_x64", True)
        self.jax = jax
        self._jitted: dict[str, Callable] = {}

    def function(self, w: Workload) -> Callable | None:
        if w.name not in self._jitted:
            loss = w.jax_loss()
            self._jitted[w.name] = (
                None if loss is None else self.jax.jit(self.jax.value_and_grad(loss))
            )
        return self._jitted[w.name]

    def to_device(self, tree):
        leaves, spec = tree_flatten(tree)
        return tree_unflatten(spec, [self.jax.device_put(np.asarray(x)) for x in leaves])

    def prepare(self, w, params, data):
        fn = self.function(w)
        if fn is None:
            return None
        jparams = self.to_device(params)
        jdata = self.to_device(tuple(data))
        block = self.jax.block_until_ready

        def call():
            return block(fn(jparams, *jdata))

        def to_numpy(out):
            value, grads = out
            leaves, spec = tree_flatten(grads)
            plain, _ = tree_flatten(params)
            conv = [
                float(g) if isinstance(p, float) else np.asarray(g) for g, p in zip(leaves, plain)
            ]
            return float(value), tree_unflatten(spec, conv)

        return Runner(call, to_numpy)


class TorchFramework(Framework):
    name = "PyTorch"

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or parallel work already started
            pass
        self.torch = torch

    def loss(self, w):
        return w.torch_loss()

    def prepare(self, w, params, data):
        loss = self.loss(w)
        if loss is None:
            return None
        torch = self.torch
        leaves, spec = tree_flatten(params)
        # leaves share memory with the NumPy parameters; Python floats become 0-d tensors
        tleaves = [
            (
                torch.from_numpy(x)
                if isinstance(x, np.ndarray)
                else torch.tensor(x, dtype=torch.float64)
            ).requires_grad_()
            for x in leaves
        ]
        tparams = tree_unflatten(spec, tleaves)
        tdata = [torch.from_numpy(np.ascontiguousarray(d)) for d in data]

        def call():
            for t in tleaves:
                t.grad = None  # what optimizer.zero_grad() does by default
            value = loss(tparams, *tdata)
            value.backward()
            return value

        def to_numpy(value):
            grads = [
                t.grad.item() if isinstance(x, float) else t.grad.numpy()
                for t, x in zip(tleaves, leaves)
            ]
            return float(value.item()), tree_unflatten(spec, grads)

        return Runner(call, to_numpy)


class TorchCompileFramework(TorchFramework):
    """PyTorch with the loss compiled by `torch.compile` (inductor; backward via AOTAutograd)."""

    name = "torch.compile"

    def __init__(self, threads: int):
        super().__init__(threads)
        self._compiled: dict[str, Callable | None] = {}

    def loss(self, w):
        if w.name not in self._compiled:
            loss = w.torch_loss()
            self._compiled[w.name] = None if loss is None else self.torch.compile(loss)
        return self._compiled[w.name]


def available_frameworks(threads: int) -> list[Framework]:
    """JAX, PyTorch and torch.compile, those that import."""
    found: list[Framework] = []
    for make in (
        JaxFramework,
        lambda: TorchFramework(threads),
        lambda: TorchCompileFramework(threads),
    ):
        try:
            found.append(make())
        except ImportError:
            pass
    return found
