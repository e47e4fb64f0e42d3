"""`gradc check`: gradc's gradient against central finite differences, and where it goes wrong.

The oracle is the user's function run eagerly by NumPy in float64. When the compiled gradient
disagrees, the same comparison is repeated on the interpreter's run of each stage (the joint
graph, then the optimized graph) to tell an autodiff fault from a pass or codegen fault; an
autodiff fault is then pinned to the first node whose VJP rule, applied to that node's actual
inputs, disagrees with finite differences of that node alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optree

from compiler.api import jit, value_and_grad
from compiler.cli.localize import NodeFault, first_bad_node
from compiler.interpret import run_graph
from compiler.logging_setup import slow
from compiler.passes import ALGEBRAIC_PASSES
from compiler.pipeline import Stages
from compiler.trace.entry import STATIC, leaf_kind

log = logging.getLogger("gradc")

MAX_ENTRIES = 64  # leaves up to this size are checked entry by entry, larger along directions
N_DIRECTIONS = 4


@dataclass
class LeafCheck:
    name: str
    err: float  # max |<g,d> - fd| / scale over the directions
    tol: float
    how: str

    @property
    def ok(self) -> bool:
        return bool(self.err <= self.tol)


@dataclass
class CheckReport:
    ok: bool
    backend: str
    value: float
    leaves: list[LeafCheck] = field(default_factory=list)
    verdict: str = ""
    fault: NodeFault | None = None
    stage: str | None = None  # where it went wrong: tracer, autodiff, pass:<name>, passes, codegen

    def format(self) -> str:
        lines = [f"value = {self.value!r}   (backend: {self.backend})"]
        for c in self.leaves:
            mark = "ok  " if c.ok else "FAIL"
            lines.append(f"  {mark} d/d{c.name:<12} rel err {c.err:.2e} (tol {c.tol:.0e}, {c.how})")
        lines.append(self.verdict)
        return "\n".join(lines)


@dataclass
class _Leaf:
    name: str
    arg: int  # position of its argument
    index: int  # position among that argument's leaves
    x: Any
    dirs: list[np.ndarray]
    fd: list[float]
    tol: float
    how: str


def _eager(fun: Callable, args: Sequence[Any]) -> Callable[[Sequence[Any]], float]:
    """args -> float(fun(*args)) in float64, by NumPy itself (the interpreter if that fails)."""

    def up(x: Any) -> Any:
        if isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind == "f":
            return np.asarray(x, dtype=np.float64)
        return x

    def call(a: Sequence[Any]) -> float:
        return float(np.asarray(fun(*optree.tree_map(up, list(a)))))

    try:
        with np.errstate(all="ignore"):
            call(args)
        return call
    except Exception as exc:  # e.g. code using gradc-only features: fall back to the interpreter
        log.info("check: NumPy cannot run the function eagerly (%s); using the interpreter", exc)
        fallback = jit(fun, backend="interpret")
        return lambda a: float(np.asarray(fallback(*optree.tree_map(up, list(a)))))


def _replace_leaf(args: Sequence[Any], arg: int, index: int, new: Any) -> list[Any]:
    leaves, tree = optree.tree_flatten(args[arg], none_is_leaf=False)
    leaves[index] = new
    out = list(args)
    out[arg] = optree.tree_unflatten(tree, leaves)
    return out


def _directions(x: Any, rng: np.random.Generator) -> tuple[list[np.ndarray], str]:
    shape = np.shape(x)
    size = int(np.prod(shape, dtype=np.int64))
    if size <= MAX_ENTRIES:
        dirs = []
        for k in range(size):
            e = np.zeros(size)
            e[k] = 1.0
            dirs.append(e.reshape(shape))
        return dirs, "every entry" if size > 1 else "scalar"
    dirs = [rng.standard_normal(shape) for _ in range(N_DIRECTIONS)]
    return [d / np.linalg.norm(d) for d in dirs], f"{N_DIRECTIONS} random directions"


def _finite_differences(f64, args, leaf: _Leaf) -> None:
    x = np.asarray(leaf.x, dtype=np.float64)
    h = 1e-6 * max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)
    is_py = isinstance(leaf.x, float)
    for d in leaf.dirs:
        hi, lo = x + h * d, x - h * d
        if is_py:
            hi, lo = float(hi), float(lo)
        with np.errstate(all="ignore"):
            fp = f64(_replace_leaf(args, leaf.arg, leaf.index, hi))
            fm = f64(_replace_leaf(args, leaf.arg, leaf.index, lo))
        leaf.fd.append((fp - fm) / (2 * h))


def _compare(leaf: _Leaf, g: Any) -> float:
    g = np.asarray(g, dtype=np.float64)
    if g.shape != np.shape(leaf.x):
        return float("inf")
    gd = np.array([float(np.sum(g * d)) for d in leaf.dirs])
    fd = np.array(leaf.fd)
    if not (np.all(np.isfinite(gd)) and np.all(np.isfinite(fd))):
        return 0.0 if np.array_equal(gd, fd, equal_nan=True) else float("inf")
    scale = max(float(np.linalg.norm(g)), float(np.max(np.abs(fd), initial=0.0)), 1e-12)
    return float(np.max(np.abs(gd - fd), initial=0.0) / scale)


def check_gradients(
    fun: Callable,
    args: Sequence[Any],
    argnums: Sequence[int] = (0,),
    *,
    names: Sequence[str] | None = None,
    backend: str | None = None,
    disable: Sequence[str] = (),
    tol: float | None = None,
    seed: int = 0,
    compile: str | None = None,
) -> CheckReport:
    """Compare gradc's gradient of scalar `fun` at `args` with finite differences; localise.
    `compile` (docs/tiers.md): "eager" checks compiled code, "never" the NumPy tier."""
    args = list(args)
    argnums = tuple(int(a) % len(args) for a in argnums)
    names = list(names) if names is not None else [f"arg{i}" for i in range(len(args))]
    vg = value_and_grad(
        fun, argnums=argnums, backend=backend, disable=tuple(disable), compile=compile
    )
    with slow(f"check: compiling the gradient of {getattr(fun, '__name__', 'fun')}"):
        value, grads = vg(*args)
    f64 = _eager(fun, args)
    rng = np.random.default_rng(seed)
    leaves: list[_Leaf] = []
    for a in argnums:
        sub = optree.tree_flatten(args[a], none_is_leaf=False)[0]
        for j, x in enumerate(sub):
            is32 = getattr(x, "dtype", None) == np.float32
            t = tol if tol is not None else (2e-3 if is32 else 1e-5)
            name = names[a] if len(sub) == 1 else f"{names[a]}[{j}]"
            dirs, how = _directions(x, rng)
            leaf = _Leaf(name, a, j, x, dirs, [], t, how)
            _finite_differences(f64, args, leaf)
            leaves.append(leaf)
    flat_grads = optree.tree_leaves(grads, none_is_leaf=False)
    report = CheckReport(True, vg.backend, float(np.asarray(value)))
    report.leaves = [
        LeafCheck(lf.name, _compare(lf, g), lf.tol, lf.how) for lf, g in zip(leaves, flat_grads)
    ]
    ref_value = f64(args)
    value_ok = np.isclose(
        report.value,
        ref_value,
        rtol=1e-4 if any(lf.tol > 1e-4 for lf in leaves) else 1e-9,
        atol=1e-12,
    )
    report.ok = bool(value_ok and all(c.ok for c in report.leaves))
    if report.ok:
        report.verdict = "gradients agree with central finite differences"
        return report
    if not value_ok:
        report.stage = "tracer"
        report.verdict = (
            f"the compiled value {report.value!r} differs from NumPy's {ref_value!r}: the traced "
            "graph computes a different function (a tracer bug, or code that reads global state)"
        )
        return report
    _localise(report, fun, args, argnums, leaves, disable, rng)
    return report


def _stage_ok(graph, flat, leaves: list[_Leaf], n_out: int) -> bool:
    with np.errstate(all="ignore"):
        outs = run_graph(graph, flat)
    return all(_compare(lf, g) <= lf.tol for lf, g in zip(leaves, outs[n_out:]))


def _flat_inputs(args: Sequence[Any]) -> list[Any]:
    """The graph inputs for `args`: every non-static leaf, in order."""
    leaves = optree.tree_leaves((tuple(args), {}), none_is_leaf=False)
    return [x for x in leaves if leaf_kind(x) != STATIC]


def _localise(report, fun, args, argnums, leaves, disable, rng) -> None:
    """Fill in report.stage, .verdict and .fault: which stage first gets the gradient wrong."""
    st = _interpreted_stages(fun, args, argnums, disable)
    traced, flat = st.traced, _flat_inputs(args)
    n_out = len(traced.outputs)
    if not _stage_ok(st.grad, flat, leaves, n_out):
        report.stage = "autodiff"
        report.fault = first_bad_node(traced, flat, _wrt_inputs(args, argnums), rng)
        custom = sorted({str(n.attrs["rule"]) for n in traced.nodes if n.op == "custom"})
        report.verdict = (
            report.fault.describe()
            if report.fault
            else (
                "the function uses user-defined derivative rules ("
                + ", ".join(custom)
                + "), whose gradient is by design not the finite-difference one"
            )
            if custom
            else (
                "every node's VJP agrees with finite differences on its own inputs; "
                "the function may be non-smooth here (abs, maximum, where) or the "
                "autodiff driver (fan-out sums, unbroadcasting) is at fault"
            )
        )
    elif not _stage_ok(st.passes, flat, leaves, n_out):
        culprit = _bisect_passes(fun, args, argnums, leaves, disable)
        report.stage = f"pass:{culprit}" if culprit else "passes"
        blame = f"disabling pass {culprit!r} fixes it" if culprit else "no single pass is to blame"
        report.verdict = f"the joint graph's gradient is right, the optimized one wrong; {blame}"
    else:
        report.stage = "codegen"
        report.verdict = (
            f"the interpreter gets the right gradient from the optimized graph but the "
            f"{report.backend} backend does not: a code generation bug "
            "(see `gradc ir --stage kernel`)"
        )


def _interpreted_stages(fun, args, argnums, disable) -> Stages:
    vg = value_and_grad(fun, argnums=argnums, backend="interpret", disable=tuple(disable))
    return vg.stages(*args)


def _wrt_inputs(args, argnums) -> list[int]:
    """Graph input positions of the differentiated leaves (static leaves are not inputs)."""
    out, pos = [], 0
    for i, a in enumerate(args):
        for x in optree.tree_leaves(a, none_is_leaf=False):
            if leaf_kind(x) == STATIC:
                continue
            if i in argnums:
                out.append(pos)
            pos += 1
    return out


def _bisect_passes(fun, args, argnums, leaves, disable) -> str | None:
    """The default pass whose removal alone makes the optimized gradient right, if any."""
    flat = _flat_inputs(args)
    for name in ALGEBRAIC_PASSES:
        if name in disable:
            continue
        st = _interpreted_stages(fun, args, argnums, (*disable, name))
        if _stage_ok(st.passes, flat, leaves, len(st.traced.outputs)):
            return name
    return None
