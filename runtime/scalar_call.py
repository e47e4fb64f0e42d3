"""The scalar call path: a transformed function of Python floats, called as one generated
`__call__` that checks the arguments, does the float arithmetic and builds the result.

`f(params)` on the general path flattens the arguments, builds and hashes a signature key,
looks the entry up and calls compiled code that unboxes and boxes every scalar (~3 us in all);
the arithmetic itself takes a few dozen nanoseconds. So for a signature whose traced leaves are
all Python floats, whose lowered graph is all float64/bool scalars and whose result is plain
(grad, value_and_grad, jit), the API generates a `__call__` for that transformation (the
`seed` workload's, abridged):

    def __call__(self, a0=_NO, /, *rest, **kwargs):
        if rest or kwargs or _tracing[0] or a0 is _NO:    # the exact structure seen: argument
            return _general(self, ...)                     # count, container types, lengths,
        if type(a0) is not tuple or len(a0) != 4:         # dict keys, float leaves
            return _general(self, ...)                     # (`type(x) is float`) and the value
        (v0, v1, v2, v3) = a0                              # of every static leaf
        if type(v0) is not float or ...:
            return _general(self, ...)
        try:
            s1 = (v0 * v1)                                 # the lowered graph's ops on Python
            ...                                            # floats (codegen/pyscalar.py)
        except (ArithmeticError, ValueError):
            return _general(self, ...)                     # NumPy returns inf/nan here
        return (_f64(s4), (s7, s8, s5, s6, ))              # the general path's result types

`_general` is the transformation's ordinary `__call__`: it gives the errors for bad input and
NumPy's inf/nan where Python raised. The parameters are positional-only, so a keyword argument
of any name lands in `kwargs` and takes the general path. The check is stricter than the
signature key (a bool where an int was seen, a float subclass, a dict subclass all miss), never
looser. The result has the general path's types: the function's outputs NumPy scalars of their
dtype (what `out[()]` gives on a 0-d array), float gradients Python floats, pytrees rebuilt with
the same treedefs.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import optree

_NO = object()  # a parameter the caller did not pass
_BUILTINS = {b.__name__: b for b in (type, float, bool, tuple, list, dict, len, abs)}
_STATIC_TYPES = (int, bool, str)


class ScalarBody(Protocol):
    """Statements computing the stage on Python scalars (compiler.codegen.pyscalar.PyScalar):
    they read graph input `j` from the name `inputs[j]`."""

    inputs: tuple[str, ...]
    lines: tuple[str, ...]
    outputs: tuple[str, ...]
    out_types: tuple[str, ...]


class Layout(Protocol):
    """How the stage's flat outputs become the user's result (compiler.pipeline.Compiled)."""

    dyn: list[int]
    out_tree: Any
    n_out: int
    grad_trees: list
    grad_kinds: list
    single: bool


def build_scalar_call(
    body: ScalarBody,
    layout: Layout,
    mode: str,
    has_aux: bool,
    args: tuple,
    leaves: Sequence[Any],
    general: Callable[..., Any],
    tracing: list[int],
    constants: dict[str, Any],
) -> Callable[..., Any] | None:
    """A `__call__(self, *args, **kwargs)` that runs `body` for calls shaped like `args` and
    `general(self, *args, **kwargs)` for every other call (see the module docstring); None when
    the signature does not fit: some traced leaf is not a Python float, some argument is not a
    leaf or a flat tuple/list/dict of leaves, some gradient is not returned as a float.

    `tracing[0]` is nonzero while a trace is active on any thread (the general path then
    decides whether to inline); `constants` are names `body` reads."""
    if mode not in ("grad", "value_and_grad", "jit") or (has_aux and mode == "jit") or not args:
        return None
    if mode != "jit" and any(k != "float" for k in layout.grad_kinds):
        return None
    floats = [i for i, x in enumerate(leaves) if type(x) is float]
    if floats != list(layout.dyn) or len(floats) != len(body.inputs):
        return None
    guard = _Guard(dict(zip(floats, body.inputs)))
    for a in args:
        if not guard.argument(a):
            return None
    # the guard must bind exactly the leaves the flatten found, in its order: otherwise the
    # statements would read the wrong inputs
    if len(guard.leaves) != len(leaves) or any(x is not y for x, y in zip(guard.leaves, leaves)):
        return None
    namespace: dict[str, Any] = {
        "_NO": _NO,
        "_general": general,
        "_tracing": tracing,
        "math": math,
        "_f64": np.float64,
        "_b": np.bool_,
        **constants,
        **guard.constants,
    }
    result = _result(body, layout, mode, has_aux, namespace)
    if result is None:
        return None
    params = guard.params
    given = f"*(a for a in ({''.join(p + ', ' for p in params)}) if a is not _NO)"
    miss = f"return _general(self, {given}, *rest, **kwargs)"
    # no check that the last parameter was passed: every parameter's own check fails on _NO
    src = [f"def __call__(self, {''.join(p + '=_NO, ' for p in params)}/, *rest, **kwargs):"]
    src += ["    if rest or kwargs or _tracing[0]:", f"        {miss}"]
    for cond, then in guard.conditions():
        if cond:
            src += [f"    if {cond}:", f"        {miss}"]
        if then:
            src.append(f"    {then}")
    src.append("    try:")
    src += [f"        {line}" for line in body.lines] or ["        pass"]
    src.append("    except (ArithmeticError, ValueError):")
    src.append(f"        {miss}")
    src.append(f"    return {result}")
    # every name the function reads is a closure variable (LOAD_DEREF) rather than a global or
    # builtin: about 20 machine instructions less per load, of ~2,000 for the seed's call
    closure = {**_BUILTINS, **namespace}
    text = "\n".join(src) + "\n"
    maker = f"def _make({', '.join(closure)}):\n" + textwrap.indent(text, "    ")
    maker += "    return __call__\n"
    scope: dict[str, Any] = {}
    exec(compile(maker, "<gradc scalar call>", "exec"), scope)
    fn = scope["_make"](**closure)
    fn.source = text
    return fn


class _Guard:
    """The checks that the arguments have the structure, float leaves and static values of the
    ones the call path was built for; each traced leaf is bound to its graph input's name."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names  # leaf index -> input name, for the traced leaves
        self.leaves: list[Any] = []
        self.params: list[str] = []  # one name per argument
        self.constants: dict[str, Any] = {}
        self.steps: list[tuple[str, str]] = []  # (miss condition, statement after it)
        self.top_floats: list[str] = []  # arguments that are Python floats themselves

    def argument(self, a: Any) -> bool:
        """Add the checks for the next argument, `a` as seen; False if it does not fit."""
        expr = f"a{len(self.params)}"
        t = type(a)
        if t is float or t in _STATIC_TYPES:
            expr, cond = self._leaf(a, expr)  # a top-level float is named as its input
            if t is float:
                self.top_floats.append(expr)
            else:
                self.steps.append((cond, ""))
        elif a is None:  # an empty pytree node: no leaf
            self.steps.append((f"{expr} is not None", ""))
        elif t is tuple or t is list:
            if not all(_is_leaf(x) for x in a):
                return False
            pairs = [self._leaf(x, f"{expr}_{j}") for j, x in enumerate(a)]
            unpack = f"({''.join(n + ', ' for n, _ in pairs)}) = {expr}" if a else ""
            self.steps.append(
                (f"type({expr}) is not {t.__name__} or len({expr}) != {len(a)}", unpack)
            )
            floats = [n for (n, _), x in zip(pairs, a) if type(x) is float]
            conds = [c for (_, c), x in zip(pairs, a) if type(x) is not float]
            self.steps.append((" or ".join(c for c in [_not_floats(floats), *conds] if c), ""))
        elif t is dict:
            if not all(type(key) is str and _is_leaf(x) for key, x in a.items()):
                return False
            self.steps.append((f"type({expr}) is not dict or len({expr}) != {len(a)}", ""))
            for j, key in enumerate(sorted(a)):  # optree's leaf order for str keys
                name, cond = self._leaf(a[key], f"{expr}_{j}")
                self.steps.append(("", f"{name} = {expr}.get({key!r}, _NO)"))
                self.steps.append((cond, ""))
        else:
            return False
        self.params.append(expr)
        return True

    def conditions(self) -> list[tuple[str, str]]:
        """(miss condition, statement after it), in order: the top-level floats first."""
        return [(_not_floats(self.top_floats), ""), *self.steps]

    def _leaf(self, x: Any, default: str) -> tuple[str, str]:
        """The next leaf's name, and the condition under which a call's leaf there differs."""
        index = len(self.leaves)
        self.leaves.append(x)
        t = type(x)
        if t is float:
            name = self.names[index]
            return name, f"type({name}) is not float"
        k = f"_k{index}"
        self.constants[k] = x
        if t is bool:
            return default, f"{default} is not {k}"
        return default, f"type({default}) is not {t.__name__} or {default} != {k}"


