"""Random plain-NumPy programs over the whole op table, for differential testing.

A `Program` is Python source text: `outputs(x0, ...)` returns every intermediate value and
`loss(x0, ...)` a weighted sum of some of them, plus the seed its input values come from. The
generator (`generate`, driven by hypothesis through `programs()` so failures shrink, or by a
seeded RNG through `random_program(seed)` for campaigns) writes one line per step, choosing
an op family and operands from the values made so far (so values fan out), and runs each line
eagerly in NumPy on the program's actual inputs before keeping it. That is how it keeps every
value finite and bounded, every log/sqrt/divide inside its domain with a margin, and, in
programs checked against finite differences (`fd=True`), every kink (abs, maximum, max, clip,
where's condition...) at least `KINK` away from the inputs, so central differences are valid.

Families (every registry op family is reachable): unary and binary elementwise with
broadcasting and Python or array constants, comparisons and logical ops, where, casts,
reductions with axes and keepdims, reshape / transpose / broadcast_to / expand_dims /
squeeze / basic slicing (negative steps, integer indices), concatenate / stack, integer-array
indexing (take, two-array indices), writes (set_slice, scatter, scatter-add via np.add.at,
`t[idx] += w` with repeated indices, writes through views), matmul / dot, creation (zeros_like,
ones_like, full, eye).

Programs print as self-contained source (`Program.text()`), which is what a regression test
in the corpus holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from tests.robustness.families_memory import MemoryFamilies

F64, F32, BOOL = np.dtype("float64"), np.dtype("float32"), np.dtype("bool")
KINK = 1e-3  # distance kept from every kink in programs checked by finite differences
LIMIT = {F64: 1e4, F32: 1e3}  # largest magnitude a float value may reach
IN_LO, IN_HI = -2.0, 2.0


@dataclass(frozen=True)
class Program:
    """Source of `outputs` and `loss`, the input specs and the seed of the input values."""

    # (shape, dtype name) per input; the scalar kinds "float" (a Python float), "np.float64"
    # and "np.float32" (NumPy scalars) have shape ()
    args: tuple[tuple[tuple[int, ...], str], ...]
    body: tuple[str, ...]
    results: tuple[str, ...]  # names `outputs` returns, in order
    loss_expr: str
    fd: bool  # kinks avoided and all float64: gradients checkable by finite differences
    seed: int
    families: tuple[str, ...] = ()

    def text(self) -> str:
        """The program as Python source defining `outputs` and `loss`."""
        params = ", ".join(f"x{i}" for i in range(len(self.args)))
        body = "".join(f"    {line}\n" for line in self.body)
        return (
            f"def outputs({params}):\n{body}    return ({''.join(r + ', ' for r in self.results)})"
            f"\n\n\ndef loss({params}):\n{body}    return {self.loss_expr}\n"
        )

    def functions(self) -> tuple[Callable, Callable]:
        """(outputs, loss) as real Python functions."""
        return compile_program(self.text())

    def inputs(self) -> list[np.ndarray]:
        """The input arrays (fresh each call)."""
        return make_inputs(self.args, self.seed)

    def __repr__(self) -> str:
        return (
            f"Program(args={self.args!r}, fd={self.fd}, seed={self.seed}, "
            f"families={self.families!r})\n{self.text()}"
        )


def compile_program(text: str) -> tuple[Callable, Callable]:
    """Exec program source; return its (outputs, loss) functions."""
    ns: dict[str, Any] = {"np": np}
    exec(compile(text, "<gradc-random-program>", "exec"), ns)
    return ns["outputs"], ns["loss"]


SCALAR_KINDS = {"float": float, "np.float64": np.float64, "np.float32": np.float32}


def make_inputs(args, seed: int) -> list[Any]:
    """Uniform values in [IN_LO, IN_HI), one array (or scalar) per (shape, dtype) in `args`."""
    rng = np.random.default_rng(seed)
    out = []
    for shape, dt in args:
        x = rng.uniform(IN_LO, IN_HI, size=shape)
        out.append(SCALAR_KINDS[dt](x) if dt in SCALAR_KINDS else x.astype(dt))
    return out


# -- choices: hypothesis (shrinks) or a seeded RNG (campaigns) ----------------------------------


class Choices:
    """Where the generator's decisions come from."""

    def int(self, lo: int, hi: int) -> int:  # inclusive
        raise NotImplementedError

    def bool(self) -> bool:
        return self.int(0, 1) == 1

    def pick(self, options):
        options = list(options)
        return options[self.int(0, len(options) - 1)] if options else None

    def perm(self, items) -> list:
        items = list(items)
        out = []
        while items:
            out.append(items.pop(self.int(0, len(items) - 1)))
        return out


