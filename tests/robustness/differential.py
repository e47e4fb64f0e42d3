"""The oracles a random program is checked against (shared by the tests and campaign.py).

For one `Program`:
- forward: `jit(outputs)` on both backends returns what NumPy itself returns for every
  intermediate value (same dtype and shape, close values);
- gradients: `value_and_grad(loss)` on the Numba backend equals the interpreter's, the value
  equals NumPy's, and (for `fd` programs) the gradients match central finite differences;
- the Numba backend both as it runs small inputs (loops as NumPy calls until hot) and with
  every loop forced into its generated kernel;
- the caller's input arrays are unchanged;
- optionally, any of `configs()`: each transform (`grad`, `value_and_grad`, `jit`, `vjp`)
  with each memory policy and with each pass disabled in turn, against the same references.
"""

from __future__ import annotations

import contextlib
import copy
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optree

from compiler import grad, jit, value_and_grad, vjp
from compiler.passes import PIPELINE
from tests.robustness.programs import F32, Program

# the memory policies a gradient can be planned with (`memory=`, `memory_budget=`)
MEMORY = {
    "default": {},
    "sqrt": {"memory": "sqrt"},
    "budget0": {"memory_budget": 0},
    "budget4k": {"memory_budget": 4096},
}
TRANSFORMS = ("grad", "value_and_grad", "jit", "vjp")
VJP_CT = 0.75  # the cotangent a vjp check pulls back


@dataclass(frozen=True)
class Config:
    """One way to compile a program: a transform, a memory policy, passes turned off."""

    transform: str
    memory: str = "default"
    disable: tuple[str, ...] = ()
    backend: str = "numba"

    def __str__(self) -> str:
        off = f", disable={','.join(self.disable)}" if self.disable else ""
        return f"{self.transform}[{self.backend}, memory={self.memory}{off}]"


def configs(backend: str = "numba") -> list[Config]:
    """Every transform with every memory policy it takes, and with each pass disabled in turn
    (only the gradient transforms take a memory policy)."""
    out = []
    for t in TRANSFORMS:
        for m in MEMORY if t in ("grad", "value_and_grad") else ("default",):
            out.append(Config(t, m, (), backend))
        for p in PIPELINE:  # every named pass of the compile pipeline, lowering included
            out.append(Config(t, "default", (p,), backend))
    return out


@contextlib.contextmanager
def kernels_always() -> Iterator[None]:
    """Functions transformed inside compile eagerly (GRADC_COMPILE=eager, docs/tiers.md) and
    run every loop as its Numba kernel, whatever its size.

    The test suite runs on the NumPy tier by default (tests/conftest.py); and a stage built
    outside the pipeline runs a small loop as one NumPy call per op until it is hot, so small
    test inputs would never reach the generated kernels (codegen's SMALL_LOOP threshold).
    """
    import compiler.codegen.driver as drv

    old = getattr(drv, "SMALL_LOOP", None)
    old_mode = os.environ.get("GRADC_COMPILE")
    os.environ["GRADC_COMPILE"] = "eager"
    if old is not None:
        drv.SMALL_LOOP = 0
    try:
        yield
    finally:
        if old is not None:
            drv.SMALL_LOOP = old
        if old_mode is None:
            del os.environ["GRADC_COMPILE"]
        else:
            os.environ["GRADC_COMPILE"] = old_mode


def _tol(dtype: np.dtype) -> float:
    return 2e-4 if np.dtype(dtype) == F32 else 1e-9


def compare(got, want, what: str, tol: float | None = None) -> list[str]:
    """Problems (empty if none) between pytrees `got` and `want`: structure, dtype, shape,
    values (exact for bools, NaN equal to NaN, rtol+atol scaled by the array's size)."""
    g_leaves, g_tree = optree.tree_flatten(got, none_is_leaf=True)
    w_leaves, w_tree = optree.tree_flatten(want, none_is_leaf=True)
    if g_tree != w_tree:
        return [f"{what}: structure {g_tree} != {w_tree}"]
    out = []
    for k, (g, w) in enumerate(zip(g_leaves, w_leaves)):
        g, w = np.asarray(g), np.asarray(w)
        where = f"{what}[{k}]"
        if g.shape != w.shape:
            out.append(f"{where}: shape {g.shape} != {w.shape}")
        elif g.dtype != w.dtype:
            out.append(f"{where}: dtype {g.dtype} != {w.dtype}")
        elif w.dtype.kind == "b":
            if not np.array_equal(g, w):
                out.append(f"{where}: {g.tolist()} != {w.tolist()}")
        else:
            t = tol if tol is not None else _tol(w.dtype)
            finite = w[np.isfinite(w)]
            scale = 1.0 + (float(np.abs(finite).max()) if finite.size else 0.0)
            if not np.allclose(g, w, rtol=t, atol=t * scale, equal_nan=True):
                err = np.abs(g.astype(np.float64) - w)
                out.append(
                    f"{where}: max abs error {np.nanmax(err):.3g} (scale {scale:.3g}, tol {t})"
                    f"\n  got  {np.array2string(g, precision=6, threshold=20)}"
                    f"\n  want {np.array2string(w, precision=6, threshold=20)}"
                )
    return out


def _run(fn, args, what: str, problems: list[str]):
    try:
        with np.errstate(all="ignore"):
            return fn(*args)
    except Exception as exc:
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        problems.append(f"{what} raised {tb[:600]}")
        return None


