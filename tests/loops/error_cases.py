"""Error cases of the loop ops, collected by tests/robustness/test_errors.py (every raise site
has a triggering case there)."""

from __future__ import annotations

import numpy as np

from compiler import grad, jit, scan, while_loop
from compiler.ir.graph import Builder, Graph, Node, ShapeError, Value
from compiler.ir.types import TensorType
from compiler.ir.verify import VerifyError, verify
from compiler.primitives import OPS
from runtime.loops import LoopError

F64 = np.dtype(np.float64)


def _t(*shape, dtype=F64):
    return TensorType(shape, dtype)


def _body(ins, outs_fn):
    b = Builder()
    vals = [b.add_input(t) for t in ins]
    return b.build(outs_fn(b, vals))


def _scan_attrs(body, **kw):
    base = {"length": 3, "reverse": False, "n_consts": 0, "n_carry": 1}
    return {"body": body, **base, "save_every": 0, "checkpoint": 0, **kw}


def _scan_rule(ts, body, **kw):
    attrs = _scan_attrs(body, **kw)
    return lambda: OPS["scan"].shape_rule(ts, **attrs)


def _while_rule(ts, cond, body, **kw):
    attrs = {"cond": cond, "body": body, "n_consts": 0, "max_steps": 0, "record": False, **kw}
    return lambda: OPS["while_loop"].shape_rule(ts, **attrs)


def _step(c, x):
    return c * x, None