class DataChoices(Choices):
    """Decisions drawn by hypothesis (`st.data()` or a composite's `draw`): they shrink."""

    def __init__(self, draw: Callable) -> None:
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def pick(self, options):
        options = list(options)
        return self.draw(st.sampled_from(options)) if options else None


class RandomChoices(Choices):
    """Decisions from a seeded NumPy generator: uniform, fast, reproducible by seed."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))


# -- generation -----------------------------------------------------------------------------


@dataclass
class _Var:
    name: str
    value: Any  # an ndarray, or a Python float / NumPy scalar (immutable)

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.value)

    @property
    def dtype(self) -> np.dtype:
        return np.asarray(self.value).dtype

    @property
    def ndim(self) -> int:
        return np.ndim(self.value)

    @property
    def is_float(self) -> bool:
        return self.dtype.kind == "f"

    @property
    def scalar(self) -> bool:
        return isinstance(self.value, (float, np.generic))


def _broadcast(*shapes) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _lit(x: float) -> str:
    return repr(float(round(x, 3)))


def _const_array(shape: tuple[int, ...], dtype: np.dtype, salt: int) -> str:
    """A compact, deterministic, non-uniform constant array expression."""
    size = int(np.prod(shape, dtype=np.int64))
    base = f"np.linspace({_lit(-1.0 + 0.1 * salt)}, {_lit(1.5 - 0.07 * salt)}, {size})"
    if shape != (size,):
        base += f".reshape({shape!r})"
    if dtype == F32:
        base += ".astype(np.float32)"
    return base


@dataclass
class _Gen(MemoryFamilies):
    r: Choices
    fd: bool
    vars: list[_Var] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    count: int = 0

    # -- helpers ---------------------------------------------------------------------------
    def choice(self, options):
        return self.r.pick(options)

    def flag(self) -> bool:
        return self.r.bool()

    def pick(self, pred: Callable[[_Var], bool] = lambda v: True) -> _Var | None:
        return self.choice([v for v in self.vars if pred(v)])

    def floats(self, pred: Callable[[_Var], bool] = lambda v: True) -> _Var | None:
        return self.pick(lambda v: v.is_float and pred(v))

    def partner(self, a: _Var) -> _Var | None:
        """A float value that broadcasts with `a`."""
        return self.floats(lambda v: _broadcast(v.shape, a.shape) is not None)

    def fresh(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def try_lines(
        self, lines: list[str], name: str, kinks: Callable | None = None, also: tuple = ()
    ) -> bool:
        """Run `lines` on the current values (copies: the lines may write into them); keep
        them if `name` (and every name in `also`) comes out usable."""
        ns = {v.name: v.value if v.scalar else v.value.copy() for v in self.vars}
        ns["np"] = np
        try:
            with warnings.catch_warnings(), np.errstate(all="raise"):
                warnings.simplefilter("error")
                exec("\n".join(lines), ns)
                if self.fd and kinks is not None and kinks(ns) <= KINK:
                    return False
        except Exception:
            return False  # the candidate was not valid NumPy here, or left the safe domain
        for n in (name, *also):
            out = np.asarray(ns[n])
            if out.size == 0 or out.dtype.kind not in "fb" or out.size > 400:
                return False
            if out.dtype.kind == "f":
                if out.dtype not in LIMIT:  # float16 (np.exp of a bool): not supported by gradc
                    return False
                if self.fd and out.dtype != F64:
                    return False
                if not np.all(np.isfinite(out)) or np.abs(out).max() > LIMIT[out.dtype]:
                    return False
        self.lines.extend(lines)
        for n in (name, *also):
            val = ns[n]  # scalars as they are (their kind is what is tested), arrays copied
            self.vars.append(
                _Var(n, val if isinstance(val, (float, np.generic)) else np.array(val))
            )
        return True

    def assign(self, expr: str, kinks: Callable | None = None) -> bool:
        name = self.fresh()
        return self.try_lines([f"{name} = {expr}"], name, kinks)

    def operand(self, a: _Var, *, positive: bool = False) -> str:
        """Another operand for `a`: a broadcastable value, a Python scalar or a constant."""
        kind = self.choice(["var", "var", "scalar", "const"])
        if kind == "var":
            b = self.partner(a)
            if b is not None:
                if positive and np.min(b.value) <= 0.1:
                    return f"({b.name} * {b.name} + 1.0)"
                return b.name
        if kind == "const" and a.ndim:
            shape = self.choice([a.shape[-1:], (1,) * (a.ndim - 1) + a.shape[-1:], a.shape])
            return _const_array(tuple(shape), a.dtype, self.count % 7)
        return _lit(self.choice([0.5, 1.5, 2.0, 3.0] if positive else [-1.5, 0.5, 2.0, 3.0]))

    # -- families ----------------------------------------------------------------------------
    def unary(self) -> bool:
        a = self.floats()
        if a is None:
            return False
        x, v = a.name, a.value
        op = self.choice(
            ["negative", "exp", "log", "log1p", "expm1", "tanh", "sin", "cos", "sqrt",
             "square", "abs", "sign", "power", "reciprocal", "clip"]
        )  # fmt: skip
        kinks = None
        lo = float(np.min(v))
        if op == "negative":
            expr = self.choice([f"-{x}", f"np.negative({x})"])
        elif op in ("exp", "expm1"):
            expr = f"np.{op}({x})" if np.max(v) < 6 else f"np.{op}(np.tanh({x}))"
        elif op == "log":
            expr = f"np.log({x})" if lo > 0.05 else f"np.log({x} * {x} + 0.5)"
        elif op == "log1p":
            expr = f"np.log1p({x})" if lo > -0.9 else f"np.log1p({x} * {x})"
        elif op == "sqrt":
            expr = f"np.sqrt({x})" if lo > 0.05 else f"np.sqrt({x} * {x} + 0.5)"
        elif op == "square":
            expr = self.choice([f"np.square({x})", f"{x} ** 2", f"{x} * {x}"])
        elif op == "abs":
            expr = self.choice([f"np.abs({x})", f"abs({x})", f"np.absolute({x})"])
            kinks = lambda ns: np.min(np.abs(v))  # noqa: E731
        elif op == "sign":
            expr = f"np.sign({x})"
            kinks = lambda ns: np.min(np.abs(v))  # noqa: E731
        elif op == "power":
            e = self.choice([3, 0.5, 1.5, -1.0, "var"])
            if e == "var":
                b = self.floats(
                    lambda u: _broadcast(u.shape, a.shape) is not None and np.abs(u.value).max() < 3
                )
                e = b.name if b is not None else "2.5"
            if e == 3:
                expr = f"{x} ** 3"
            else:
                base = x if lo > 0.05 else f"({x} * {x} + 0.5)"
                expr = self.choice([f"{base} ** {e}", f"np.power({base}, {e})"])
        elif op == "reciprocal":
            den = x if np.min(np.abs(v)) > 0.1 else f"({x} * {x} + 1.0)"
            expr = self.choice([f"1.0 / {den}", f"np.reciprocal({den})"])
        elif op == "clip":
            expr = self.choice([f"np.clip({x}, -1.0, 1.0)", f"{x}.clip(-0.5, 1.5)"])
            kinks = lambda ns: min(  # noqa: E731
                np.min(np.abs(v + 1.0)), np.min(np.abs(v - 1.0)),
                np.min(np.abs(v + 0.5)), np.min(np.abs(v - 1.5)),
            )  # fmt: skip
        else:
            expr = f"np.{op}({x})"
        return self.assign(expr, kinks)

    def binary(self) -> bool:
        a = self.floats()
        if a is None:
            return False
        op = self.choice(["+", "-", "*", "/", "maximum", "minimum", "logaddexp", "+=", "*="])
        b = self.operand(a, positive=op == "/")
        swap = self.flag()
        lhs, rhs = (b, a.name) if swap and op not in ("/", "+=", "*=") else (a.name, b)
        if op == "/":
            if not swap:
                lhs, rhs = a.name, b
            else:  # a in the denominator
                lhs = b
                rhs = a.name if np.min(np.abs(a.value)) > 0.1 else f"({a.name} * {a.name} + 1.0)"
        kinks = None
        if op in ("maximum", "minimum"):
            expr = f"np.{op}({lhs}, {rhs})"

            def kinks(ns, lhs=lhs, rhs=rhs):
                return np.min(np.abs(eval(lhs, ns) - eval(rhs, ns)))
        elif op == "logaddexp":
            expr = f"np.logaddexp({lhs}, {rhs})"
        elif op in ("+=", "*="):
            # an in-place update of a copy: broadcasting must not grow the target
            name = self.fresh()
            lines = [f"{name} = {a.name}.copy()", f"{name} {op} {b}"]
            return self.try_lines(lines, name)
        else:
            expr = f"{lhs} {op} {rhs}"
        return self.assign(expr, kinks)

    def compare(self) -> bool:
        a = self.floats()
        if a is None:
            return False
        if self.flag() and sum(not v.is_float for v in self.vars) >= 1:
            c = self.pick(lambda v: v.dtype == BOOL)
            d = self.pick(lambda v: v.dtype == BOOL and _broadcast(v.shape, c.shape) is not None)
            expr = self.choice(
                [f"np.logical_and({c.name}, {d.name})", f"{c.name} | {d.name}",
                 f"np.logical_or({c.name}, {d.name})", f"~{c.name}",
                 f"np.logical_not({c.name})", f"{c.name} & {d.name}"]
            )  # fmt: skip
            return self.assign(expr)
        b = self.operand(a)
        op = self.choice(["<", "<=", ">", ">=", "==", "!="])
        expr = f"({a.name} {op} {b})"

        def kinks(ns):
            return np.min(np.abs(ns[a.name] - eval(b, ns)))

        return self.assign(expr, kinks)

    def where(self) -> bool:
        a = self.floats()
        if a is None:
            return False
        b = self.operand(a)
        conds = [v for v in self.vars if v.dtype == BOOL and _broadcast(v.shape, a.shape)]
        if conds and self.flag():
            c = self.choice(conds).name
            kinks = None
        else:
            ref = self.partner(a) or a
            t = _lit(self.choice([0.0, 0.5, -0.3]))
            c = f"{ref.name} > {t}"

            def kinks(ns, ref=ref, t=t):
                return np.min(np.abs(ns[ref.name] - float(t)))

        args = (a.name, b) if self.flag() else (b, a.name)
        return self.assign(f"np.where({c}, {args[0]}, {args[1]})", kinks)

    def cast(self) -> bool:
        v = self.pick()
        if v is None:
            return False
        if v.dtype == BOOL:
            target = self.choice(["np.float64", "np.float32"] if not self.fd else ["np.float64"])
            expr = self.choice([f"{v.name}.astype({target})", f"{v.name} * 1.5"])
        elif v.dtype == F64:
            if self.fd:
                return False
            expr = self.choice([f"{v.name}.astype(np.float32)", f"np.float32(2.0) * {v.name}"])
        else:
            expr = self.choice([f"{v.name}.astype(np.float64)", f"{v.name} + np.float64(1.0)"])
        return self.assign(expr)

    def reduce(self) -> bool:
        a = self.floats()
        if a is None:
            return False
        op = self.choice(["sum", "mean", "max", "min"])
        nd = a.ndim
        axis = _axes(self.r, nd)
        keep = self.flag()
        form = self.choice(["fn", "method"])
        kw = "" if axis is None else f", axis={axis!r}"
        kw += ", keepdims=True" if keep else ""
        expr = f"np.{op}({a.name}{kw})" if form == "fn" else f"{a.name}.{op}({kw[2:]})"
        kinks = None
        if op in ("max", "min"):

            def kinks(ns, axis=axis, v=a.value):
                return _top_gap(v, axis)

        return self.assign(expr, kinks)

    def view(self) -> bool:
        a = self.pick()
        if a is None:
            return False
        x, s, nd = a.name, a.shape, a.ndim
        opts = ["reshape", "ravel", "broadcast", "expand"]
        if nd >= 1:
            opts += ["slice", "slice", "int_index"]
        if nd >= 2:
            opts += ["transpose", "swapaxes", "T"]
        if 1 in s:
            opts.append("squeeze")
        op = self.choice(opts)
        if op == "reshape":
            size = int(np.prod(s, dtype=np.int64))
            shape = self.choice(_factorizations(size, s))
            expr = self.choice([f"{x}.reshape({shape!r})", f"np.reshape({x}, {shape!r})"])
        elif op == "ravel":
            expr = self.choice([f"{x}.reshape(-1)", f"np.ravel({x})", f"{x}.flatten()"])
        elif op == "broadcast":
            k = self.choice([2, 3])
            shape = (k,) + tuple(3 if d == 1 and self.flag() else d for d in s)
            expr = f"np.broadcast_to({x}, {shape!r})"
        elif op == "expand":
            ax = self.r.int(-(nd + 1), nd)
            expr = self.choice(
                [f"np.expand_dims({x}, {ax})", f"{x}[None]"]
                if nd == 0
                else [f"np.expand_dims({x}, {ax})", f"{x}[:, None]", f"{x}[None]"]
            )
        elif op == "squeeze":
            ax = self.choice([i for i, d in enumerate(s) if d == 1])
            expr = self.choice([f"np.squeeze({x}, axis={ax})", f"np.squeeze({x})"])
        elif op == "slice":
            ax = self.r.int(0, nd - 1)
            n = s[ax]
            sl = self.choice(["1:", ":-1", "::2", "::-1", "1::2", f"{max(n - 2, 0)}:", "-2:", ":1"])
            key = ":, " * ax + sl
            expr = self.choice(
                [f"{x}[{key}]", f"{x}[{key}, ...]"] if ax + 1 < nd else [f"{x}[{key}]"]
            )
        elif op == "int_index":
            ax = self.r.int(0, nd - 1)
            i = self.r.int(-s[ax], s[ax] - 1)
            expr = f"{x}[{':, ' * ax}{i}]"
        elif op == "transpose":
            perm = tuple(self.r.perm(range(nd)))
            expr = self.choice([f"np.transpose({x}, {perm!r})", f"{x}.transpose({perm!r})"])
        elif op == "swapaxes":
            expr = f"np.swapaxes({x}, 0, -1)"
        else:
            expr = f"{x}.T"
        return self.assign(expr)

    def join(self) -> bool:
        a = self.floats(lambda v: v.ndim >= 1)
        if a is None:
            return False
        ax = self.r.int(-a.ndim, a.ndim - 1)
        same = [
            v for v in self.vars
            if v.is_float and v.ndim == a.ndim
            and all(d1 == d2 for i, (d1, d2) in enumerate(zip(v.shape, a.shape))
                    if i != ax % a.ndim)
        ]  # fmt: skip
        b = self.choice(same) if same else a
        kind = self.choice(["concatenate", "concatenate", "stack", "hstack"])
        if kind == "concatenate":
            expr = f"np.concatenate([{a.name}, {b.name}], axis={ax})"
            if self.flag():
                expr = f"np.concatenate(({a.name}, {b.name}, {a.name}), axis={ax})"
        elif kind == "stack":
            b = self.choice([v for v in same if v.shape == a.shape] or [a])
            expr = f"np.stack([{a.name}, {b.name}], axis={self.r.int(0, a.ndim)})"
        else:
            expr = (
                f"np.hstack([{a.name}, {b.name}])"
                if a.ndim == 1 or ax % a.ndim == 1
                else (f"np.concatenate([{a.name}, {b.name}])")
            )
        return self.assign(expr)

    def take(self) -> bool:
        a = self.pick(lambda v: v.ndim >= 1)
        if a is None:
            return False
        ax = self.r.int(0, a.ndim - 1)
        idx = _index_array(self.r, a.shape[ax], repeats=True)
        x = a.name
        kind = self.choice(["getitem", "np.take", "two"] if a.ndim >= 2 else ["getitem", "np.take"])
        if kind == "getitem":
            expr = f"{x}[{':, ' * ax}{idx}]"
        elif kind == "np.take":
            expr = f"np.take({x}, {idx}, axis={ax})"
        else:
            i0 = _index_array(self.r, a.shape[0], repeats=True, size=2)
            i1 = _index_array(self.r, a.shape[1], repeats=True, size=2)
            expr = f"{x}[{i0}, {i1}]"
        return self.assign(expr)

    def write(self) -> bool:
        a = self.floats(lambda v: v.ndim >= 1)
        if a is None:
            return False
        t = self.fresh()
        x = a.name
        n0 = a.shape[0]
        kind = self.choice(["set_slice", "slice_op", "scatter", "add_at", "idx_iadd", "view"])
        init = self.choice([f"{t} = {x}.copy()", f"{t} = np.zeros_like({x})", f"{t} = {x} * 1.0"])
        if kind in ("set_slice", "slice_op", "view"):
            sl = self.choice(["1:", ":1", "::2", "-1", "0"])
            key = (
                sl if a.ndim == 1 or self.flag() else f"..., {sl}" if sl not in ("-1", "0") else sl
            )
            if kind == "set_slice":
                w = self._value_for(a, f"{x}[{key}]")
                lines = [init, f"{t}[{key}] = {w}"]
            elif kind == "slice_op":
                op = self.choice(["+=", "*=", "-="])
                w = self._value_for(a, f"{x}[{key}]")
                lines = [init, f"{t}[{key}] {op} {w}"]
            else:  # a write through a view of the fresh array
                u = self.fresh()
                lines = [init, f"{u} = {t}[{key}]", f"{u} *= 2.0", f"{u} += 1.0"]
        else:
            idx = _index_array(self.r, n0, repeats=kind != "scatter")
            # NumPy 2.4's np.add.at adds wrongly when a 2-D index meets values broadcast along
            # it (np.add.at(v, [[1, 0], [0, 1]], [1.0, 2.0]) gives [2, 1], not [3, 3]): the
            # oracle would be wrong, so such values only come whole or as one number
            exact = kind == "add_at" and "[[" in idx
            w = self._value_for(a, f"{x}[{idx}]", exact=exact)
            if kind == "scatter":
                lines = [init, f"{t}[{idx}] = {w}"]
            elif kind == "add_at":
                lines = [init, f"np.add.at({t}, {idx}, {w})"]
            else:
                lines = [init, f"{t}[{idx}] += {w}"]
        return self.try_lines(lines, t)

    def _value_for(self, a: _Var, target: str, exact: bool = False) -> str:
        """A value expression that broadcasts to `target`'s shape (`exact`: has its shape)."""
        with np.errstate(all="ignore"):
            shape = eval(target, {"np": np, a.name: a.value}).shape
        options = [_lit(self.choice([0.5, -1.0, 2.0])), f"np.tanh({target}) * 2.0"]
        options += [
            v.name
            for v in self.vars
            if v.is_float
            and _broadcast(v.shape, shape) == shape
            and (v.shape == shape or not exact)
        ]
        return self.choice(options)

    def matmul(self) -> bool:
        a = self.floats(lambda v: v.ndim >= 1)
        if a is None:
            return False
        x, s = a.name, a.shape
        opts = ["const_right"]
        if a.ndim >= 2:
            opts += ["const_left", "gram"]
        same = [v for v in self.vars if v.is_float and v.shape == s and a.ndim >= 1]
        opts += ["pair"]
        kind = self.choice(opts)
        if kind == "const_right":
            n = self.choice([1, 2, 3])
            k = _const_array((s[-1], n) if self.flag() or a.ndim == 1 else (s[-1],), a.dtype, 3)
            expr = self.choice(
                [f"{x} @ {k}", f"np.matmul({x}, {k})"]
                + ([f"np.dot({x}, {k})"] if a.ndim <= 2 else [])
            )
        elif kind == "const_left":
            m = self.choice([1, 2, 3])
            k = _const_array((m, s[-2]), a.dtype, 5)
            expr = f"{k} @ {x}"
        elif kind == "gram":
            expr = self.choice(
                [f"{x} @ np.swapaxes({x}, -1, -2)", f"np.swapaxes({x}, -1, -2) @ {x}"]
                if a.ndim > 2
                else [f"{x} @ {x}.T", f"{x}.T @ {x}", f"np.dot({x}.T, {x})"]
            )
        else:
            b = self.choice(same)
            if a.ndim == 1:
                expr = self.choice([f"{x} @ {b.name}", f"np.dot({x}, {b.name})"])
            else:
                expr = f"{x} @ np.swapaxes({b.name}, -1, -2)"
        return self.assign(expr)

    def create(self) -> bool:
        a = self.floats()
        if a is None:
            return False
        x, s = a.name, a.shape
        dt = "np.float32" if a.dtype == F32 else "np.float64"
        kind = self.choice(["ones_like", "full", "zeros", "eye", "full_like"])
        if kind == "ones_like":
            expr = f"np.ones_like({x}) * {x}.sum()"
        elif kind == "full_like":
            expr = f"np.full_like({x}, 0.25) - {x}"
        elif kind == "full":
            expr = f"np.full({s!r}, 1.5, dtype={dt}) * {x}"
        elif kind == "zeros":
            expr = f"np.zeros({s!r}, dtype={dt}) + {x}"
        else:
            if a.ndim == 0:
                return False
            expr = f"np.eye({s[-1]}, dtype={dt}) @ {x}[..., None]"
        return self.assign(expr)


