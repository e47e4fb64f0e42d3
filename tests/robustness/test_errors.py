"""Every error gradc raises, triggered, with its exact type and message checked.

`CASES` holds one trigger per `raise` in compiler/ and runtime/ that a user (of the API, the
CLI, the IR or the runtime) can reach; `INTERNAL` lists the others with the reason they are
not user-facing. `test_errors_every_raise_site_is_accounted_for` parses every module and
fails on a `raise` that neither covers, so a new error needs a test (or a reason) here.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.special

import compiler
from compiler import checkpoint, grad, interpret, jit, trace, value_and_grad, vjp
from compiler.codegen import njit_driver
from compiler.ir import Builder, Graph, Node, TensorType, Value, VerifyError, parse_type, verify
from compiler.ir.graph import ShapeError
from compiler.trace import TracerError
from tests.distributed.error_cases import distributed_cases
from tests.loops.error_cases import loop_cases

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # np.matrix
]
F64, I64, BOOL = np.dtype("float64"), np.dtype("int64"), np.dtype("bool")
X = np.array([1.0, 2.0, 3.0])
M = np.arange(6.0).reshape(2, 3)
_RNG = np.random.default_rng(0)  # a generator in the closure of traced functions
PLAIN = np.zeros(3)  # a plain array captured by traced functions (np.zeros inside is traced)


class _Outside:
    """Built outside any traced function: its methods run with the real NumPy."""

    def __init__(self):
        self.rng = np.random.default_rng(1)

    def double(self, x):
        return np.asarray(x) * 2.0

    def noisy(self, x):
        return x + self.rng.normal(size=3)


_OUTSIDE = _Outside()


@dataclass
class Case:
    site: tuple[str, str]  # (file, a fragment of the raise statement's source text)
    trigger: Callable[[], object]
    exc: type[BaseException]
    match: str  # regex the message must match (re.search)


def _setitem(a, key, v):
    a[key] = v
    return a


def _jit(f, *args):
    return lambda: jit(f)(*args)


def _with_env(name: str, value: str, fn: Callable[[], object]) -> object:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(name, value)
        return fn()


def _b(*types: TensorType):
    b = Builder()
    return b, [b.add_input(t) for t in types]


def _node(op: str, types, attrs=None):
    def run():
        b, ins = _b(*types)
        b.add(op, ins, attrs or {})

    return run


def T(shape, dtype=F64):  # noqa: N802
    return TensorType(tuple(shape), np.dtype(dtype))


def _graph(inputs, nodes, outputs):
    return lambda: verify(Graph(tuple(inputs), tuple(nodes), tuple(outputs)))


def _verify_cases() -> list[Case]:
    a, b = Value(T((2,))), Value(T((2,)))
    out = Value(T((2,)))
    bad = Value(T((3,)))
    neg = Node("negative", (a,), {}, (out,))
    fused_body = Graph((Value(T((2,))),), (), ())
    # a row loop over 2 rows on a matrix of 4 rows
    xm, wm, gm, zv = Value(T((4, 3))), Value(T((3, 1))), Value(T((3, 1))), Value(T((2,)))
    row_body = Graph((zv,), (), (zv,))
    return [
        Case(("compiler/ir/verify.py", "listed twice"), _graph([a, a], [], []),
             VerifyError, "input .* listed twice"),
        Case(("compiler/ir/verify.py", "uses a value before it is defined"),
             _graph([a], [Node("negative", (b,), {}, (out,))], [out]),
             VerifyError, r"node 0 \(negative\) uses a value before it is defined"),
        Case(("compiler/ir/verify.py", "node {i} ({n.op}): {exc}"),
             _graph([a], [Node("reshape", (a,), {"shape": (3,)}, (bad,))], [bad]),
             VerifyError, r"node 0 \(reshape\): reshape: cannot reshape to \(3,\)"),
        Case(("compiler/ir/verify.py", "shape rule says"),
             _graph([a], [Node("negative", (a,), {}, (bad,))], [bad]),
             VerifyError, r"node 0 \(negative\): output typed f64\[3\], shape rule says f64\[2\]"),
        Case(("compiler/ir/verify.py", "unknown op"),
             _graph([a], [Node("frobnicate", (a,), {}, (out,))], [out]),
             VerifyError, "node 0: unknown op 'frobnicate'"),
        Case(("compiler/ir/verify.py", "its rule says"),
             _graph([a], [Node("fused", (a,), {"body": fused_body}, (out,))], [out]),
             VerifyError, r"node 0 \(fused\): outputs typed f64\[2\], its rule says nothing"),
        Case(("compiler/primitives/fused.py", "body inputs do not match"),
             _graph([a, b], [Node("fused", (a, b), {"body": Graph((fused_body.inputs[0],), (),
                                                                   fused_body.inputs)},
                                  (out,))], [out]),
             VerifyError, r"node 0 \(fused\): fused: body inputs do not match node inputs"),
        Case(("compiler/primitives/fused.py", "operands do not match the body"),
             _graph([xm, wm], [Node("rowfused", (xm, wm),
                                    {"body": row_body, "z": 0, "r": 0, "emit": (),
                                     "gshape": (3, 1)}, (gm,))], [gm]),
             VerifyError, r"node 0 \(rowfused\): rowfused: operands do not match the body"),
        Case(("compiler/ir/verify.py", "redefines a value"),
             _graph([a], [neg, Node("negative", (a,), {}, (out,))], [out]),
             VerifyError, r"node 1 \(negative\) redefines a value \(not SSA\)"),
        Case(("compiler/ir/verify.py", "a graph output is never defined"),
             _graph([a], [], [out]), VerifyError, "a graph output is never defined"),
    ]  # fmt: skip


def _cli(argv):
    """Run `gradc` in-process; a non-zero exit status becomes a CliError with stderr."""
    import contextlib
    import io

    from compiler.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(list(argv))
    if rc != 0:
        raise CliError(rc, err.getvalue())
    return rc


class CliError(Exception):
    def __init__(self, rc: int, stderr: str) -> None:
        super().__init__(f"rc={rc}: {stderr}")


def _user_file(text: str, name: str = "user_model.py") -> str:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="gradc-errors-"))
    path = folder / name
    path.write_text(text)
    return str(path)


MODEL = "import numpy as np\n\ndef loss(w, x):\n    return np.sum(np.tanh(w * x))\n\nsq = max\n"


def _target(example="seed"):
    from compiler.cli.target import resolve

    return resolve(None, example, [], None)


def _stage(stage, mode="value_and_grad", print_after=None, disable=()):
    from compiler.cli.stages import stage_sections

    return lambda: stage_sections(_target(), stage, mode, disable, print_after)


def _render(fmt, stage="traced", mode="value_and_grad"):
    from compiler.cli.stages import render, stage_sections

    return lambda: render(stage_sections(_target("mlp"), stage, mode), fmt)


def _without_module(name, fn):
    def run():
        import sys

        saved = sys.modules.get(name, "missing")
        sys.modules[name] = None  # makes `import name` raise ImportError
        try:
            fn()
        finally:
            if saved == "missing":
                del sys.modules[name]
            else:
                sys.modules[name] = saved

    return run


def _patched(target: str, value, fn):
    def run():
        mp = pytest.MonkeyPatch()
        mp.setattr(target, value)
        try:
            fn()
        finally:
            mp.undo()

    return run


def _unusual_cases() -> list[Case]:
    """Triggers that need a little set-up of their own."""
    from compiler.cli.target import parse_argnums, parse_spec, resolve
    from compiler.examples import get_example
    from compiler.interpret import run_graph
    from compiler.ir.serialize import graph_to_json
    from compiler.passes import get_pass, run_passes
    from compiler.passes.manager import register_pass
    from compiler.plan.planner import Policy, _as_policy
    from compiler.primitives.registry import Kind, Lowering, OpDef, register
    from runtime import cache
    from runtime.arena import Arena
    from runtime.pytree import flatten_args
    from runtime.signature import signature_key

    rng = np.random.default_rng(0)

    def release_twice():
        arena = Arena([((2,), F64)])
        bufs = arena.acquire()
        arena.release(bufs)
        arena.release(bufs)

    def unserialisable():
        b, (x,) = _b(T((2,)))
        out = b.add("negative", [x])
        g = b.build([out])
        node = g.nodes[0]
        odd = Node(node.op, node.inputs, {"weird": object()}, node.outputs)
        graph_to_json(Graph(g.inputs, (odd,), g.outputs))

    def png_to_terminal():
        import io
        import sys

        class Tty(io.StringIO):
            def isatty(self) -> bool:
                return True

        mp = pytest.MonkeyPatch()
        mp.setattr("compiler.cli.stages.render", lambda *a, **k: b"\x89PNG")  # no Graphviz
        mp.setattr(sys, "stdout", Tty())
        try:
            _cli(["ir", "--example", "seed", "--format", "png"])
        finally:
            mp.undo()

    def static_mask():
        leaves, tree = flatten_args((1.0, 2.0))
        signature_key(leaves, tree, static_mask=[True])

    def with_env(var: str, value: str, read: Callable[[], object]) -> None:
        mp = pytest.MonkeyPatch()
        mp.setenv(var, value)
        try:
            read()
        finally:
            mp.undo()

    def simd_setting():
        from compiler.codegen import simd

        with_env("GRADC_SIMD", "fast", simd.mode)

    def simd_uncovered():
        from compiler.codegen import simd

        simd.intrinsic("lgamma", "avx2")

    def route_setting():
        from compiler.codegen import routing

        with_env("GRADC_ROUTE", "fastest", routing.current_routing)

    return [
        # -- codegen: SIMD transcendentals -------------------------------------------------
        Case(("compiler/codegen/simd.py", "expected 0 (off)"), simd_setting, ValueError,
             r"GRADC_SIMD='fast': expected 0 \(off\), 1 \(the best this host runs\), avx2 or "
             r"avx512"),
        Case(("compiler/codegen/simd.py", "no SIMD variant"), simd_uncovered, ValueError,
             r"no SIMD variant of 'lgamma' in mode 'avx2' on this host"),
        Case(("compiler/codegen/routing.py", "choose one of"), route_setting, ValueError,
             r"GRADC_ROUTE='fastest': choose one of auto, calibrated, table, loop, library"),
        # -- runtime -----------------------------------------------------------------------
        Case(("runtime/cache.py", "must match"),
             lambda: cache.load_module("x = 1\n", prefix="no-dashes"), ValueError,
             r"gradc cache: prefix 'no-dashes' must match"),
        Case(("runtime/arena.py", "released twice"), release_twice, ValueError,
             r"Arena.release: not a buffer set in use \(released twice\?\)"),
        Case(("runtime/signature.py", "static_mask has"), static_mask, ValueError,
             "static_mask has 1 entries for 2 leaves"),
        Case(("runtime/signature.py", "raise _unhashable_error"),
             lambda: grad(lambda x, s: np.sum(x))(X, {1, 2}), TypeError,
             r"argument leaf args\[1\] of type set is unhashable, so it cannot be a static "
             r"argument"),
        # -- registries and IR helpers ------------------------------------------------------
        Case(("compiler/primitives/registry.py", "needs vjp and jvp rules"),
             lambda: OpDef(name="mine", shape_rule=lambda ts: ts[0], impl=np.negative,
                           kind=Kind.ELEMENTWISE),
             TypeError, "op mine: a differentiable op needs vjp and jvp rules"),
        Case(("compiler/primitives/registry.py", "exactly a ScalarExpr codegen"),
             lambda: OpDef(name="mine", shape_rule=lambda ts: ts[0], impl=np.negative,
                           kind=Kind.ELEMENTWISE, codegen="mine", lowering=Lowering.SCALAR,
                           differentiable=False),
             TypeError, "op mine: a SCALAR lowering is exactly a ScalarExpr codegen"),
        Case(("compiler/primitives/registry.py", "library dtypes apply"),
             lambda: OpDef(name="mine", shape_rule=lambda ts: ts[0], impl=np.negative,
                           kind=Kind.ELEMENTWISE, codegen="mine", library=("float64",),
                           differentiable=False),
             TypeError, "op mine: library dtypes apply to SCALAR ops only"),
        Case(("compiler/primitives/registry.py", "registered twice"),
             lambda: register(compiler.primitives.OPS["exp"]), ValueError,
             "op 'exp' registered twice"),
        Case(("compiler/passes/manager.py", "registered twice"),
             lambda: register_pass("cse")(lambda g: g), ValueError, "pass 'cse' registered twice"),
        Case(("compiler/pipeline.py", "known passes"),
             lambda: grad(lambda x: np.sum(x * 2.0), disable=("nope",))(X), ValueError,
             r"unknown pass 'nope' in disable; known passes: .*cse"),
        Case(("compiler/passes/manager.py", "known passes"),
             lambda: run_passes(trace(lambda x: x * 2.0, X), names=("nope",)), ValueError,
             r"unknown pass 'nope' in names; known passes: .*cse"),
        Case(("compiler/passes/manager.py", "runs only in the pipeline"),
             lambda: get_pass("route"), ValueError,
             r"pass 'route' runs only in the pipeline \(compiler.pipeline\)"),
        Case(("compiler/plan/planner.py", "expected one of"),
             lambda: grad(lambda x: np.sum(x), memory="lots"), ValueError,
             r"memory='lots': expected one of"),
        Case(("compiler/plan/planner.py", "expected bytes >= 0"),
             lambda: value_and_grad(lambda x: np.sum(x), memory_budget=-1), ValueError,
             "memory_budget=-1: expected bytes >= 0"),
        Case(("compiler/plan/planner.py", "unknown plan policy"),
             lambda: _as_policy("fastest"), ValueError, "unknown plan policy 'fastest'"),
        Case(("compiler/ir/serialize.py", "cannot serialise attribute"), unserialisable,
             TypeError, "cannot serialise attribute <object object"),
        Case(("compiler/ir/types.py", "expected e.g. f64[3,4]"), lambda: parse_type("f64"),
             ValueError, r"cannot parse type 'f64': expected e.g. f64\[3,4\]"),
        Case(("compiler/ir/types.py", "cannot parse type {text!r}: {exc}"),
             lambda: parse_type("f64[3,x]"), ValueError, r"cannot parse type 'f64\[3,x\]': "),
        Case(("compiler/ir/graph.py", "unknown op"), _node("frobnicate", [T((2,))]), KeyError,
             "unknown op 'frobnicate'"),
        Case(("compiler/ir/graph.py", "ShapeError(f\"{exc}{where}\")"),
             _jit(lambda x: x + np.ones(4), X), ShapeError,
             r"add: cannot broadcast \(f64\[3\] with f64\[4\]\) \(at .*test_errors.py:\d+\)"),
        Case(("compiler/interpret.py", "inputs, got"),
             lambda: run_graph(trace(lambda x: x * 2.0, X), []), TypeError,
             "graph takes 1 inputs, got 0"),
        Case(("compiler/interpret.py", "where the graph expects"),
             lambda: run_graph(trace(lambda x: x * 2.0, X), [np.ones(4)]),
             ValueError, r"input shaped \(4,\) where the graph expects f64\[3\]"),
        Case(("compiler/interpret.py", "structure the graph was traced with"),
             lambda: interpret(trace(lambda x: x * 2.0, X), X, X), TypeError,
             "arguments do not have the structure the graph was traced with"),
        Case(("compiler/examples.py", "choose one of:"), lambda: get_example("nope"),
             ValueError, "unknown example 'nope'; choose one of: seed"),
        # -- the CLI: the errors a command line can make -----------------------------------
        Case(("compiler/cli/__init__.py", "writes binary data"), png_to_terminal, CliError,
             r"rc=2: gradc ir: error: --format png writes binary data: use -o FILE.png"),
        Case(("compiler/cli/stages.py", "unknown --mode"),
             lambda: __import__("compiler.cli.stages").cli.stages.transform(
                 _target(), "hess", (), "interpret"),
             __import__("compiler.cli.target").cli.target.UsageError,
             "unknown --mode 'hess'; choose one of"),
        Case(("compiler/cli/stages.py", "unknown --stage"), _stage("final"), _usage(),
             "unknown --stage 'final'; choose one of traced"),
        Case(("compiler/cli/stages.py", "has no gradient stage"), _stage("grad", mode="jit"),
             _usage(), "--mode jit has no gradient stage; use --stage traced or passes"),
        Case(("compiler/cli/stages.py", "raise UsageError(str(exc))"),
             _stage("passes", disable=("nope",)), _usage(), "unknown pass 'nope' in disable"),
        Case(("compiler/cli/stages.py", "not a pipeline pass"),
             _stage("passes", print_after="nope"), _usage(),
             "--print-after 'nope': not a pipeline pass"),
        Case(("compiler/cli/stages.py", "does not run in --mode"),
             _stage("passes", mode="jit", print_after="plan"), _usage(),
             "--print-after 'plan': that pass does not run in --mode jit"),
        Case(("compiler/cli/stages.py", "that pass is disabled"),
             _stage("passes", print_after="cse", disable=("cse",)), _usage(),
             "--print-after 'cse': that pass is disabled"),
        Case(("compiler/cli/stages.py", "unknown --format"), _render("pdf"), _usage(),
             "unknown --format 'pdf'; choose one of"),
        Case(("compiler/cli/stages.py", "the plan and kernel are text"), _render("dot", "plan"),
             _usage(), "--format dot needs a graph stage; the plan and kernel are text"),
        Case(("compiler/cli/stages.py", "draws one graph"),
             _render("svg", "passes", mode="vjp"), _usage(),
             r"--format svg draws one graph; this stage has 2 \(forward, backward\): use dot"),
        Case(("compiler/cli/stages.py", "which is not on PATH"),
             _patched("shutil.which", lambda name: None, _render("svg")), _usage(),
             "--format svg needs the Graphviz `dot` program, which is not on PATH"),
        Case(("compiler/cli/stages.py", "failed:"),
             _patched("shutil.which", lambda name: "/bin/false", _render("svg")), _usage(),
             "dot -Tsvg failed:"),
        Case(("compiler/cli/target.py", "cannot read argument spec"),
             lambda: parse_spec("many", rng), _usage(), "cannot read argument spec 'many'"),
        Case(("compiler/cli/target.py", "raise UsageError(str(exc)) from None"),
             lambda: parse_spec("f64[3,x]", rng), _usage(), r"cannot parse type 'f64\[3,x\]'"),
        Case(("compiler/cli/target.py", "float arrays take ':pos'"),
             lambda: parse_spec("f64[3]:neg", rng), _usage(),
             r"f64\[3\]:neg: unknown option 'neg' \(float arrays take ':pos'\)"),
        Case(("compiler/cli/target.py", "is not supported as an argument"),
             lambda: parse_spec("c128[2]", rng), _usage(),
             r"c128\[2\]: dtype complex128 is not supported as an argument"),
        Case(("compiler/cli/target.py", "expected FILE.py:FUNC"),
             lambda: resolve("model.py", None, [], None), _usage(),
             "expected FILE.py:FUNC, got 'model.py'"),
        Case(("compiler/cli/target.py", "no such file"),
             lambda: resolve("/nonexistent/model.py:loss", None, [], None), _usage(),
             "/nonexistent/model.py: no such file"),
        Case(("compiler/cli/target.py", "cannot be imported as a Python module"),
             lambda: resolve(_user_file(MODEL, "model.txt") + ":loss", None, [], None), _usage(),
             "model.txt: cannot be imported as a Python module"),
        Case(("compiler/cli/target.py", "has no function"),
             lambda: resolve(_user_file(MODEL) + ":nope", None, [], None), _usage(),
             "user_model.py has no function 'nope'; it defines: loss"),
        Case(("compiler/cli/target.py", "--arg {item!r}: expected"),
             lambda: resolve(None, "seed", ["w:2.0"], None), _usage(), "--arg 'w:2.0': expected"),
        Case(("compiler/cli/target.py", "cannot read the signature of"),
             lambda: resolve(_user_file(MODEL) + ":sq", None, [], None), _usage(),
             "cannot read the signature of <built-in function max>"),
        Case(("compiler/cli/target.py", "is out of range for {len(names)} arguments"),
             lambda: parse_argnums("5", ["w", "x"]), _usage(),
             "--argnums 5 is out of range for 2 arguments"),
        Case(("compiler/cli/target.py", "not a position or one of"),
             lambda: parse_argnums("v", ["w", "x"]), _usage(),
             r"--argnums 'v': not a position or one of \['w', 'x'\]"),
        Case(("compiler/cli/target.py", "--argnums is empty"), lambda: parse_argnums(",", ["w"]),
             _usage(), "--argnums is empty"),
        Case(("compiler/cli/target.py", "give either FILE.py:FUNC or --example NAME"),
             lambda: resolve(None, None, [], None), _usage(),
             "give either FILE.py:FUNC or --example NAME"),
        Case(("compiler/cli/target.py", "raise UsageError(str(exc)) from None"),
             lambda: resolve(None, "nope", [], None), _usage(), "unknown example 'nope'"),
        Case(("compiler/cli/target.py", "has no parameter"),
             lambda: resolve(None, "seed", ["z=1.0"], None), _usage(),
             r"examples:seed has no parameter z; parameters: \['w', 'x', 'b', 'y'\]"),
        Case(("compiler/cli/target.py", "no value for"),
             lambda: resolve(_user_file(MODEL) + ":loss", None, ["w=2.0"], None), _usage(),
             r"user_model.py:loss: no value for x; pass --arg x=SPEC"),
        Case(("compiler/debug_nans.py", "the first NaN comes from"),
             _patched("compiler.debug_nans.ENABLED", True,
                      lambda: grad(lambda x: np.sum(np.log(x - 2.0)))(X)),
             FloatingPointError, r"the first NaN comes from subtract|from log at"),
        Case(("compiler/debug_nans.py", "this is a gradc bug"),
             lambda: compiler.debug_nans.check(trace(lambda x: x * 2.0, X), [X],
                                               [np.array(np.nan)], "jit(f)"),
             FloatingPointError, "jit.f. returned NaN from NaN-free inputs, but the reference"),
        Case(("compiler/plan/planner.py", "expected one of"), lambda: Policy(memory="x"),
             ValueError, "memory='x': expected one of"),
    ]  # fmt: skip


def _usage():
    from compiler.cli.target import UsageError

    return UsageError


def _api_cases() -> list[Case]:
    return [
        Case(("compiler/api.py", "expects a callable"), lambda: grad(3), TypeError,
             "grad expects a callable, got int"),
        Case(("compiler/pipeline.py", "choose 'thread' (the default) or 'process'"),
             lambda: _with_env("GRADC_COMPILE_IN", "fibre",
                               lambda: jit(np.sin, compile="background")(X)), ValueError,
             r"GRADC_COMPILE_IN='fibre': choose 'thread' \(the default\) or 'process'"),
        Case(("runtime/yielding.py", "expected a number in (0, 1]"),
             lambda: _with_env("GRADC_COMPILE_SHARE", "all",
                               lambda: jit(np.sin, compile="background")(X)), ValueError,
             r"GRADC_COMPILE_SHARE='all': expected a number in \(0, 1\], e.g. 0.15"),
        Case(("runtime/row_threads.py", "expected a positive integer"),
             lambda: _with_env("GRADC_THREADS", "two",
                               lambda: jit(lambda x: np.tanh(x) * x + 1.0, compile="never")(
                                   np.ones(1 << 17))), ValueError,
             r"GRADC_THREADS='two': expected a positive integer, e.g. 1"),
        Case(("runtime/env.py", "expected 1, true, yes or on"),
             lambda: _with_env("GRADC_STAGE_CACHE", "maybe", lambda: jit(lambda x: np.cos(x))(X)),
             ValueError, r"GRADC_STAGE_CACHE='maybe': expected 1, true, yes or on, or 0, false"),
        Case(("compiler/codegen/njit_driver.py", "expected auto, eager"),
             lambda: _with_env("GRADC_NJIT_DRIVER", "false-ish", njit_driver.driver_env),
             ValueError, r"GRADC_NJIT_DRIVER='false-ish': expected auto, eager, 1 \(eager\)"),
        Case(("compiler/pipeline.py", "unknown compile="),
             lambda: grad(lambda x: np.sum(x), compile="later"), ValueError,
             r"unknown compile='later'; choose one of \('background', 'eager', 'never'\)"),
        Case(("compiler/pipeline.py", "is not a compile mode"),
             lambda: _with_env("GRADC_COMPILE", "sometimes", lambda: jit(np.sin)), ValueError,
             r"GRADC_COMPILE='sometimes' is not a compile mode; choose one of"),
        Case(("compiler/pipeline.py", "unknown backend"),
             lambda: grad(lambda x: np.sum(x), backend="gpu")(X), ValueError,
             r"unknown backend 'gpu'; choose one of \('numba', 'interpret'\)"),
        Case(("compiler/api.py", "checkpoint expects a callable"), lambda: checkpoint("f"),
             TypeError, "checkpoint expects a callable, got str"),
        Case(("compiler/autodiff/inline.py", "needs the function to return a pair"),
             lambda: grad(lambda x: np.sum(x), has_aux=True)(X), TypeError,
             r"grad\(has_aux=True\) needs the function to return a pair \(output, aux\); "
             r"it returned an array f64\[\]"),
        Case(("compiler/autodiff/inline.py", "is out of range for a function"),
             lambda: grad(lambda x: np.sum(x), argnums=2)(X), ValueError,
             "grad: argnums=2 is out of range for a function called with 1 positional"),
        Case(("compiler/autodiff/inline.py", "gradients need float32/float64"),
             lambda: grad(lambda x, n: np.sum(x) * n, argnums=1)(X, 3), TypeError,
             r"grad: argument 'n' \(argnums=1\) has type int; gradients need float32/float64"),
        Case(("compiler/autodiff/inline.py", "gradients need float32/float64"),
             lambda: grad(lambda i: np.sum(i * 2.0))(np.arange(3)), TypeError,
             r"grad: argument 'i' \(argnums=0\) has dtype int64; gradients need"),
        Case(("compiler/arguments.py", "For non-scalar outputs use"),
             lambda: value_and_grad(lambda x: x * 2.0)(X), TypeError,
             r"value_and_grad needs a function returning a float scalar; it returned shape "
             r"\(3,\) dtype float64. For non-scalar outputs use compiler.vjp"),
        Case(("compiler/arguments.py", "For non-scalar outputs use"),
             lambda: grad(lambda x: (np.sum(x), np.sum(x)))(X), TypeError,
             r"returned a pytree .* \(use has_aux=True to return extra values\)"),
        Case(("compiler/api.py", "the cotangent must have the output's"),
             lambda: vjp(lambda x: (x, x), X)[1](np.ones(3)), TypeError,
             "vjp pullback: the cotangent must have the output's structure"),
        Case(("compiler/api.py", "cotangent shaped"),
             lambda: vjp(lambda x: x * 2.0, X)[1](np.ones(4)), ValueError,
             r"vjp pullback: cotangent shaped \(4,\) for an output shaped \(3,\)"),
        Case(("runtime/dispatch.py", "ndarray subclass whose operators differ"),
             lambda: grad(lambda a: np.sum(a))(np.matrix([[1.0, 2.0]])), TypeError,
             r"gradc does not accept numpy.*matrix arguments .*pass np.asarray\(x\)"),
    ]  # fmt: skip


def _trace_cases() -> list[Case]:
    i64 = np.arange(3)
    cube = np.ones((2, 2, 2))
    return [
        # tracer.py
        Case(("compiler/trace/tracer.py", "as an array operand"),
             _jit(lambda x: np.add(x, object()), X), TracerError,
             "gradc cannot use a object as an array operand"),
        Case(("compiler/trace/tracer.py", "read-only (a broadcast view or a diagonal)"),
             _jit(lambda x: np.broadcast_to(x, (2, 3)).__setitem__(0, 1.0), X), ValueError,
             r"assignment destination is read-only \(a broadcast view or a diagonal\)"),
        Case(("compiler/trace/tracer.py", "len() of unsized object"),
             _jit(lambda x: len(np.sum(x)), X), TypeError,
             r"len\(\) of unsized object \(a 0-d traced array\)"),
        Case(("compiler/trace/tracer.py", "Python control flow cannot depend"),
             _jit(lambda x: x if np.sum(x) > 0 else -x, X), TracerError,
             r"test_errors.py:\d+\). Python control flow cannot depend on traced values: use "
             r"np.where"),
        Case(("compiler/trace/tracer.py", "needs a concrete Python number"),
             _jit(lambda x: math.exp(x[0]), X), TracerError,
             r"float\(x\) \(or a math.\* function such as math.exp\) needs a concrete "
             r"Python number, but this is a traced array f64\[\]"),
        # creation.py: arrays built from traced values
        Case(("compiler/trace/creation.py", "cannot build an array from"),
             _jit(lambda x: np.array([x[0], None]), X), TracerError,
             "np.array: cannot build an array from list of mixed items"),
        Case(("compiler/trace/creation.py", 'raise ValueError(f"{op}: {exc}'),
             _jit(lambda x: np.asarray([x, x[:2]]), X), ValueError,
             r"np.asarray: setting an array element with a sequence.* \(at .*test_errors.py"),
        # draws.py: random draws inside the function
        Case(("compiler/trace/draws.py", "drew numbers while the function was traced"),
             _jit(lambda x: _OUTSIDE.noisy(x), X), TracerError,
             r"the generator Generator\(PCG64\) at 0x\w+ drew numbers while the function "
             r"was traced.*draw outside and pass the noise in"),
        Case(("compiler/trace/loops.py", "draws random numbers"),
             _jit(lambda x: compiler.scan(lambda c, y: (c + _RNG.normal(), None), x[0], x)[0],
                  X), TracerError,
             r"scan: `<lambda>` \(.*\) draws random numbers \(normal\(\)\); .*pass it in as xs"),
        Case(("compiler/trace/draws.py", "draws of dtype"),
             _jit(lambda x: x * len(_RNG.choice(["a", "b"], 2)), X), NotImplementedError,
             r"rng.choice: draws of dtype <U1 are not supported by gradc"),
        Case(("compiler/trace/draws.py", "shuffles in place"),
             _jit(lambda x: _RNG.shuffle(x), X), TracerError,
             r"rng.shuffle shuffles in place.*use x = x\[rng.permutation\(len\(x\)\)\]"),
        Case(("compiler/trace/draws.py", "with traced parameters cannot be"),
             _jit(lambda x: _RNG.poisson(x), X), TracerError,
             r"rng.poisson\(...\) with traced parameters cannot be reproduced by gradc \(at "
             r".*test_errors.py:\d+\); draw the noise outside the function"),
        Case(("compiler/trace/draws.py", "of a generator made inside"),
             _jit(lambda x: x * np.random.default_rng().bit_generator, X), AttributeError,
             "bit_generator of a generator made inside a traced function"),
        # linalg_api.py and scipy_api.py
        Case(("compiler/trace/linalg_api.py", "needs a square (..., n, n) matrix"),
             _jit(lambda m: np.linalg.inv(m), M), np.linalg.LinAlgError,
             r"np.linalg.inv: needs a square \(\.\.\., n, n\) matrix, got f64\[2,3\]"),
        Case(("compiler/trace/linalg_api.py", "do not match"),
             _jit(lambda x: np.linalg.solve(np.eye(2) + x[0], x), X), ValueError,
             r"np.linalg.solve: f64\[2,2\] and right-hand side f64\[3,1\] do not match"),
        Case(("compiler/trace/linalg_api.py", "np.trace(out=...)"),
             _jit(lambda m: np.trace(m, out=PLAIN), M), NotImplementedError,
             r"np.trace\(out=...\) is not supported"),
        Case(("compiler/trace/linalg_api.py", "input must be 1- or 2-d"),
             _jit(lambda m: np.diag(m[None]), M), ValueError, "np.diag: input must be 1- or 2-d"),
        Case(("compiler/trace/linalg_api.py", "improper number of dimensions"),
             _jit(lambda m: np.linalg.norm(m[None], axis=(0, 1, 2)), M), ValueError,
             "improper number of dimensions to norm"),
        Case(("compiler/trace/linalg_api.py", "invalid norm order"),
             _jit(lambda m: np.linalg.norm(m, 3), M), ValueError,
             "np.linalg.norm: invalid norm order 3 for matrices"),
        Case(("compiler/trace/linalg_api.py", "np.linalg.svd: needs a"),
             _jit(lambda x: np.linalg.svd(x), X), np.linalg.LinAlgError,
             r"np.linalg.svd: needs a \(..., m, n\) matrix, got f64\[3\]"),
        Case(("compiler/trace/linalg_api.py", "full_matrices=True"),
             _jit(lambda m: np.linalg.svd(m), M), NotImplementedError,
             r"np.linalg.svd\(full_matrices=True\) of a non-square f64\[2,3\]"
             r".*full_matrices=False"),
        Case(("compiler/trace/linalg_api.py", "np.linalg.qr(mode="),
             _jit(lambda m: np.linalg.qr(m), M), NotImplementedError,
             r"np.linalg.qr\(mode='reduced'\) of f64\[2,3\].*QR-factor the transpose"),
        Case(("compiler/trace/contract_api.py", "operand subscripts for"),
             _jit(lambda x: np.einsum("i,i", x), X), ValueError,
             r"np.einsum: 2 operand subscripts for 1 operands \(at .*test_errors.py"),
        Case(("compiler/trace/contract_api.py", "do not match an operand of rank"),
             _jit(lambda x: np.einsum("ij->", x), X), ValueError,
             "np.einsum: subscripts 'ij' do not match an operand of rank 1"),
        Case(("compiler/trace/contract_api.py", "has sizes"),
             _jit(lambda x: np.einsum("i,i", x, x[:2]), X), ValueError,
             "np.einsum: index 'i' has sizes 3 and 2"),
        Case(("compiler/trace/contract_api.py", "interleaved (operand, sublist)"),
             _jit(lambda x: np.einsum(x, [0], []), X), NotImplementedError,
             r"np.einsum with out= or the interleaved \(operand, sublist\) form is not supported"),
        # reduce_api.py and masked reductions
        Case(("compiler/trace/reduce_api.py", "np.{name}(out=...)"),
             _jit(lambda x: np.var(x, out=PLAIN), X), NotImplementedError,
             r"np.var\(out=...\) is not supported"),
        Case(("compiler/trace/reduce_api.py", "np.var with where= or mean="),
             _jit(lambda x: np.var(x, where=x > 0), X), NotImplementedError,
             "np.var with where= or mean= is not supported"),
        Case(("compiler/trace/reduce_api.py", "np.prod(where=...)"),
             _jit(lambda x: np.prod(x, where=x > 0), X), NotImplementedError,
             r"np.prod\(where=...\) is not supported"),
        Case(("compiler/trace/reduce_api.py", "Axis must be specified"),
             _jit(lambda m: np.average(m, weights=m[0]), M), TypeError,
             "Axis must be specified when shapes of a and weights differ"),
        Case(("compiler/trace/numpy_api.py", "unexpected keyword argument 'initial'"),
             _jit(lambda x: np.mean(x, where=x > 0, initial=1.0), X), TypeError,
             "mean.. got an unexpected keyword argument 'initial'"),
        Case(("compiler/trace/numpy_api.py", "does not have an identity"),
             _jit(lambda x: np.max(x, where=x > 0), X), ValueError,
             r"reduction operation 'max' does not have an identity.*\(at .*test_errors.py"),
        # shape_api.py
        Case(("compiler/trace/shape_api.py", "traced repeats"),
             _jit(lambda x: np.repeat(x, (x > 0).astype(int)), X), NotImplementedError,
             r"np.repeat with traced repeats \(a data-dependent shape\) is not supported"),
        Case(("compiler/trace/shape_api.py", "np.pad(mode="),
             _jit(lambda x: np.pad(x, 1, mode="edge"), X), NotImplementedError,
             r"np.pad\(mode='edge'\) is not supported by gradc .*np.concatenate"),
        Case(("compiler/trace/shape_api.py", "per-axis or traced constant_values"),
             _jit(lambda x: np.pad(x, 1, constant_values=x[0]), X), NotImplementedError,
             "np.pad with per-axis or traced constant_values is not supported"),
        Case(("compiler/trace/shape_api.py", "equal division"),
             _jit(lambda x: np.split(x, 2), X), ValueError,
             "array split does not result in an equal division"),
        Case(("compiler/trace/numpy_api.py", "np.round(out=...)"),
             _jit(lambda x: np.round(x, out=PLAIN), X), NotImplementedError,
             r"np.round\(out=...\) is not supported"),
        Case(("compiler/trace/numpy_api.py", "integers with decimals < 0"),
             _jit(lambda x: x + np.round(np.arange(3) * x.astype(int), -1), X),
             NotImplementedError, "np.round of integers with decimals < 0 is not supported"),
        # sort_api.py
        Case(("compiler/trace/sort_api.py", "np.argsort(order=...)"),
             _jit(lambda x: np.argsort(x, order="a"), X), NotImplementedError,
             r"np.argsort\(order=...\) is not supported"),
        Case(("compiler/trace/sort_api.py", "np.sort(order=...)"),
             _jit(lambda x: np.sort(x, order="a"), X), NotImplementedError,
             r"np.sort\(order=...\) is not supported"),
        Case(("compiler/trace/sort_api.py", "np.{name}(out=...)"),
             _jit(lambda x: np.argmax(x, out=PLAIN), X), NotImplementedError,
             r"np.argmax\(out=...\) is not supported"),
        Case(("compiler/trace/sort_api.py", "indices must be integers"),
             _jit(lambda x: np.take_along_axis(x, x, 0), X), IndexError,
             "take_along_axis: indices must be integers"),
        Case(("compiler/trace/sort_api.py", "same \"\n            \"number"),
             _jit(lambda m: np.take_along_axis(m, np.argmax(m, 0), 0), M), ValueError,
             r"take_along_axis: indices i64\[3\] and array f64\[2,3\] must have the same"),
        Case(("compiler/trace/sort_api.py", "into a plain array"),
             _jit(lambda x: np.put_along_axis(PLAIN, np.argsort(x), x, 0), X),
             NotImplementedError, "np.put_along_axis into a plain array"),
        Case(("compiler/trace/sort_api.py", "np.put_along_axis(axis=None)"),
             _jit(lambda x: np.put_along_axis(x, np.argsort(x), x, None), X),
             NotImplementedError, r"np.put_along_axis\(axis=None\) is not supported"),
        # masking.py: traced boolean masks
        Case(("compiler/trace/entry.py", '"returning x[mask]"'),
             _jit(lambda x: x[x > 0], X), TracerError,
             'returning x\\[mask\\]: x\\[mask\\] has a data-dependent shape.*'
             'np.where\\(mask, x, 0\\)'),
        Case(("compiler/trace/indexing.py", 'together with other indices'),
             _jit(lambda m: m[m[:, 0] > 0, 1], M), TracerError,
             'a traced boolean mask together with other indices'),
        Case(("compiler/trace/masking.py", 'does not match the indexed array'),
             _jit(lambda m: np.sum(m[m[0] > 0]), M), IndexError,
             'boolean index bool\\[3\\] does not match the indexed array f64\\[2,3\\]'),
        Case(("compiler/trace/masking.py", 'f"np.{name}(x[mask])"'),
             _jit(lambda x: np.sort(x[x > 0]), X), TracerError,
             'np.sort\\(x\\[mask\\]\\): x\\[mask\\] has a data-dependent shape'),
        Case(("compiler/trace/masking.py", '"x[mask].shape"'),
             _jit(lambda x: x[x > 0].shape, X), TracerError,
             'x\\[mask\\].shape'),
        Case(("compiler/trace/masking.py", '"x[mask].size"'),
             _jit(lambda x: x[x > 0].size, X), TracerError,
             'x\\[mask\\].size'),
        Case(("compiler/trace/masking.py", '"len(x[mask])"'),
             _jit(lambda x: len(x[x > 0]), X), TracerError,
             'len\\(x\\[mask\\]\\)'),
        Case(("compiler/trace/masking.py", '"indexing x[mask]"'),
             _jit(lambda x: x[x > 0][0], X), TracerError,
             'indexing x\\[mask\\]'),
        Case(("compiler/trace/masking.py", '"iterating over x[mask]"'),
             _jit(lambda x: list(x[x > 0]), X), TracerError,
             'iterating over x\\[mask\\]'),
        Case(("compiler/trace/masking.py", '"converting x[mask] to an array"'),
             _jit(lambda x: _OUTSIDE.double(x[x > 0]), X), TracerError,
             'converting x\\[mask\\] to an array'),
        Case(("compiler/trace/masking.py", '{method} of x[mask]'),
             _jit(lambda x: np.add.reduce(x[x > 0]), X), TracerError,
             'np.add.reduce of x\\[mask\\]'),
        Case(("compiler/trace/masking.py", 'only the total and axis=0'),
             _jit(lambda m: np.sum(m[m[:, 0] > 0], axis=1), M), TracerError,
             'np.sum\\(x\\[mask\\], axis=...\\) \\(only the total and axis=0 reduce\\)'),
        Case(("compiler/trace/masking.py", '"x[mask] = y[other_mask]"'),
             _jit(lambda x: x.__setitem__(x > 0, (x * 2)[x < 1]), X), TracerError,
             'x\\[mask\\] = y\\[other_mask\\]'),
        Case(("compiler/trace/masking.py", 'x[mask] = array (its length'),
             _jit(lambda x: x.__setitem__(x > 0, x * 2), X), TracerError,
             "x\\[mask\\] = array \\(its length must equal the mask's count\\)"),
        Case(("compiler/trace/masking.py", 'x[mask] = list or array'),
             _jit(lambda x: x.__setitem__(x > 0, [1.0]), X), TracerError,
             'x\\[mask\\] = list or array'),
        Case(("compiler/trace/masking.py", '"combining x[mask] and y[other_mask]"'),
             _jit(lambda x: np.sum(x[x > 0] * x[x < 1]), X), TracerError,
             'combining x\\[mask\\] and y\\[other_mask\\]'),
        Case(("compiler/trace/masking.py", '"combining x[mask] with a full array"'),
             _jit(lambda x: np.sum(x[x > 0] * x), X), TracerError,
             'combining x\\[mask\\] with a full array'),
        Case(("compiler/trace/scipy_api.py", "return_sign=True"),
             _jit(lambda x: scipy.special.logsumexp(x, return_sign=True), X), NotImplementedError,
             r"scipy.special.logsumexp\(return_sign=True\) is not supported by gradc"),
        Case(("compiler/trace/tracer.py", "by code that gradc does not"),
             _jit(lambda x: _OUTSIDE.double(x), X), TracerError,
             r"np.asarray / np.array .* was called on a traced array f64\[3\] \(at "
             r".*test_errors.py:\d+\) by code that gradc does not trace"),
        # entry.py
        Case(("compiler/trace/entry.py", "gradc does not support"),
             lambda: grad(lambda z: np.sum(z))(np.ones(2, dtype=complex)), TypeError,
             "gradc does not support complex128 arrays"),
        Case(("compiler/trace/entry.py", "outputs must be arrays or scalars"),
             _jit(lambda x: "done", X), TracerError,
             "the traced function returned a str; outputs must be arrays or scalars"),
        Case(("compiler/trace/entry.py", "closes over values"),
             lambda: grad(lambda x: np.sum(x) + len(trace(lambda y: y * x, X).nodes))(X),
             TracerError, r"trace\(\) cannot be called on a function that closes over values"),
        # indexing.py
        Case(("compiler/trace/indexing.py", "single ellipsis"), _jit(lambda x: x[..., ...], X),
             IndexError, r"an index can only have a single ellipsis \('...'\)"),
        Case(("compiler/trace/indexing.py", "too many indices"), _jit(lambda x: x[0, 0], X),
             IndexError, "too many indices for array: array is 1-dimensional, but 2 were indexed"),
        Case(("compiler/trace/indexing.py", "is out of bounds for axis {dim} with size {size}\")"),
             _jit(lambda x: x[3], X), IndexError,
             "index 3 is out of bounds for axis 0 with size 3"),
        Case(("compiler/trace/indexing.py", "arrays used as indices must be of integer type"),
             _jit(lambda x: x[np.array([0.5])], X), IndexError,
             "arrays used as indices must be of integer type"),
        Case(("compiler/trace/indexing.py", "f\"{dim} with size {size}\""),
             _jit(lambda x: x[np.array([0, 7])], X), IndexError,
             "index 7 is out of bounds for axis 0 with size 3"),
        Case(("compiler/trace/indexing.py", "gradc cannot index with"), _jit(lambda x: x["a"], X),
             IndexError, "gradc cannot index with str 'a'"),
        Case(("compiler/trace/indexing.py", "mixing integer and integer-array indices"),
             _jit(lambda x: x[np.array([0]), :, 0], cube), NotImplementedError,
             "mixing integer and integer-array indices separated by slices moves axes"),
        Case(("compiler/trace/indexing.py", "None together with several"),
             _jit(lambda x: x[np.array([0]), None, np.array([0])], M), NotImplementedError,
             "None together with several integer-array indices"),
        Case(("compiler/trace/indexing.py", "separated by slices move axes in"),
             _jit(lambda x: x[np.array([0]), :, np.array([0])], cube), NotImplementedError,
             "integer-array indices separated by slices move axes in NumPy"),
        Case(("compiler/trace/indexing.py", "arrays used as indices must be of integer type"),
             _jit(lambda x, f: x[f, np.array([0])], M, np.array([0.5])), IndexError,
             "arrays used as indices must be of integer type"),
        Case(("compiler/trace/indexing.py", "arrays used as indices must be of integer type"),
             _jit(lambda x: x[np.array([0.5]), np.array([0])], M), IndexError,
             "arrays used as indices must be of integer type"),
        Case(("compiler/trace/indexing.py", "is out of bounds for size"),
             _jit(lambda x: x[np.array([5]), np.array([0])], M), IndexError,
             "index 5 is out of bounds for size 2"),
        Case(("compiler/trace/indexing.py", "assignment through an index containing None"),
             _jit(lambda x: x.copy().__setitem__((None, 0), 1.0), X), NotImplementedError,
             "assignment through an index containing None"),
        # methods.py
        Case(("compiler/trace/methods.py", "with casting rule 'same_kind'"),
             _jit(lambda x: x.astype(np.int64).__iadd__(0.5), X), TypeError,
             "Cannot cast ufunc 'add' output from float64 to int64 with casting rule 'same_kind'"),
        Case(("compiler/trace/methods.py", "the {name} operator"), _jit(lambda x: x << 2, X),
             NotImplementedError, r"the lshift operator is not supported by gradc \(at "),
        Case(("compiler/trace/methods.py", "~ on a non-boolean array"), _jit(lambda x: ~x, X),
             NotImplementedError, "~ on a non-boolean array is not supported by gradc"),
        Case(("compiler/trace/methods.py", "reshape(order="),
             _jit(lambda x: x.reshape(3, order="F"), X), NotImplementedError,
             r"reshape\(order='F'\) is not supported by gradc"),
        # numpy_api.py
        Case(("compiler/trace/numpy_api.py", "raise unsupported(ufunc_name(ufunc))"),
             _jit(lambda x: scipy.special.gamma(x), X), NotImplementedError,
             r"scipy.special.gamma is not supported by gradc \(at .*test_errors.py:\d+\); see "
             r"docs/ops.md"),
        Case(("compiler/trace/numpy_api.py", "np.add.at into a plain array"),
             _jit(lambda x: np.add.at(PLAIN, [0], x[0]), X), TracerError,
             "np.add.at into a plain array cannot take traced values"),
        Case(("compiler/trace/numpy_api.py", "{ufunc_name(ufunc)}.{method}"),
             _jit(lambda x: np.subtract.reduce(x), X), NotImplementedError,
             "np.subtract.reduce is not supported by gradc"),
        Case(("compiler/trace/numpy_api.py", "(where=...)\")"),
             _jit(lambda x: np.exp(x, where=x > 1.0), X), NotImplementedError,
             r"np.exp\(where=...\) is not supported"),
        Case(("compiler/trace/numpy_api.py", "with {sorted(kwargs)}"),
             _jit(lambda x: np.exp(x, signature="d->d"), X), NotImplementedError,
             r"np.exp with \['signature'\] is not supported"),
        Case(("compiler/trace/numpy_api.py", "writes a traced result into"),
             _jit(lambda x: np.exp(x, out=PLAIN), X), TracerError,
             r"np.exp\(..., out=...\) writes a traced result into a plain ndarray"),
        Case(("compiler/trace/contract_api.py", "np.dot(out=...)"),
             _jit(lambda x: np.dot(x, x, out=np.zeros(())), X), NotImplementedError,
             r"np.dot\(out=...\) is not supported"),
        Case(("compiler/trace/numpy_api.py", "np.{op}(out=...)"),
             _jit(lambda x: np.sum(x, out=np.zeros(())), X), NotImplementedError,
             r"np.sum\(out=...\) is not supported"),
        Case(("compiler/trace/numpy_api.py", "reshape(order={order!r})"),
             _jit(lambda x: np.reshape(x, (3,), order="F"), X), NotImplementedError,
             r"reshape\(order='F'\) is not supported"),
        Case(("compiler/trace/methods.py", "copy(order={order!r})"),
             _jit(lambda x: x.copy(order="F"), X), NotImplementedError,
             r"copy\(order='F'\) is not supported"),
        Case(("compiler/trace/numpy_api.py", "ravel(order={order!r})"),
             _jit(lambda x: np.ravel(x, order="F"), X), NotImplementedError,
             r"ravel\(order='F'\) is not supported"),
        Case(("compiler/trace/numpy_api.py", "return arrays must be of ArrayType"),
             _jit(lambda x: np.add(x, 1.0, out=x.sum()), X), TypeError,
             r"np.add\(..., out=...\): return arrays must be of ArrayType; out is a NumPy "
             r"scalar \(at .*test_errors.py:\d+\)"),
        Case(("compiler/trace/indexing.py", "does not support item assignment"),
             _jit(lambda x: _setitem(x.sum(), (), 1.0), X), TypeError,
             r"'numpy.float64' object does not support item assignment: this value is a "
             r"NumPy scalar .*\(at .*test_errors.py:\d+\)"),
        Case(("compiler/trace/numpy_api.py", "np.where(cond) with one argument"),
             _jit(lambda x: np.where(x > 1.0), X), NotImplementedError,
             r"np.where\(cond\) with one argument \(data-dependent shape\)"),
        Case(("compiler/trace/numpy_api.py", "raise unsupported(_fn_name(func))"),
             _jit(lambda x: np.unwrap(x), X), NotImplementedError,
             "np.unwrap is not supported by gradc"),
        # ops.py
        Case(("compiler/trace/promotion.py", "(use float32 or float64)"), _jit(lambda x: x * 1j, X),
             NotImplementedError, "multiply: dtype complex128 is not supported by gradc"),
        Case(("compiler/trace/promotion.py", "(f\"dtype {dt} is not supported"),
             _jit(lambda x: np.where(x > 1.0, x, 1j), X), NotImplementedError,
             "dtype complex128 is not supported by gradc"),
        Case(("compiler/trace/ops.py", "integers or bool)"),
             _jit(lambda x: x.astype(np.float16), X), NotImplementedError,
             r"astype: dtype float16 is not supported by gradc \(use float32, float64, "),
        Case(("compiler/trace/ops.py", "can only specify one unknown dimension"),
             _jit(lambda x: x.reshape(-1, -1), M), ValueError,
             "reshape: can only specify one unknown dimension"),
        Case(("compiler/trace/ops.py", "reshape: cannot reshape"),
             _jit(lambda x: x.reshape(4, -1), M), ValueError,
             r"reshape: cannot reshape f64\[2,3\] into \(4, -1\) \(at "),
        Case(("compiler/trace/ops.py", "is out of bounds for array of dimension"),
             _jit(lambda x: np.sum(x, axis=2), M), np.exceptions.AxisError,
             "sum: axis 2 is out of bounds for array of dimension 2"),
        Case(("compiler/trace/ops.py", "duplicate value in 'axis'"),
             _jit(lambda x: np.sum(x, axis=(0, -2)), M), ValueError,
             "sum: duplicate value in 'axis'"),
        Case(("compiler/trace/ops.py", "squeeze: cannot select an axis"),
             _jit(lambda x: np.squeeze(x, axis=0), M), ValueError,
             "squeeze: cannot select an axis to squeeze out which has size not equal to one"),
        Case(("compiler/trace/ops.py", "integer or boolean matrix products"),
             _jit(lambda i: i @ i, i64), NotImplementedError,
             "matmul: integer or boolean matrix products are not supported by gradc"),
        Case(("compiler/trace/ops.py", "operands must not be 0-d"),
             _jit(lambda x: x @ np.float64(2.0), X), ValueError,
             r"matmul: operands must not be 0-d \(use \*\)"),
        Case(("compiler/trace/ops.py", "inner dimensions differ: {a.type}"),
             _jit(lambda x: x @ np.ones((2, 2)), M), ValueError,
             r"matmul: inner dimensions differ: f64\[2,3\] @ f64\[2,2\] \(at "),
        Case(("compiler/trace/ops.py", "stack: all input arrays must have the same shape"),
             _jit(lambda x: np.stack([x, x[:2]]), X), ValueError,
             r"stack: all input arrays must have the same shape \(f64\[3\] with f64\[2\]\)"),
        # codegen's runtime index check: a traced index out of range raises, never reads
        # outside the array
        Case(("compiler/codegen/special.py", "index out of range"),
             lambda: jit(lambda x, i: x[i], compile="eager")(X, np.array([1, 3])), IndexError,
             "take: index out of range"),
    ]  # fmt: skip


def _shape_rule_cases() -> list[Case]:
    """Shape rules, reached through the IR Builder (the tracer checks most of them first)."""
    f, i, bl = T((3,)), T((3,), I64), T((3,), BOOL)
    return [
        Case(("compiler/primitives/elementwise.py", "needs a float operand"), _node("exp", [i]),
             ShapeError, r"exp: needs a float operand \(i64\[3\]\)"),
        Case(("compiler/primitives/elementwise.py", "operand dtypes differ"),
             _node("add", [f, T((3,), np.float32)]), ShapeError,
             r"add: operand dtypes differ \(the tracer casts first\) \(f64\[3\] with f32\[3\]\)"),
        Case(("compiler/primitives/elementwise.py", "condition must be bool"),
             _node("where", [f, f, f]), ShapeError, r"where: condition must be bool \(f64\[3\]\)"),
        Case(("compiler/primitives/elementwise.py", "branch dtypes differ"),
             _node("where", [bl, f, i]), ShapeError, "where: branch dtypes differ"),
        Case(("compiler/primitives/registry.py", "cannot broadcast"),
             _node("multiply", [f, T((4,))]), ShapeError,
             r"multiply: cannot broadcast \(f64\[3\] with f64\[4\]\)"),
        Case(("compiler/primitives/index.py", "indices must be integers"),
             _node("take", [f, f], {"axis": 0}), ShapeError, "take: indices must be integers"),
        Case(("compiler/primitives/index.py", "bad axis"), _node("take", [f, i], {"axis": 1}),
             ShapeError, r"take: bad axis 1 \(f64\[3\]\)"),
        Case(("compiler/primitives/index.py", "update must be {want}"),
             _node("scatter", [f, i, T((2,))], {"axis": 0}), ShapeError,
             r"scatter: update must be f64\[3\]"),
        Case(("compiler/primitives/index.py", "update must be {x.dtype}"),
             _node("set_slice", [f, T((1,))], {"index": ((0, 1, 2),)}), ShapeError,
             r"set_slice: update must be float64\[2\]"),
        Case(("compiler/primitives/decomp.py", '"eigh", "needs a float'), _node("eigh", [f]),
             ShapeError, r"eigh: needs a float \(..., n, n\) matrix \(f64\[3\]\)"),
        Case(("compiler/primitives/decomp.py", '"svd", "needs a float'), _node("svd", [f]),
             ShapeError, r"svd: needs a float \(..., m, n\) matrix"),
        Case(("compiler/primitives/decomp.py", "with m >= n"), _node("qr", [T((2, 3))]),
             ShapeError, r"qr: needs a float \(..., m, n\) matrix with m >= n"),
        Case(("compiler/primitives/mathops.py", "operand dtypes differ"),
             _node("fmod", [f, i]), ShapeError, "fmod: operand dtypes differ"),
        Case(("compiler/primitives/sort.py", 'fail("argsort"'),
             _node("argsort", [f], {"axis": 2}), ShapeError, "argsort: bad axis 2"),
        Case(("compiler/primitives/sort.py", "or an empty axis"),
             _node("argmax", [f], {"axis": 2, "keepdims": False}), ShapeError,
             "argmax: bad axis 2"),
        Case(("compiler/primitives/sort.py", "needs a 1-d sorted array"),
             _node("searchsorted", [T((2, 2)), f], {"side": "left"}), ShapeError,
             "searchsorted: needs a 1-d sorted array"),
        Case(("compiler/primitives/scan.py", 'fail(name, f"bad axis'),
             _node("cumsum", [f], {"axis": 1}), ShapeError, r"cumsum: bad axis 1 \(f64\[3\]\)"),
        Case(("compiler/primitives/scan.py", 'fail("prod", f"bad axis'),
             _node("prod", [f], {"axis": (1,), "keepdims": False}), ShapeError,
             r"prod: bad axis \(1,\)"),
        Case(("compiler/primitives/lapack.py", "needs a float (..., n, n) matrix"),
             _node("inv", [T((2, 3))]), ShapeError, r"inv: needs a float \(..., n, n\) matrix"),
        Case(("compiler/primitives/lapack.py", "with equal batch axes"),
             _node("solve", [T((2, 2)), T((2,))]), ShapeError,
             r"solve: needs \(..., n, n\) and \(..., n, k\) with equal batch axes"),
        Case(("compiler/primitives/lapack.py", "rows for a"),
             _node("solve", [T((2, 2)), T((3, 1))]), ShapeError,
             "solve: right-hand side has 3 rows for a 2x2 matrix"),
        Case(("compiler/primitives/elementwise.py", "needs a float operand"), _node("expit", [i]),
             ShapeError, r"expit: needs a float operand \(i64\[3\]\)"),
        Case(("compiler/primitives/special.py", "operands must share a float dtype"),
             _node("xlogy", [f, T((3,), np.float32)]), ShapeError,
             "xlogy: operands must share a float dtype"),
        Case(("compiler/primitives/linalg.py", "operands must share a float dtype"),
             _node("matmul", [T((2, 2), I64), T((2, 2), I64)]), ShapeError,
             "matmul: operands must share a float dtype"),
        Case(("compiler/primitives/linalg.py", "with equal batch dims"),
             _node("matmul", [T((2, 2, 2)), T((3, 2, 2))]), ShapeError,
             r"matmul: needs \(..., m, k\) @ \(..., k, n\) with equal batch dims"),
        Case(("compiler/primitives/linalg.py", "inner dimensions differ ("),
             _node("matmul", [T((2, 3)), T((2, 3))]), ShapeError,
             r"matmul: inner dimensions differ \(3 != 2\)"),
        Case(("compiler/primitives/reduce.py", "bad axis"),
             _node("sum", [f], {"axis": (1,), "keepdims": False}), ShapeError,
             r"sum: bad axis \(1,\)"),
        Case(("compiler/primitives/reduce.py", "zero-size reduction has no identity"),
             _jit(lambda x: np.max(x), np.zeros(0)), ShapeError,
             r"max: zero-size reduction has no identity \(f64\[0\]\)"),
        Case(("compiler/primitives/shape.py", "cannot reshape to"),
             _node("reshape", [f], {"shape": (2,)}), ShapeError,
             r"reshape: cannot reshape to \(2,\) \(f64\[3\]\)"),
        Case(("compiler/primitives/shape.py", "are not a permutation"),
             _node("transpose", [T((2, 3))], {"axes": (0, 0)}), ShapeError,
             r"transpose: axes \(0, 0\) are not a permutation"),
        Case(("compiler/primitives/shape.py", "cannot broadcast to"),
             _node("broadcast_to", [f], {"shape": (4,)}), ShapeError,
             r"broadcast_to: cannot broadcast to \(4,\) \(f64\[3\]\)"),
        Case(("compiler/primitives/shape.py", "entries for rank"),
             _node("slice", [f], {"index": ((0, 1, 1), (0, 1, 1))}), ShapeError,
             "slice: index has 2 entries for rank 1"),
        Case(("compiler/primitives/shape.py", "out of bounds"),
             _node("slice", [f], {"index": ((2, 1, 5),)}), ShapeError,
             r"slice: index \(\(2, 1, 5\),\) out of bounds"),
        Case(("compiler/primitives/shape.py", "needs at least one array"),
             _node("concatenate", [], {"axis": 0}), ShapeError,
             "concatenate: needs at least one array"),
        Case(("compiler/primitives/shape.py", "operands do not match along axes other than"),
             _node("concatenate", [T((2, 3)), T((2, 4))], {"axis": 0}), ShapeError,
             "concatenate: operands do not match along axes other than 0"),
        Case(("compiler/primitives/shape.py", "raise fail(\"concatenate\", f\"bad axis"),
             _node("concatenate", [f, f], {"axis": 1}), ShapeError,
             r"concatenate: bad axis 1 \(f64\[3\]\)"),
    ]  # fmt: skip


def _leaked_pullback():
    kept = []

    def f(x):
        out, pullback = vjp(np.sin, x)
        kept.append(pullback)
        return np.sum(out)

    grad(f, backend="interpret")(X)
    return kept[0](X)


def _in_grad(body):
    """Run `body(x)` inside a grad trace (summing whatever it returns)."""
    return lambda: grad(lambda x: np.sum(body(x)), backend="interpret")(X)


def _custom(kind, fun, rule=None, bwd=None):
    f = getattr(compiler, kind)(fun)
    if kind == "custom_vjp" and rule is not None:
        f.defvjp(rule, bwd)
    elif rule is not None:
        f.defjvp(rule)
    return f


def _transform_cases() -> list[Case]:
    from compiler import hvp, jacfwd, jvp, linearize

    apply, cust = "compiler/autodiff/apply.py", "compiler/transforms/custom.py"
    ident = lambda x: x  # noqa: E731
    twice = _custom(
        "custom_vjp", lambda x: x * 2.0, lambda x: (x * 2.0, None), lambda r, g: (g * 2.0,)
    )
    bad_fwd = _custom("custom_vjp", ident, lambda x: x, lambda r, g: (g,))
    bad_struct = _custom("custom_vjp", ident, lambda x: (x, None), lambda r, g: ([g],))
    jvp_not_pair = _custom("custom_jvp", ident, lambda p, t: t[0])
    jvp_tree = _custom("custom_jvp", ident, lambda p, t: (p[0], (t[0],)))
    jvp_shape = _custom("custom_jvp", ident, lambda p, t: (p[0], t[0][:2]))
    one_ct = _custom(
        "custom_vjp", lambda x, y: x * y, lambda x, y: (x * y, None), lambda r, g: (g,)
    )
    bad_shape = _custom("custom_vjp", ident, lambda x: (x, None), lambda r, g: (g[:2],))

    def closes_over(x):
        inner = _custom("custom_jvp", lambda y: y * x, lambda p, t: (p[0] * x, t[0] * x))
        return inner(x)

    noisy = _custom("custom_jvp", lambda x: x + _RNG.normal(size=3), lambda p, t: (p[0], t[0]))

    return [
        Case((apply, "must be a tuple or list"), lambda: jvp(ident, X, X), TypeError,
             "jvp: primals must be a tuple or list with one entry per positional argument"),
        Case((apply, "primals but"), lambda: jvp(ident, (X,), ()), ValueError,
             "jvp: 1 primals but 0 tangents"),
        Case((apply, "has structure"), lambda: jvp(ident, ({"a": X},), ({"b": X},)), TypeError,
             r"jvp: the tangent for argument 'x' has structure .* but the primal has"),
        Case((apply, "but the primal "), lambda: jvp(ident, (X,), (X[:2],)), ValueError,
             r"jvp: the tangent for argument 'x' has shape \(2,\), but the primal has shape"),
        Case((apply, "but the primal has dtype"),
             lambda: jvp(ident, (X,), (X.astype(np.float32),)), TypeError,
             r"has dtype float32 \(shape \(3,\)\), but the primal has dtype float64"),
        Case((apply, "the cotangent must have the output's"),
             _in_grad(lambda x: vjp(ident, x)[1]((x, x))[0]), TypeError,
             "vjp pullback: the cotangent must have the output's structure"),
        Case((apply, "cotangent shaped"), _in_grad(lambda x: vjp(ident, x)[1](x[:2])[0]),
             ValueError, r"vjp pullback: cotangent shaped \(2,\) for an output shaped \(3,\)"),
        Case(("compiler/autodiff/inline.py", "was called outside the traced function"),
             _leaked_pullback, RuntimeError,
             "vjp pullback was called outside the traced function it belongs to"),
        Case(("compiler/transforms/forward.py", "jvp expects a callable"),
             lambda: jvp(3, (X,), (X,)), TypeError, "jvp expects a callable, got int"),
        Case(("compiler/transforms/forward.py", "linearize expects a callable"),
             lambda: linearize(3, X), TypeError, "linearize expects a callable, got int"),
        Case(("compiler/transforms/jacobian.py", "{name} expects a callable"),
             lambda: jacfwd(None), TypeError, "jacfwd expects a callable, got NoneType"),
        Case(("compiler/transforms/jacobian.py", "hvp expects a callable"),
             lambda: hvp(1.0), TypeError, "hvp expects a callable, got float"),
        Case((cust, "draws random numbers"), _in_grad(noisy), TypeError,
             r"custom_jvp function <lambda> draws random numbers; .*pass the noise in"),
        Case((cust, "{self.kind} expects a callable"), lambda: compiler.custom_vjp(2),
             TypeError, "custom_vjp expects a callable, got int"),
        Case((cust, "pass arguments by position"), lambda: twice(x=X), TypeError,
             r"custom_vjp function <lambda>: pass arguments by position \(got keywords \['x'\]"),
        Case((cust, "has no rule yet"), _in_grad(compiler.custom_jvp(ident)), TypeError,
             r"custom_jvp function <lambda> has no rule yet: decorate a rule with @f.defjvp"),
        Case((cust, "needs two callables"), lambda: compiler.custom_vjp(ident).defvjp(1, 2),
             TypeError, r"custom_vjp.defvjp\(fwd, bwd\) needs two callables"),
        Case((cust, "defjvp needs a callable"), lambda: compiler.custom_jvp(ident).defjvp(1),
             TypeError, "custom_jvp.defjvp needs a callable"),
        Case((cust, "(output, residuals)"), _in_grad(bad_fwd), TypeError,
             r"custom_vjp fwd rule <lambda> of <lambda> must return \(output, residuals\); "
             r"it returned an array f64\[3\]"),
        Case((cust, "expected the argument's structure"), _in_grad(bad_struct), TypeError,
             r"custom_vjp bwd rule <lambda> of <lambda> returned a cotangent for argument 'x' "
             r"with structure .*; expected the argument's structure"),
        Case((cust, "expected a tuple of"), _in_grad(lambda x: one_ct(x, x)),
             TypeError, r"custom_vjp bwd rule <lambda> of <lambda> returned 1 cotangents; "
             r"expected a tuple of 2, one per positional argument of <lambda> \(x, y\)"),
        Case((cust, "returned a cotangent of shape"), _in_grad(bad_shape), ValueError,
             r"returned a cotangent of shape \(2,\) for argument 'x'; expected \(3,\)"),
        Case((cust, "returned an output tangent of shape"),
             lambda: jvp(jvp_shape, (X,), (X,), backend="interpret"), ValueError,
             r"returned an output tangent of shape \(2,\) for output 0; expected \(3,\)"),
        Case((cust, "reads a value traced by an enclosing"), _in_grad(closes_over), TypeError,
             "custom_jvp function <lambda> reads a value traced by an enclosing transformation"),
        Case((cust, "(output, output_tangent)"),
             lambda: jvp(jvp_not_pair, (X,), (X,), backend="interpret"), TypeError,
             r"custom_jvp rule <lambda> of <lambda> must return \(output, output_tangent\)"),
        Case((cust, "returned a tangent with structure"),
             lambda: jvp(jvp_tree, (X,), (X,), backend="interpret"), TypeError,
             r"returned a tangent with structure .*; expected the output's structure"),
    ]  # fmt: skip


CASES = (
    _transform_cases()
    + _api_cases()
    + _trace_cases()
    + _shape_rule_cases()
    + _verify_cases()
    + _unusual_cases()
    + distributed_cases(Case)
)
CASES += loop_cases(Case)  # scan / while_loop (tests/loops/error_cases.py)

# raise statements no user can reach (or that only guard gradc's own invariants), by
# (file, fragment of the statement): reason
INTERNAL = {
    ("compiler/ir/types.py", "do not broadcast"): "caught by registry.broadcast_shapes, which "
    "raises the op's ShapeError (tests/ir/test_types.py checks the raise against NumPy)",
    ("compiler/plan/mincut.py", "uncuttable edge"): "invariant: the planner's cut graph always "
    "has a finite cut (every source edge enters a storable value); tests/plan/test_mincut.py",
    ("compiler/codegen/calibrate.py", "its key is another host's"): "caught by load, which "
    "warns and ignores the file (tests/codegen/test_routing.py)",
    ("compiler/codegen/calibrate.py", "its entries are not one per"): "caught by load, which "
    "warns and ignores the file",
    ("compiler/codegen/calibrate.py", "has no array sample"): "invariant: every routable op's "
    "record has array samples (tests/codegen/test_routing.py measures them all)",
    ("compiler/codegen/calibrate.py", "SIMD mode is"): "invariant: routing.calibration "
    "measures in the mode it just read",
    ("runtime/tier.py", "AttributeError(name)"): "the attribute protocol (__getattr__)",
    ("compiler/codegen/atomics.py", "expected a 1-d int64 array"): "invariant: only generated "
    "row kernels call the atomics, on their int64 counters (tests/codegen/test_row_parts.py)",
    (
        "compiler/codegen/compile.py",
        "no NumPy-tier module",
    ): "invariant: compile_numpy interprets all-scalar graphs itself",
    ("compiler/__main__.py", "SystemExit"): "the CLI's exit status",
    ("compiler/docgen.py", "SystemExit"): "a build script's exit status",
    (
        "compiler/codegen/njit_driver.py",
        "raise NotNjit",
    ): "control flow: njit_generate catches it and the Python driver runs the graph",
    (
        "compiler/pipeline.py",
        "internal: captured values",
    ): "invariant: top-level traces capture none",
    ("compiler/api.py", "internal: traced arguments"): "invariant: only called inside a trace",
    ("compiler/trace/ops.py", "internal: no traced operand"): "invariant of the dispatch",
    ("compiler/trace/creation.py", "internal shape mismatch"): "invariant: NumPy's own shape",
    (
        "compiler/trace/indexing.py",
        "boolean-mask indexing",
    ): "unreachable: masks are rewritten (masking.py) before the key is parsed",
    ("compiler/trace/draws.py", "internal: a traced draw"): "invariant: only called by a view",
    (
        "compiler/trace/ops.py",
        "need at least one array to concatenate",
    ): "unreachable: with no traced operand NumPy never dispatches to gradc",
    (
        "compiler/trace/tracer.py",
        "mixes traced and plain values",
    ): "unreachable: np.asarray on the list calls Tracer.__array__, which raises first",
    (
        "compiler/trace/indexing.py",
        "one integer-array index per indexing expression",
    ): "unreachable: _merge_advanced merges or rejects several array indices first",
    ("compiler/interpret.py", "reference gave shape"): "invariant: shape rule vs reference",
    ("compiler/passes/fuse.py", "member read before it is defined"): "invariant of fuse",
    ("compiler/codegen/compile.py", "compiles without a buffer plan"): "invariant: pipeline",
    ("compiler/codegen/compile.py", "needs its buffer plan"): "invariant: the pipeline plans it",
    ("compiler/passes/rewrite.py", "with a value typed"): "invariant: a rule changed a type",
    ("compiler/passes/manager.py", "after pass"): "a pass broke the IR (check=True in tests)",
    ("compiler/plan/split.py", "reads a cotangent"): "invariant: fuse runs after the split",
    ("compiler/cli/localize.py", "cannot rebuild the node alone"): "invariant of localize",
    ("compiler/primitives/shape.py", "raise ValueError"): "caught on the next line",
    ("runtime/signature.py", "raise _Unhashable()"): "internal; re-raised with the leaf path",
    ("compiler/autodiff/batch.py", "raise NotBatchable"): "caught: Jacobians fall back to "
    "unrolled sweeps (tests/autodiff/test_batch.py)",
    ("compiler/autodiff/custom.py", "raise NotImplementedError"): "abstract CustomRule methods",
    ("compiler/autodiff/custom.py", "do not match its body"): "invariant: nodes built from "
    "their body",
    ("compiler/autodiff/inline.py", "internal:"): "invariant: splice binds typed inputs",
    ("compiler/transforms/custom.py", "raise NotImplementedError"): "abstract _ready",
    ("compiler/ir/digest.py", "raise _Opaque"): "internal: caught by exact_digest, which "
    "returns None (the graph is not cached)",
    ("compiler/passes/fuse.py", "raise _Capped"): "internal: caught by _fuse_round, which "
    "groups again with chunks",
    ("runtime/artifacts.py", "key must be 64 hex digits"): "invariant: keys are the stage "
    "cache's sha256 digests (tests/runtime/test_artifacts.py)",
    ("runtime/artifacts.py", "kind must be one of"): "invariant: the two callers pass "
    "'stage' or 'render' (tests/runtime/test_artifacts.py)",
    ("runtime/row_threads.py", "raise errors[0]"): "re-raises what a chunk raised, on any "
    "thread, once all have ended (tests/runtime/test_row_threads.py)",
    (
        "compiler/ir/verify.py",
        'raise VerifyError(f"node {i} ({n.op}): {exc}")',
    ): "covered by the verify cases (kept for the fragment match)",
    # the native scalar call: none reaches the user; each one means the Python scalar call
    # keeps the calls (tests/runtime/test_native_call.py, tests/codegen/test_llscalar.py)
    ("compiler/codegen/llscalar.py", "raise _Unsupported"): "internal: caught by lowerable, "
    "which keeps the Python scalar call",
    ("compiler/codegen/llcall.py", "the transformation is gone"): "internal: the background "
    "job's check; the job then installs nothing",
    ("compiler/codegen/llcall.py", "native call gave"): "internal: the check before the "
    "install; logged, the Python scalar call stays",
    ("runtime/native_call.py", "layout probes failed"): "internal: caught by facts(), which "
    "returns None (no native call in this process)",
    ("runtime/native_call.py", "PyTypeObject's fields"): "internal: caught by facts()",
    ("runtime/native_call.py", "tp_call is not where expected"): "internal: caught by facts()",
    ("runtime/native_call.py", "made by its tp_alloc"): "internal: caught by facts()",
    ("runtime/native_call.py", "is not the inherited slot_tp_call"): "internal: caught by "
    "schedule, which logs it and installs nothing",
}


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c.site[0].split('/')[-1]}:{c.site[1][:40]}" for c in CASES]
)
def test_errors_raise_the_documented_type_and_message(case):
    with pytest.raises(BaseException) as info:
        case.trigger()
    err = info.value
    assert type(err) is case.exc, f"raised {type(err).__name__}: {err}"
    assert re.search(case.match, str(err)), f"message {str(err)!r} !~ {case.match!r}"


def _raise_sites() -> list[tuple[str, int, str]]:
    sites = []
    for base in ("compiler", "runtime"):
        for path in sorted((ROOT / base).rglob("*.py")):
            src = path.read_text()
            rel = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    sites.append((rel, node.lineno, ast.get_source_segment(src, node) or ""))
            if "codegen" in rel:  # raises inside generated-kernel templates (strings)
                for m in re.finditer(r"raise \w+\([^\n]*", src):
                    if '"""' in src[: m.start()] and _in_string(src, m.start()):
                        line = src[: m.start()].count("\n") + 1
                        sites.append((rel, line, m.group(0)))
    return sites