def loop_cases(Case):  # noqa: N803  (the Case dataclass of test_errors.py)
    """(site, trigger, exception, message regex) for every raise in the loop modules."""
    ident = _body([_t(2), _t()], lambda b, v: [v[0]])
    cond_ok = _body(
        [_t(2)],
        lambda b, v: [
            b.add(
                "greater", [b.add("sum", [v[0]], {"axis": (0,), "keepdims": False}), b.const(0.0)]
            )
        ],
    )
    cond_f = _body([_t(2)], lambda b, v: [b.add("sum", [v[0]], {"axis": (0,), "keepdims": False})])
    body_ok = _body([_t(2)], lambda b, v: [v[0]])
    body_bad = _body(
        [_t(2)], lambda b, v: [b.add("sum", [v[0]], {"axis": (0,), "keepdims": False})]
    )
    a, o = Value(_t(2)), Value(_t(2))
    xs = Value(_t(3))
    unknown = _body([_t(2), _t()], lambda b, v: [v[0]])
    bad_body = Graph(
        unknown.inputs,
        (Node("frobnicate", (unknown.inputs[0],), {}, (Value(_t(2)),)),),
        unknown.outputs,
    )
    attrs = _scan_attrs(ident)
    ys = np.ones(3)

    def ckpt(w):
        return scan(lambda c, x: (np.sin(c * w) + x, None), 0.3, np.ones(4), checkpoint=2)[0]

    def wl(w):
        return while_loop(lambda c: c > 0.1, lambda c: c * w, 1.0, max_steps=50)

    return [
        Case(
            ("compiler/trace/loops.py", "is not an array or scalar"),
            lambda: jit(lambda x: scan(_step, "abc", x)[0])(ys),
            TypeError,
            "scan init: a str leaf is not an array or scalar",
        ),
        Case(
            ("compiler/trace/loops.py", "tracing {_where(user or fn)}"),
            lambda: jit(lambda x: scan(lambda c, x: (c + np.ones(5), None), x, np.ones((2, 3)))[0])(
                ys
            ),
            ShapeError,
            r"scan: tracing `<lambda>` \(.*\): add: cannot broadcast",
        ),
        Case(
            ("compiler/trace/loops.py", "returns a carry structured"),
            lambda: jit(lambda x: scan(lambda c, x: ((c, c), None), x, ys)[0])(1.0),
            TypeError,
            "returns a carry structured",
        ),
        Case(
            ("compiler/trace/loops.py", "changes the carry"),
            lambda: jit(lambda x: scan(lambda c, x: (c.astype(np.float32), None), x, ys)[0])(ys),
            TypeError,
            r"`<lambda>` \(.*\) changes the carry: leaf 0 goes in as f64\[3\] "
            r"and comes out as f32\[3\]",
        ),
        Case(
            ("compiler/trace/loops.py", "leading axis to scan over"),
            lambda: jit(lambda x: scan(_step, x, np.float64(2.0))[0])(1.0),
            ShapeError,
            "leading axis",
        ),
        Case(
            ("compiler/trace/loops.py", "pass `length`"),
            lambda: jit(lambda x: scan(_step, x, None)[0])(1.0),
            TypeError,
            "pass `length`",
        ),
        Case(
            ("compiler/trace/loops.py", "disagree on the scanned length"),
            lambda: jit(lambda x: scan(_step, x, (ys, np.ones(4)))[0])(1.0),
            ShapeError,
            r"disagree on the scanned length \(f64\[3\], f64\[4\]",
        ),
        Case(
            ("compiler/trace/loops.py", "must be a positive int"),
            lambda: jit(lambda x: scan(_step, x, ys, checkpoint=-2)[0])(1.0),
            ValueError,
            "checkpoint=-2 must be a positive int",
        ),
        Case(
            ("compiler/trace/loops.py", "must return a pair"),
            lambda: jit(lambda x: scan(lambda c, x: c, x, ys)[0])(1.0),
            TypeError,
            r"`<lambda>` .* must return a pair \(carry, y\)",
        ),
        Case(
            ("compiler/trace/loops.py", "must return a scalar bool"),
            lambda: jit(lambda x: while_loop(lambda c: c, lambda c: c, x))(1.0),
            TypeError,
            r"cond function `<lambda>` .* must return a scalar bool .*got \(f64\[\]\)",
        ),
        Case(
            ("compiler/autodiff/loop_vjp.py", "stored blocks of a checkpointed scan"),
            lambda: grad(grad(ckpt), backend="interpret")(0.7),
            NotImplementedError,
            "checkpoint=None for higher derivatives",
        ),
        Case(
            ("compiler/autodiff/loop_vjp.py", "needs a bound on the trip count"),
            lambda: grad(lambda w: while_loop(lambda c: c > 0.1, lambda c: c * w, 1.0))(0.5),
            TypeError,
            r"while_loop \(at .*\): reverse mode needs .* max_steps=N",
        ),
        Case(
            ("compiler/autodiff/loop_vjp.py", "recorded carry history"),
            lambda: grad(grad(wl), backend="interpret")(0.5),
            NotImplementedError,
            "gradient of a gradient through a while_loop",
        ),
        Case(
            ("runtime/loops.py", "LoopError("),
            lambda: grad(
                lambda w: while_loop(lambda c: c > 0.1, lambda c: c * w, 1.0, max_steps=2),
                backend="interpret",
            )(0.5),
            LoopError,
            "still running after max_steps=2 steps",
        ),
        Case(
            ("compiler/ir/verify.py", "in its {k}"),
            lambda: verify(
                Graph((a, xs), (Node("scan", (a, xs), {**attrs, "body": bad_body}, (o,)),), (o,))
            ),
            VerifyError,
            r"node 0 \(scan\), in its body: node 0: unknown op 'frobnicate'",
        ),
        Case(
            ("compiler/ir/verify.py", "its rule says"),
            lambda: verify(
                Graph((a, xs), (Node("scan", (a, xs), attrs, (o, Value(_t(3)))),), (o,))
            ),
            VerifyError,
            r"node 0 \(scan\): outputs typed f64\[2\], f64\[3\], its rule says f64\[2\]",
        ),
        Case(
            ("compiler/primitives/control.py", "malformed node"),
            _scan_rule([_t(2)], ident, n_carry=3),
            ShapeError,
            "scan: malformed node",
        ),
        Case(
            ("compiler/primitives/control.py", "does not have leading axis"),
            _scan_rule([_t(2), _t(4)], ident),
            ShapeError,
            r"xs operand f64\[4\] does not have leading axis 3",
        ),
        Case(
            ("compiler/primitives/control.py", "body takes"),
            _scan_rule([_t(3), _t(3)], ident),
            ShapeError,
            r"body takes \(f64\[2\], f64\[\]\), operands give \(f64\[3\], f64\[\]\)",
        ),
        Case(
            ("compiler/primitives/control.py", "body returns carry"),
            _scan_rule([_t(2), _t(3)], _body([_t(2), _t()], lambda b, v: [v[1]])),
            ShapeError,
            r"body returns carry \(f64\[\]\) for carry \(f64\[2\]\)",
        ),
        Case(
            ("compiler/primitives/control.py", "does not divide length"),
            _scan_rule([_t(2), _t(3)], ident, save_every=2),
            ShapeError,
            "save_every=2 does not divide length 3",
        ),
        Case(
            ("compiler/primitives/control.py", "loop node with no outputs"),
            _scan_rule([_t(3)], _body([_t()], lambda b, v: []), n_carry=0),
            ShapeError,
            "no outputs",
        ),
        Case(
            ("compiler/primitives/control.py", "cond takes"),
            _while_rule([_t(3)], cond_ok, body_ok),
            ShapeError,
            r"cond takes \(f64\[2\]\) and body \(f64\[2\]\), operands give \(f64\[3\]\)",
        ),
        Case(
            ("compiler/primitives/control.py", "expected bool[]"),
            _while_rule([_t(2)], cond_f, body_ok),
            ShapeError,
            r"cond returns \(f64\[\]\)",
        ),
        Case(
            ("compiler/primitives/control.py", "while_loop: body returns"),
            _while_rule([_t(2)], cond_ok, body_bad),
            ShapeError,
            r"body returns \(f64\[\]\) for \(f64\[2\]\)",
        ),
        Case(
            ("compiler/primitives/control.py", "needs max_steps >= 1"),
            _while_rule([_t(2)], cond_ok, body_ok, record=True),
            ShapeError,
            "recording the carries needs max_steps",
        ),
    ]
