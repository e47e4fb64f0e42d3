"""The Python-float form of an all-scalar graph: one statement per op, on Python floats and bools
with the `math` module.

For a graph whose every value is a float64 or bool scalar (the `seed` workload, called with
Python floats) this is the fastest compiled form there is: a call into Numba costs ~0.3-0.5 us
before any arithmetic (dispatch, unboxing, boxing the results), the arithmetic itself a few
nanoseconds per op in the interpreter. The statements come from the same lowered graph the other
tiers run (`gradc ir --stage passes`); only the spelling of each op differs.

Python floats are IEEE doubles, so `+ - * /`, comparisons and `math`'s functions compute what
NumPy computes, within a few ulp for the transcendentals (libm against NumPy's own loops). They
differ where NumPy returns inf or nan: Python raises `ZeroDivisionError` (`x / 0.0`),
`OverflowError` (`math.exp(1000.0)`, `math.pow`) and `ValueError` (`math.log(-1.0)`,
`math.sqrt(-1.0)`, `math.sin(inf)`). Whoever runs these statements must treat
`ArithmeticError` and `ValueError` as "not this path" and run the call on an exact tier
(`compiler/scalar_call.py` does). `**` is spelled `math.pow`: Python's `(-8.0) ** 0.5` is a
complex number, not an error.

Ops are listed here explicitly (`_SAME` reuses the Numba template, `_PYTHON` spells it for
Python), so an op added later does not take this path until someone has checked its Python
spelling against NumPy at the edges (tests/codegen/test_pyscalar.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler.ir.graph import Graph, Value
from compiler.primitives import OPS, REDUCE_OPS

# Ops whose Numba scalar template (`OpDef.codegen.template`) means the same on Python floats,
# given the fallback on ArithmeticError/ValueError (module docstring).
_SAME = frozenset(
    {
        "abs",
        "add",
        "subtract",
        "multiply",
        "divide",
        "negative",
        "square",
        "exp",
        "expm1",
        "log",
        "log1p",
        "log2",
        "log10",
        "sqrt",
        "sin",
        "cos",
        "tanh",
        "sinh",
        "cosh",
        "arcsin",
        "arccos",
        "arctan",
        "arcsinh",
        "arccosh",
        "arctanh",
        "arctan2",
        "hypot",
        "erf",
        "erfc",
        "expit",
        "logit",
        "ndtr",
        "sign",
        "sinc",
        "heaviside",
        "xlogy",
        "xlog1py",
        "maximum",
        "minimum",
        "fmax",
        "fmin",
        "equal",
        "not_equal",
        "less",
        "less_equal",
        "greater",
        "greater_equal",
        "where",
        "astype",
    }
)
# Ops whose template would be wrong in Python: `**` can return a complex number, and `and`/`or`
# on floats return an operand instead of a bool. NumPy computes `x ** 0.5` as sqrt(x) (so
# (-0.0) ** 0.5 is -0.0 and (-inf) ** 0.5 is nan, where C's pow gives 0.0 and inf): so does this.
_PYTHON = {
    "power": "(math.sqrt({0}) if {1} == 0.5 else math.pow({0}, {1}))",
    "exp2": "math.pow(2.0, {0})",
    "fmod": "math.fmod({0}, {1})",
    "logical_and": "(bool({0}) and bool({1}))",
    "logical_or": "(bool({0}) or bool({1}))",
    "logical_not": "(not {0})",
}
# 0-d identities: a reshape, broadcast or reduction of a scalar is the scalar (every scalar
# code generator reads them so: codegen/scalar.py, llscalar.py)
ALIAS_OPS = frozenset({"broadcast_to", "reshape", "transpose"}) | REDUCE_OPS
_DTYPES = {np.dtype(np.float64): "float", np.dtype(np.bool_): "bool"}
# `{T}(1)` in a template: the literal, so the interpreter does not call float() at run time
_TYPED_LITERAL = re.compile(r"\{T\}\((-?[0-9.]+(?:e-?[0-9]+)?)\)")
# non-finite constants have no literal; the generated code finds them under these names
CONSTANTS = {"_inf": math.inf, "_nan": math.nan}


@dataclass(frozen=True)
class PyScalar:
    """Statements computing a graph on Python scalars.

    `inputs` are the names the statements read the graph inputs from (in order), `lines` the
    statements (one per op, in graph order), `outputs` one expression per graph output (a name,
    an input's name or a literal). The statements need `math` and `CONSTANTS` in scope."""

    inputs: tuple[str, ...]
    lines: tuple[str, ...]
    outputs: tuple[str, ...]
    out_types: tuple[str, ...]  # "float" or "bool", per output


def python_scalar(graph: Graph) -> PyScalar | None:
    """The graph as Python-float statements, or None when some value is not a float64/bool
    scalar or some op has no checked Python spelling."""
    if not all(_scalar(v) for v in (*graph.inputs, *graph.outputs)):
        return None
    inputs = tuple(f"v{k}" for k in range(len(graph.inputs)))
    env: dict[Value, str] = dict(zip(graph.inputs, inputs))
    lines: list[str] = []
    if not _lower(graph, env, lines):
        return None
    outputs = tuple(env[v] for v in graph.outputs)
    out_types = tuple(_DTYPES[np.dtype(v.dtype)] for v in graph.outputs)
    return PyScalar(inputs, tuple(lines), outputs, out_types)


def compile_python_scalar(graph: Graph) -> Callable[..., tuple] | None:
    """`fn(*inputs) -> tuple of outputs` on Python floats/bools (None: see `python_scalar`).

    It raises ArithmeticError or ValueError where NumPy would return inf or nan."""
    ps = python_scalar(graph)
    if ps is None:
        return None
    outs = "".join(f"{o}, " for o in ps.outputs)
    body = "".join(f"    {line}\n" for line in ps.lines)
    text = f"def scalar_fn({', '.join(ps.inputs)}):\n{body}    return ({outs})\n"
    namespace = {"math": math, **CONSTANTS}
    exec(compile(text, "<gradc python scalar>", "exec"), namespace)
    fn = namespace["scalar_fn"]
    fn.source = text
    return fn


def _scalar(v: Value) -> bool:
    return v.ndim == 0 and np.dtype(v.dtype) in _DTYPES


def _lower(g: Graph, env: dict[Value, str], lines: list[str]) -> bool:
    for n in g.nodes:
        if not all(_scalar(v) for v in (*n.inputs, *n.outputs)):
            return False
        if n.op == "fused":
            body = n.attrs["body"]
            sub = dict(zip(body.inputs, (env[v] for v in n.inputs)))
            if not _lower(body, sub, lines):
                return False
            env.update(zip(n.outputs, (sub[v] for v in body.outputs)))
        elif n.op in ALIAS_OPS:
            env[n.out] = env[n.inputs[0]]
        elif n.op == "const":
            env[n.out] = _literal(n.attrs["value"].array[()])
        elif n.op == "full":
            env[n.out] = _literal(np.dtype(n.attrs["dtype"]).type(n.attrs["fill"]))
        else:
            expr = _expression(n.op, [env[v] for v in n.inputs], np.dtype(n.out.dtype))
            if expr is None:
                return False
            name = f"s{len(lines) + 1}"
            lines.append(f"{name} = {expr}")
            env[n.out] = name
    return True


def _expression(op: str, args: list[str], dtype: np.dtype) -> str | None:
    if op == "power" and _is_literal(args[1]):  # a constant exponent: decided here
        sqrt = float(args[1].strip("()")) == 0.5
        return f"math.sqrt({args[0]})" if sqrt else f"math.pow({args[0]}, {args[1]})"
    if op in _PYTHON:
        return _PYTHON[op].format(*args)
    if op not in _SAME:
        return None
    tmpl = OPS[op].codegen.template
    ty = _DTYPES[dtype]
    if ty == "float":
        tmpl = _TYPED_LITERAL.sub(lambda m: repr(float(m.group(1))), tmpl)
    return "(" + tmpl.format(*args, T=ty) + ")"


def _is_literal(text: str) -> bool:
    try:
        float(text.strip("()"))
    except ValueError:
        return False
    return True


def _literal(value: object) -> str:
    """Python source for a float64 or bool constant (exact: `repr` round-trips a float)."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    x = float(value)
    if math.isnan(x):
        return "_nan"
    if math.isinf(x):
        return "_inf" if x > 0 else "(-_inf)"
    return f"({x!r})" if math.copysign(1.0, x) < 0 else repr(x)