FAMILIES = (
    "unary", "binary", "compare", "where", "cast", "reduce", "view", "join", "take", "write",
    "matmul", "create", "relayout", "alias", "scalar_mix",
)  # fmt: skip


def _axes(r: Choices, ndim: int):
    """None, an int (possibly negative) or a tuple of distinct ints."""
    kind = r.pick(["none", "int", "tuple"] if ndim else ["none"])
    if kind == "none":
        return None
    if kind == "int":
        return r.int(-ndim, ndim - 1)
    return tuple(r.perm(range(ndim))[: r.int(1, ndim)])


def _top_gap(v: np.ndarray, axis) -> float:
    """Smallest gap between the largest two (and smallest two) entries of each reduced slice."""
    nd = v.ndim
    axes = (
        tuple(range(nd))
        if axis is None
        else ((axis % nd,) if isinstance(axis, int) else tuple(a % nd for a in axis))
    )
    keep = [i for i in range(nd) if i not in axes]
    flat = np.transpose(v, keep + list(axes)).reshape([v.shape[i] for i in keep] + [-1])
    if flat.shape[-1] < 2:
        return np.inf
    s = np.sort(flat, axis=-1)
    return float(min(np.min(s[..., -1] - s[..., -2]), np.min(s[..., 1] - s[..., 0])))


