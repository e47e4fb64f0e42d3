"""The native scalar call's LLVM IR: a C `tp_call(self, args, kwargs)` that checks the
arguments, runs an all-scalar lowered graph on doubles and builds the result with the C API
(runtime/native_call.py compiles and installs it; docs/tiers.md has the design).

It covers a subset of what the Python scalar call (runtime/scalar_call.py) does, and hands the
rest to it: arguments that are Python floats or flat tuples/lists of them (every leaf traced),
results that are one np.float64 value and Python-float gradients in leaves or flat tuples.
Anything else keeps the Python scalar call alone. On a call, every value the check does not
pass goes to the Python `__call__` (`miss(self, args, kwargs)`) with the original arguments:
another structure or type (a float subclass, an int, np.float64), keywords, an active trace,
and any input or node output that is not finite. That last rule is what makes the results
the general path's: on finite doubles `+ - * /` and comparisons are IEEE (no fast-math flag,
so no contraction), and the transcendentals are the same libm functions Python's `math`
calls; wherever NumPy and `math` part ways (inf, nan, domain errors) a value is not finite, and
the Python path (which then falls back to the general path where `math` raises) answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir

from compiler.codegen.pyscalar import ALIAS_OPS
from compiler.ir.graph import Graph, Value
from runtime.native_call import Facts

NAME = "gradc_native_call"
I1, I64, F64 = ir.IntType(1), ir.IntType(64), ir.DoubleType()
_LIBM1 = {
    "exp": "exp", "expm1": "expm1", "log": "log", "log1p": "log1p", "log2": "log2",
    "log10": "log10", "sin": "sin", "cos": "cos", "tanh": "tanh", "sinh": "sinh",
    "cosh": "cosh", "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
    "arccosh": "acosh", "arctanh": "atanh", "erf": "erf", "erfc": "erfc",
}  # fmt: skip
# not hypot: Python's math.hypot is not libm's, so the two paths could differ by an ulp
_LIBM2 = {"arctan2": "atan2", "fmod": "fmod"}
_ARITH = {"add": "fadd", "subtract": "fsub", "multiply": "fmul", "divide": "fdiv"}
_CMP = {"equal": "==", "not_equal": "!=", "less": "<", "less_equal": "<=", "greater": ">"}
_CMP["greater_equal"] = ">="
# on finite values, each template of codegen/pyscalar.py's (NaN branches never taken)
_PICK = {"maximum": ">", "minimum": "<", "fmax": ">=", "fmin": "<="}

Spec = tuple  # ("f64", k) | ("float", k) | ("tuple", [Spec, ...]): how the result is built


def lowerable(graph: Graph) -> bool:
    """Whether every op and value of `graph` has a native spelling."""
    try:
        _Emitter(None, graph, None).values()  # a dry run: ops and types only
    except _Unsupported:
        return False
    return True


class _Unsupported(Exception):
    pass


def emit(graph: Graph, params: list[tuple], result: Spec, f: Facts, miss: int, tracing: int) -> str:
    """The LLVM IR of `NAME`, `i64 (i64 self, i64 args, i64 kwargs)`: see the module
    docstring; `miss` and `tracing` are the addresses of the miss callable and the
    TRACES_ACTIVE list."""
    module = ir.Module(NAME)
    fn = ir.Function(module, ir.FunctionType(I64, [I64, I64, I64]), NAME)
    em = _Emitter(fn, graph, f)
    em.emit(params, result, miss, tracing)
    return str(module)


class _Emitter:
    def __init__(self, fn: ir.Function | None, graph: Graph, f: Facts | None) -> None:
        self.graph, self.f, self.fn = graph, f, fn
        if fn is None:  # dry run: a builder on a scratch function
            module = ir.Module("dry")
            fn = ir.Function(module, ir.FunctionType(I64, [I64, I64, I64]), "dry")
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.module = fn.module
        self.dry = f is None
        self.checked: list[ir.Value] = []  # i1 conditions the call needs (doubles finite)

    # -- memory and calls -----------------------------------------------------------------------
    def word(self, addr: ir.Value, off: int) -> ir.Value:
        b = self.b
        return b.load(b.inttoptr(b.add(addr, I64(off)), I64.as_pointer()))

    def put(self, addr: ir.Value, off: int, value: ir.Value) -> None:
        b = self.b
        ty = value.type.as_pointer()
        b.store(value, b.inttoptr(b.add(addr, I64(off)), ty))

    def call(self, addr: int, ret: ir.Type, args: list[ir.Value]) -> ir.Value:
        fnty = ir.FunctionType(ret, [a.type for a in args])
        return self.b.call(self.b.inttoptr(I64(addr), fnty.as_pointer()), args)

    def libm(self, name: str, *args: ir.Value, check: bool = True) -> ir.Value:
        """A libm call; its result must be finite unless `check` is False (where `math`
        raises, on overflow and domain errors, the Python call misses too)."""
        out = args[0] if self.dry else self.call(self.f.libm(name), F64, list(args))
        if check:
            self.checked.append(self.finite(out))
        return out

    def finite(self, v: ir.Value) -> ir.Value:
        """|v| < inf: false for inf and NaN."""
        return self.b.fcmp_ordered("<", self.intrinsic("llvm.fabs", v), F64(float("inf")))

    def intrinsic(self, name: str, x: ir.Value) -> ir.Value:
        return self.b.call(self.module.declare_intrinsic(name, [F64]), [x])

    def expect(self, ok: ir.Value, miss: ir.Block) -> None:
        """Go on when `ok`, else to `miss`."""
        nxt = self.b.append_basic_block()
        self.b.cbranch(ok, nxt, miss)
        self.b.position_at_end(nxt)

    # -- the function ---------------------------------------------------------------------------
    def emit(self, params: list[tuple], result: Spec, miss_fn: int, tracing: int) -> None:
        b, f = self.b, self.f
        obj, args, kwargs = self.fn.args
        miss = self.fn.append_basic_block("miss")
        self.expect(b.icmp_unsigned("==", kwargs, I64(0)), miss)
        first = self.word(self.word(I64(tracing), f.items_off), 0)  # TRACES_ACTIVE[0] is 0
        self.expect(b.icmp_unsigned("==", first, I64(f.zero)), miss)
        self.expect(b.icmp_signed("==", self.word(args, f.size_off), I64(len(params))), miss)
        inputs: list[ir.Value] = []
        for k, p in enumerate(params):
            a = self.word(args, f.items_off + 8 * k)
            if p[0] == "float":
                inputs.append(self.load_float(a, miss))
                continue
            kind, n = p
            ty = f.tuple_type if kind is tuple else f.list_type
            self.expect(b.icmp_unsigned("==", self.word(a, f.type_off), I64(ty)), miss)
            self.expect(b.icmp_signed("==", self.word(a, f.size_off), I64(n)), miss)
            items = b.add(a, I64(f.items_off)) if kind is tuple else self.word(a, f.items_off)
            inputs += [self.load_float(self.word(items, 8 * j), miss) for j in range(n)]
        outs = self.values(inputs)
        ok = I1(1)
        for cond in self.checked:
            ok = b.and_(ok, cond)
        self.expect(ok, miss)
        fail = self.fn.append_basic_block("fail")
        root = self.build(result, outs, fail)
        b.ret(root)
        b.position_at_end(fail)
        if result[0] == "tuple":  # the partial result: its dealloc frees what was stored
            self.call(f.api["Py_DecRef"], ir.VoidType(), [root])
        b.ret(I64(0))
        b.position_at_end(miss)
        self.miss(obj, args, kwargs, miss_fn)

    def load_float(self, a: ir.Value, miss: ir.Block) -> ir.Value:
        f, b = self.f, self.b
        self.expect(b.icmp_unsigned("==", self.word(a, f.type_off), I64(f.float_type)), miss)
        v = b.load(b.inttoptr(b.add(a, I64(f.fval_off)), F64.as_pointer()))
        self.checked.append(self.finite(v))
        return v

    def build(self, spec: Spec, outs: list[ir.Value], fail: ir.Block) -> ir.Value:
        """The object for `spec` (a new reference), stored into its parent by the caller."""
        b, f = self.b, self.f
        if spec[0] == "f64":
            obj = self.call(f.f64_alloc, I64, [I64(f.f64_type), I64(0)])
            self.expect(b.icmp_unsigned("!=", obj, I64(0)), fail)
            self.put(obj, f.fval_off, outs[spec[1]])
            return obj
        if spec[0] == "float":
            obj = self.call(f.api["PyFloat_FromDouble"], I64, [outs[spec[1]]])
            self.expect(b.icmp_unsigned("!=", obj, I64(0)), fail)
            return obj
        items = spec[1]
        tup = self.call(f.api["PyTuple_New"], I64, [I64(len(items))])
        self.expect(b.icmp_unsigned("!=", tup, I64(0)), fail)
        for j, item in enumerate(items):
            # stored at once: on a NULL further on, the root's dealloc frees all made so far
            self.put(tup, f.items_off + 8 * j, self.build(item, outs, fail))
        return tup

    def miss(self, obj: ir.Value, args: ir.Value, kwargs: ir.Value, miss_fn: int) -> None:
        """`miss(self, args, kwargs or None)` through PyObject_Call."""
        b, f = self.b, self.f
        kw = b.select(b.icmp_unsigned("==", kwargs, I64(0)), I64(f.none), kwargs)
        t = self.call(f.api["PyTuple_New"], I64, [I64(3)])
        made = b.append_basic_block("made")
        nomem = b.append_basic_block("nomem")
        b.cbranch(b.icmp_unsigned("==", t, I64(0)), nomem, made)
        b.position_at_end(nomem)
        b.ret(I64(0))
        b.position_at_end(made)
        for j, x in enumerate((obj, args, kw)):
            self.call(f.api["Py_IncRef"], ir.VoidType(), [x])
            self.put(t, f.items_off + 8 * j, x)
        out = self.call(f.api["PyObject_Call"], I64, [I64(miss_fn), t, I64(0)])
        self.call(f.api["Py_DecRef"], ir.VoidType(), [t])
        b.ret(out)

    # -- the graph ------------------------------------------------------------------------------
    def values(self, inputs: list[ir.Value] | None = None) -> list[ir.Value]:
        g = self.graph
        if inputs is None:  # dry run
            inputs = [ir.Constant(_ty(v), 0) for v in g.inputs]
        env: dict[Value, ir.Value] = dict(zip(g.inputs, inputs))
        self.lower(g, env)
        return [env[v] for v in g.outputs]

    def lower(self, g: Graph, env: dict[Value, ir.Value]) -> None:
        for n in g.nodes:
            if not all(v.ndim == 0 for v in (*n.inputs, *n.outputs)):
                raise _Unsupported(n.op)
            if n.op == "fused":
                body = n.attrs["body"]
                sub = dict(zip(body.inputs, (env[v] for v in n.inputs)))
                self.lower(body, sub)
                env.update(zip(n.outputs, (sub[v] for v in body.outputs)))
            elif n.op in ALIAS_OPS:
                env[n.out] = env[n.inputs[0]]
            elif n.op == "const":
                env[n.out] = _constant(n.attrs["value"].array[()], _ty(n.out))
            elif n.op == "full":
                env[n.out] = _constant(n.attrs["fill"], _ty(n.out))
            else:
                args = [env[v] for v in n.inputs]
                out = self.op(n.op, args, _ty(n.out))
                if out.type != _ty(n.out):
                    raise _Unsupported(n.op)
                if out.type == F64:
                    self.checked.append(self.finite(out))
                env[n.out] = out

    def op(self, op: str, a: list[ir.Value], ty: ir.Type) -> ir.Value:
        b = self.b
        floats = all(x.type == F64 for x in a)
        if op in _ARITH and floats:
            return getattr(b, _ARITH[op])(a[0], a[1])
        if op == "negative" and floats:
            return b.fneg(a[0])
        if op == "square" and floats:
            return b.fmul(a[0], a[0])
        if op == "abs" and floats:
            return self.intrinsic("llvm.fabs", a[0])
        if op == "sqrt" and floats:
            return self.intrinsic("llvm.sqrt", a[0])  # IEEE sqrt: what libm's returns
        if op in _LIBM1 and floats:  # a node output: checked as such
            return self.libm(_LIBM1[op], a[0], check=False)
        if op in _LIBM2 and floats:
            return self.libm(_LIBM2[op], a[0], a[1], check=False)
        if op == "power" and floats:
            # the node's output is checked: the branch not taken must not be
            if isinstance(a[1], ir.Constant):  # as pyscalar decides a literal exponent
                half = float(a[1].constant) == 0.5
                return (
                    self.intrinsic("llvm.sqrt", a[0]) if half else self.libm("pow", *a, check=False)
                )
            root, pw = self.intrinsic("llvm.sqrt", a[0]), self.libm("pow", *a, check=False)
            return b.select(b.fcmp_ordered("==", a[1], F64(0.5)), root, pw)
        if op == "exp2" and floats:
            return self.libm("pow", F64(2.0), a[0], check=False)
        if op == "expit" and floats:
            return b.fdiv(F64(1.0), b.fadd(F64(1.0), self.libm("exp", b.fneg(a[0]))))
        if op == "logit" and floats:
            return self.libm("log", b.fdiv(a[0], b.fsub(F64(1.0), a[0])))
        if op == "ndtr" and floats:
            arg = b.fmul(b.fneg(a[0]), F64(0.7071067811865476))
            return b.fmul(F64(0.5), self.libm("erfc", arg))
        if op == "sign" and floats:
            pos = b.uitofp(b.fcmp_ordered(">", a[0], F64(0.0)), F64)
            return b.fsub(pos, b.uitofp(b.fcmp_ordered("<", a[0], F64(0.0)), F64))
        if op == "sinc" and floats:
            x = b.fmul(F64(3.141592653589793), a[0])
            q = b.fdiv(self.libm("sin", x), x)
            return b.select(b.fcmp_ordered("==", a[0], F64(0.0)), F64(1.0), q)
        if op == "heaviside" and floats:
            x, h = a
            inner = b.select(b.fcmp_ordered("==", x, F64(0.0)), h, F64(1.0))
            return b.select(b.fcmp_ordered("<", x, F64(0.0)), F64(0.0), inner)
        if op in ("xlogy", "xlog1py") and floats:
            x, y = a  # Python evaluates the log only where x != 0
            log = self.libm("log" if op == "xlogy" else "log1p", y, check=False)
            zero = b.fcmp_ordered("==", x, F64(0.0))
            self.checked.append(b.or_(zero, self.finite(log)))
            return b.select(zero, F64(0.0), b.fmul(x, log))
        if op in _PICK and floats:
            return b.select(b.fcmp_ordered(_PICK[op], a[0], a[1]), a[0], a[1])
        if op in _CMP and len({x.type for x in a}) == 1:
            if floats:  # `!=` is true on NaN, as in Python
                cmp = b.fcmp_unordered if op == "not_equal" else b.fcmp_ordered
                return cmp(_CMP[op], a[0], a[1])
            return b.icmp_unsigned(_CMP[op], a[0], a[1])
        if op == "where" and a[1].type == a[2].type:
            return b.select(self.truth(a[0]), a[1], a[2])
        if op == "astype":
            if ty == F64:
                return a[0] if a[0].type == F64 else b.uitofp(a[0], F64)
            return self.truth(a[0])
        if op in ("logical_and", "logical_or"):
            join = b.and_ if op == "logical_and" else b.or_
            return join(self.truth(a[0]), self.truth(a[1]))
        if op == "logical_not":
            return b.xor(self.truth(a[0]), I1(1))
        raise _Unsupported(op)

    def truth(self, x: ir.Value) -> ir.Value:
        """Python's `bool(x)`: nonzero, NaN included."""
        return x if x.type == I1 else self.b.fcmp_unordered("!=", x, F64(0.0))


def _ty(v: Value) -> ir.Type:
    dt = np.dtype(v.dtype)
    if dt == np.float64:
        return F64
    if dt == np.bool_:
        return I1
    raise _Unsupported(str(dt))


def _constant(value: Any, ty: ir.Type) -> ir.Constant:
    return ir.Constant(ty, bool(value) if ty == I1 else float(value))
