"""Find the first node of a traced graph whose VJP rule is wrong at the actual inputs.

The graph is run node by node on the interpreter to get every node's real operands. Each
node on the path from the differentiated inputs is then checked alone: a one-node graph
(float operands promoted to float64 so that finite differences are accurate) goes through
`vjp_graph`, exactly as the full graph does, and `<vjp(ct), t>` is compared with
`<ct, (f(x + h t) - f(x - h t)) / 2h>` for random `ct` and `t`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.autodiff import vjp_graph
from compiler.interpret import run_graph, run_node
from compiler.ir.graph import Builder, Graph, Node
from compiler.ir.types import TensorType
from compiler.primitives import OPS

NODE_TOL = 1e-4


@dataclass
class NodeFault:
    index: int  # position of the node in the traced graph
    op: str
    loc: str | None  # the user's source line
    input: int  # which operand's VJP is off
    err: float
    types: str  # "f64[3,4], f64[4]"
    rule: str  # the op's documented gradient convention

    def describe(self) -> str:
        where = f" at {self.loc}" if self.loc else ""
        rule = f"; the rule should give: {self.rule}" if self.rule else ""
        return (
            f"the VJP of node %{self.index} `{self.op}`({self.types}){where} is off for "
            f"operand {self.input} (rel err {self.err:.2e}){rule}"
        )


def first_bad_node(
    graph: Graph, flat: Sequence[Any], wrt: Sequence[int], rng: np.random.Generator
) -> NodeFault | None:
    """The first node, in graph order, whose VJP disagrees with its finite differences."""
    env = {v: np.asarray(a).astype(v.dtype, copy=False) for v, a in zip(graph.inputs, flat)}
    dep = {graph.inputs[i] for i in wrt if graph.inputs[i].type.is_float}
    for index, n in enumerate(graph.nodes):
        vals = [env[v] for v in n.inputs]
        with np.errstate(all="ignore"):
            env.update(zip(n.outputs, run_node(n, vals)))
        op = OPS.get(n.op)
        active = [i for i, v in enumerate(n.inputs) if v in dep]
        if op is None or not op.differentiable or not active:
            continue
        dep.update(v for v in n.outputs if v.type.is_float)
        fault = check_node(n, vals, active, rng)
        if fault is not None:
            i, err = fault
            types = ", ".join(str(v.type) for v in n.inputs)
            return NodeFault(index + len(graph.inputs), n.op, n.loc, i, err, types, op.grad_doc)
    return None


def _promoted(n: Node) -> Graph:
    """A one-node graph of `n`, float operands as float64 (the original types if that fails)."""
    for widen in (True, False):
        b = Builder()
        ins = [
            b.add_input(TensorType(v.shape, np.float64) if widen and v.type.is_float else v.type)
            for v in n.inputs
        ]
        try:
            out = b.add(n.op, ins, n.attrs)
        except Exception:
            continue
        return b.build([out])
    raise AssertionError(f"{n.op}: cannot rebuild the node alone")


def check_node(
    n: Node, vals: Sequence[np.ndarray], active: Sequence[int], rng: np.random.Generator
) -> tuple[int, float] | None:
    """(operand, rel err) of the first active operand whose VJP is off, or None."""
    mini = _promoted(n)
    x = [np.asarray(a).astype(v.dtype) for a, v in zip(vals, mini.inputs)]
    out_t = mini.outputs[0].type
    if not out_t.is_float:
        return None
    joint = vjp_graph(mini, list(active), seeds="input", ct_outputs=(0,))
    ct = rng.standard_normal(out_t.shape).astype(out_t.dtype)
    with np.errstate(all="ignore"):
        grads = run_graph(joint, [*x, ct])[1:]
    tol = NODE_TOL if out_t.dtype == np.float64 else 1e-2
    for i, g in zip(active, grads):
        t = rng.standard_normal(x[i].shape)
        vjp_dot = float(np.sum(np.asarray(g, dtype=np.float64) * t))
        scale = float(np.max(np.abs(x[i]), initial=0.0))
        errs = []
        for h in (1e-6, 1e-8):  # a second, smaller step tells a kink from a wrong rule
            fd = _node_fd(mini, x, i, t, ct, h * max(1.0, scale))
            if not (np.isfinite(fd) and np.isfinite(vjp_dot)):
                break
            denom = max(abs(fd), abs(vjp_dot), 1e-8 * float(np.linalg.norm(g)) + 1e-30)
            errs.append(abs(fd - vjp_dot) / denom)
        if len(errs) == 2 and min(errs) > tol:
            return i, min(errs)
    return None


def _node_fd(mini: Graph, x: list, i: int, t: np.ndarray, ct: np.ndarray, h: float) -> float:
    hi, lo = list(x), list(x)
    hi[i] = (x[i] + h * t).astype(x[i].dtype)
    lo[i] = (x[i] - h * t).astype(x[i].dtype)
    with np.errstate(all="ignore"):
        yp = np.asarray(run_graph(mini, hi)[0], dtype=np.float64)
        ym = np.asarray(run_graph(mini, lo)[0], dtype=np.float64)
    return float(np.sum(ct * (yp - ym))) / (2 * h)