def _factorizations(size: int, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    out = [(size,), (1, size), (size, 1), tuple(reversed(shape)) or (1,), shape + (1,)]
    for d in (2, 3, 4):
        if size % d == 0 and size // d > 1:
            out.append((d, size // d))
            out.append((size // d, -1))
    return out


def _index_array(r: Choices, n: int, repeats: bool, size: int | None = None) -> str:
    k = size if size is not None else r.int(1, 4)
    if repeats:
        idx = [r.int(-n, n - 1) for _ in range(k)]
    else:
        idx = r.perm(range(n))[: min(k, n)]
    if len(idx) == 4 and r.bool():
        return f"np.array({[idx[:2], idx[2:]]!r})"  # a 2-D index array
    return f"np.array({list(idx)!r})"


def _shapes(r: Choices, n: int) -> list[tuple[int, ...]]:
    """`n` shapes that broadcast together: suffixes of one base shape, some sides set to 1."""
    base = [r.int(1, 4) for _ in range(r.int(0, 3))]
    out = []
    for _ in range(n):
        rank = r.int(0, len(base))
        out.append(tuple(1 if r.int(0, 3) == 0 else d for d in base[len(base) - rank :]))
    return out


def generate(
    r: Choices,
    max_steps: int = 7,
    first: str | None = None,
    dtypes: tuple[str, ...] = ("f64", "f64", "f64", "f32", "mixed"),
) -> Program:
    """A random program (see the module docstring); `first` forces the first step's family."""
    shapes = _shapes(r, r.int(1, 3))
    mode = r.pick(dtypes)
    if mode == "mixed":
        dts = [r.pick(["float32", "float64"]) for _ in shapes]
    else:
        dts = ["float64" if mode == "f64" else "float32"] * len(shapes)
    if r.int(0, 2) == 0:  # scalar arguments: Python floats and NumPy scalars
        for _ in range(r.int(1, 2)):
            shapes.append(())
            dts.append(r.pick(["float", "np.float64", "np.float32"] if mode != "f64" else
                              ["float", "np.float64"]))  # fmt: skip
    fd = all(d in ("float64", "float", "np.float64") for d in dts) and r.int(0, 2) > 0
    seed = r.int(0, 2**31 - 1)
    args = tuple((tuple(s), d) for s, d in zip(shapes, dts))
    gen = _Gen(r, fd)
    for i, x in enumerate(make_inputs(args, seed)):
        gen.vars.append(_Var(f"x{i}", x))
    n_steps = r.int(1, max_steps)
    for step in range(n_steps):
        for _attempt in range(4):
            fam = first if (step == 0 and first) else r.pick(FAMILIES)
            if getattr(gen, fam)():
                gen.families.append(fam)
                break
    made = [v for v in gen.vars if not v.name.startswith("x")]
    floats = [v for v in gen.vars if v.is_float]
    last = [v for v in reversed(made) if v.is_float][:1] or floats[-1:]
    extra = [r.pick(floats) for _ in range(r.int(0, 2))]
    terms = []
    for k, v in enumerate(dict.fromkeys(v.name for v in last + extra)):
        var = next(u for u in gen.vars if u.name == v)
        w = _const_array(var.shape, var.dtype, k) if var.ndim else _lit(0.75 - 0.5 * k)
        terms.append(f"np.sum({v} * {w})")
    return Program(
        args=args,
        body=tuple(gen.lines),
        results=tuple(v.name for v in made) or ("x0",),
        loss_expr=" + ".join(terms),
        fd=fd,
        seed=seed,
        families=tuple(gen.families),
    )


@st.composite
def programs(draw, max_steps: int = 7, first: str | None = None, dtypes=None) -> Program:
    """Hypothesis strategy for `generate`: failures shrink to smaller programs."""
    kw = {} if dtypes is None else {"dtypes": dtypes}
    return generate(DataChoices(draw), max_steps, first, **kw)


def random_program(seed: int, max_steps: int = 8) -> Program:
    """The program `generate` makes from a seeded RNG (what campaign.py runs)."""
    return generate(RandomChoices(seed), max_steps)