def _not_floats(names: list[str]) -> str:
    """A condition true unless every name holds a Python float (one chained comparison: fewer
    bytecodes than one `type(x) is not float` per name)."""
    if not names:
        return ""
    return f"not (float is {' is '.join(f'type({n})' for n in names)})"


def _is_leaf(x: Any) -> bool:
    return type(x) is float or type(x) in _STATIC_TYPES


def _result(
    body: ScalarBody, layout: Layout, mode: str, has_aux: bool, namespace: dict[str, Any]
) -> str | None:
    outs, types = body.outputs, body.out_types
    n_out = layout.n_out
    if len(outs) < n_out:
        return None
    # the function's outputs: NumPy scalars of their dtype, as `out[()]` gives on 0-d arrays
    boxed = [f"{'_f64' if ty == 'float' else '_b'}({o})" for o, ty in zip(outs, types)]
    if layout.out_tree.is_leaf() and n_out == 1:
        primal = boxed[0]
    else:
        namespace["_out_tree"] = layout.out_tree
        primal = f"_out_tree.unflatten([{', '.join(boxed[:n_out])}])"
    if mode == "jit":
        return primal if len(outs) == n_out else None
    grad_outs = outs[n_out:]
    if any(ty != "float" for ty in types[n_out:]):
        return None
    if len(grad_outs) != sum(t.num_leaves for t in layout.grad_trees):
        return None
    parts, pos = [], 0
    for k, tree in enumerate(layout.grad_trees):
        leaves = list(grad_outs[pos : pos + tree.num_leaves])
        pos += tree.num_leaves
        if tree.is_leaf():
            parts.append(leaves[0])
        elif tree.kind == optree.PyTreeKind.TUPLE and tree.num_nodes == tree.num_leaves + 1:
            parts.append(f"({''.join(x + ', ' for x in leaves)})")
        else:
            namespace[f"_grad_tree{k}"] = tree
            parts.append(f"_grad_tree{k}.unflatten([{', '.join(leaves)}])")
    grads = parts[0] if layout.single else f"({''.join(p + ', ' for p in parts)})"
    if mode == "grad":
        return f"({grads}, {primal}[1])" if has_aux else grads
    return f"({primal}, {grads})"
