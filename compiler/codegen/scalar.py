"""The all-scalar driver: one njit function computing every 0-d value in local variables.

For graphs whose values are all 0-d (the `seed` workload), a Python driver would pay a kernel
call (~0.2 us) and a 0-d array (~0.1 us) per node; one njit function keeps every value in a
register and costs one dispatch (~0.2 us for four float arguments) plus boxing the results.
The Python entry point turns the returned scalars into fresh 0-d arrays (~0.08 us each), which
is cheaper than returning arrays from njit (~0.3 us each, measured).
"""

from __future__ import annotations

import numpy as np

from compiler.codegen.loops import is_elementwise
from compiler.codegen.pyscalar import ALIAS_OPS
from compiler.codegen.source import NJIT, Source, ctor
from compiler.ir.graph import Graph, Value
from compiler.primitives import CONST_OPS, OPS


def scalar_eligible(graph: Graph) -> bool:
    """Every value is 0-d and every op is elementwise, a constant or a 0-d identity."""
    if any(v.ndim for v in graph.inputs) or any(v.ndim for v in graph.outputs):
        return False
    return _body_ok(graph)


def _body_ok(graph: Graph) -> bool:
    for n in graph.nodes:
        if any(v.ndim for v in n.outputs) or any(v.ndim for v in n.inputs):
            return False
        if n.op == "fused":
            if not _body_ok(n.attrs["body"]):
                return False
        elif not (is_elementwise(n.op) or n.op in ALIAS_OPS or n.op in CONST_OPS):
            return False
    return True


class ScalarDriver:
    """Generates `_body` (njit) and `driver(*params, *inputs)`; collects the params."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.params: list[object] = []
        self.src = Source()
        self.count = 0

    def fresh(self) -> str:
        self.count += 1
        return f"s{self.count}"

    def generate(self) -> str:
        g = self.graph
        ins = [f"v{k}" for k in range(len(g.inputs))]
        body = Source()
        body.line(NJIT)
        env: dict[Value, str] = {}
        lines: list[str] = []
        for k, v in enumerate(g.inputs):
            # a Python scalar or a 0-d array; LLVM removes the temporary 0-d array
            lines.append(f"v{k} = {ctor(v.dtype)}(np.asarray(v{k})[()])")
            env[v] = f"v{k}"
        self.lower(g, env, lines)
        params = [f"c{j}" for j in range(len(self.params))]
        args = ", ".join(params + ins)
        with body.block(f"def _body({args}):"):
            for line in lines:
                body.line(line)
            outs = [env[v] for v in g.outputs]
            body.line(f"return ({', '.join(outs)},)")
        self.src.lines.extend(body.lines)
        self.src.line()
        self.src.line()
        rets = []
        for k, v in enumerate(g.outputs):
            dt = "" if v.dtype in (np.float64, np.bool_, np.int64) else f", {ctor(v.dtype)}"
            rets.append(f"_A(r[{k}]{dt})")
        with self.src.block(f"def driver({args}, _body=_body, _A=np.array):"):
            self.src.line(f"r = _body({args})")
            self.src.line(f"return [{', '.join(rets)}]")
        return self.src.text()

    def lower(self, g: Graph, env: dict[Value, str], lines: list[str]) -> None:
        for n in g.nodes:
            if n.op == "fused":
                body = n.attrs["body"]
                sub = dict(zip(body.inputs, (env[v] for v in n.inputs)))
                self.lower(body, sub, lines)
                env.update(zip(n.outputs, (sub[v] for v in body.outputs)))
            elif n.op in ALIAS_OPS:
                env[n.out] = env[n.inputs[0]]
            elif n.op == "const":
                env[n.out] = self.param(n.attrs["value"].array[()])
            elif n.op == "full":
                env[n.out] = self.param(np.dtype(n.attrs["dtype"]).type(n.attrs["fill"]))
            else:
                name = self.fresh()
                tmpl = OPS[n.op].codegen.template
                expr = tmpl.format(*(env[v] for v in n.inputs), T=ctor(n.out.dtype))
                lines.append(f"{name} = {expr}")
                env[n.out] = name

    def param(self, value: object) -> str:
        # Python floats/ints/bools type faster in Numba's dispatcher than NumPy scalars and
        # mean the same float64/int64/bool; other dtypes keep their NumPy scalar type
        if isinstance(value, (np.float64, np.int64, np.bool_)):
            value = value.item()
        self.params.append(value)
        return f"c{len(self.params) - 1}"