def _in_string(src: str, pos: int) -> bool:
    return src[:pos].count('"""') % 2 == 1


def _covers(site: tuple[str, int, str], key: tuple[str, str]) -> bool:
    path, _, text = site
    return key[0] == path and key[1] in text


def test_errors_every_raise_site_is_accounted_for():
    """Each `raise` in compiler/ and runtime/ has a case above or a reason in INTERNAL."""
    missing = []
    for site in _raise_sites():
        path, line, text = site
        if not any(_covers(site, k) for k in [c.site for c in CASES] + list(INTERNAL)):
            missing.append(f"{path}:{line}: {text.splitlines()[0][:100]}")
    assert not missing, "raise sites without a test in test_errors.py:\n" + "\n".join(missing)


def test_errors_cases_name_real_raise_sites():
    """Every case's (file, fragment) still matches some raise statement."""
    sites = _raise_sites()
    stale = [c.site for c in CASES if not any(_covers(s, c.site) for s in sites)]
    stale += [k for k in INTERNAL if not any(_covers(s, k) for s in sites)]
    assert not stale, stale


def test_errors_user_exceptions_propagate_and_leave_nothing_behind():
    """An exception from the user's function reaches the caller unchanged; NumPy's creation
    functions are untouched (tracing patches nothing); nothing half-built is cached; later
    calls work."""
    originals = (np.zeros, np.ones, np.empty, np.full, np.eye)

    class Stop(Exception):
        pass

    calls = []

    def f(x, fail):
        calls.append(fail)
        y = np.zeros(3) + x
        if fail:
            raise fail("from user code")
        return np.sum(y * y)

    g = grad(f)
    for exc in (Stop, KeyboardInterrupt):
        with pytest.raises(exc):
            g(X, exc)  # the static value decides; each failure retraces
        assert (np.zeros, np.ones, np.empty, np.full, np.eye) == originals
        assert type(np.zeros(2)) is np.ndarray
    with pytest.raises(Stop):
        g(X, Stop)  # not cached as a success
    np.testing.assert_array_equal(g(X, None), 2 * X)
    assert calls.count(Stop) == 2