def fd_grad_typed(f: Callable, xs: Sequence[Any], i: int, eps: float = 1e-6) -> Any:
    """Central differences of scalar f w.r.t. xs[i], keeping every argument's kind (a Python
    float stays a float, a NumPy scalar stays immutable), so f means what the program means."""

    def at(k: Any, step: float) -> float:
        args = [a if isinstance(a, (float, np.generic)) else a.copy() for a in xs]
        x = xs[i]
        if isinstance(x, (float, np.generic)):
            args[i] = type(x)(x + step)
        else:
            args[i][k] += step
        with np.errstate(all="ignore"):
            return float(f(*args))

    x = xs[i]
    if isinstance(x, (float, np.generic)):
        return (at(None, eps) - at(None, -eps)) / (2 * eps)
    g = np.zeros(np.shape(x))
    for k in np.ndindex(g.shape):
        g[k] = (at(k, eps) - at(k, -eps)) / (2 * eps)
    return g


def check_config(prog: Program, cfg: Config, ref: Any = None) -> list[str]:
    """Problems with `prog` compiled as `cfg`: forward values against NumPy, gradients (and
    values) against the interpreter's `value_and_grad` with default settings (`ref`)."""
    outputs, loss = prog.functions()
    xs = prog.inputs()
    problems: list[str] = []
    tol = _tol(F32) if "float32" in prog.text() + repr(prog.args) else None
    argnums = tuple(range(len(xs)))
    opts: dict = {"backend": cfg.backend, "disable": cfg.disable}
    with np.errstate(all="ignore"):
        want = outputs(*copy.deepcopy(xs))
        want_loss = loss(*copy.deepcopy(xs))
    if cfg.transform == "jit":
        got = _run(jit(outputs, **opts), xs, str(cfg), problems)
        if got is not None:
            problems += compare(got, want, f"{cfg} vs numpy", tol)
        return problems
    if ref is None:
        ref = _run(value_and_grad(loss, argnums=argnums, backend="interpret"), xs, "ref", problems)
        if ref is None:
            return problems
    if cfg.transform == "vjp":
        res = _run(lambda *a: vjp(loss, *a, **opts), xs, str(cfg), problems)
        if res is not None:
            out, pullback = res
            problems += compare(out, want_loss, f"{cfg} value vs numpy", tol)
            ct = np.asarray(VJP_CT, dtype=np.asarray(want_loss).dtype)
            got = _run(pullback, [ct], f"{cfg} pullback", problems)
            scaled = optree.tree_map(lambda g: g * VJP_CT, ref[1])
            if got is not None:
                problems += compare(got, scaled, f"{cfg} pullback vs grads[interpret]", tol)
        return problems
    mem = MEMORY[cfg.memory]
    fn = (grad if cfg.transform == "grad" else value_and_grad)(loss, argnums=argnums, **opts, **mem)
    got = _run(fn, xs, str(cfg), problems)
    if got is not None:
        want_g = ref[1] if cfg.transform == "grad" else ref
        problems += compare(got, want_g, f"{cfg} vs value_and_grad[interpret]", tol)
    return problems


def check_program(
    prog: Program, fd: bool = True, kernels: str = "both", extra: Sequence[Config] = ()
) -> list[str]:
    """Every problem found with `prog` (see the module docstring); empty when it passes.

    The Numba backend runs as configured ("tiered": small loops as NumPy calls), with every
    loop forced into its kernel ("kernels"), or "both". `extra` configs are checked too.
    """
    outputs, loss = prog.functions()
    xs = prog.inputs()
    before = copy.deepcopy(xs)
    problems: list[str] = []
    # float32 anywhere makes float64 results downstream of it only float32-accurate
    tol = _tol(F32) if "float32" in prog.text() + repr(prog.args) else None
    with np.errstate(all="ignore"):
        want = outputs(*copy.deepcopy(xs))
        want_loss = loss(*copy.deepcopy(xs))
    variants = {"both": ["tiered", "kernels"]}.get(kernels, [kernels])
    got = _run(jit(outputs, backend="interpret"), xs, "jit[interpret]", problems)
    if got is not None:
        problems += compare(got, want, "jit[interpret] vs numpy", tol)
    argnums = tuple(range(len(xs)))
    ref = _run(
        value_and_grad(loss, argnums=argnums, backend="interpret"), xs, "vg[interpret]", problems
    )
    if ref is not None:
        problems += compare(ref[0], want_loss, "vg[interpret] value vs numpy", tol)
    for variant in variants:
        with kernels_always() if variant == "kernels" else contextlib.nullcontext():
            f_jit = jit(outputs, backend="numba")
            f_vg = value_and_grad(loss, argnums=argnums, backend="numba")
            got = _run(f_jit, xs, f"jit[numba-{variant}]", problems)
            got_vg = _run(f_vg, xs, f"vg[numba-{variant}]", problems)
        if got is not None:
            problems += compare(got, want, f"jit[numba-{variant}] vs numpy", tol)
        if ref is not None and got_vg is not None:
            problems += compare(got_vg, ref, f"vg[numba-{variant}] vs vg[interpret]", tol)
    if ref is not None:
        for cfg in extra:
            problems += check_config(prog, cfg, ref)
    if ref is not None and fd and prog.fd:
        for i in argnums:
            want_g = fd_grad_typed(loss, xs, i)
            g = np.asarray(ref[1][i])
            scale = 1.0 + float(np.abs(want_g).max()) + 1e-3 * abs(float(want_loss))
            if not np.allclose(g, want_g, rtol=1e-5, atol=1e-6 * scale):
                problems.append(
                    f"grad {i} vs finite differences: max error "
                    f"{np.abs(g - want_g).max():.3g}\n  got {g.ravel()[:8]}\n  fd  "
                    f"{want_g.ravel()[:8]}"
                )
    for k, (a, b) in enumerate(zip(xs, before)):
        if type(a) is not type(b) or not np.array_equal(a, b):
            problems.append(f"input {k} was modified")
    return problems
