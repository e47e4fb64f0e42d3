"""`check_gradients` in-process: success, and localising a deliberately broken VJP rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from compiler.cli.check import check_gradients
from compiler.cli.target import resolve
from compiler.primitives import OPS


def _loss(W, x):
    h = x @ W
    h = np.tanh(h)  # the line the broken rule should be blamed on
    return np.sum(h * h)


TANH_LINE = _loss.__code__.co_firstlineno + 2


def _args():
    rng = np.random.default_rng(1)
    return [rng.standard_normal((5, 3)), rng.standard_normal((4, 5))]


def test_check_gradients_accepts_correct_function():
    report = check_gradients(_loss, _args(), (0, 1), names=["W", "x"], backend="interpret")
    assert report.ok, report.format()
    assert report.fault is None and [c.name for c in report.leaves] == ["W", "x"]


@pytest.mark.parametrize("name", ["seed", "mlp", "logreg", "rnn", "inplace"])
def test_check_gradients_accepts_builtin_examples(name):
    t = resolve(None, name, [], None)
    report = check_gradients(t.fun, t.args, t.argnums, names=t.names, backend="interpret")
    assert report.ok, report.format()


def test_check_gradients_localises_a_broken_vjp(monkeypatch):
    wrong = dataclasses.replace(OPS["tanh"], vjp=lambda ct, x, *, out: (ct * (1.0 + out * out),))
    monkeypatch.setitem(OPS, "tanh", wrong)
    report = check_gradients(_loss, _args(), (0, 1), names=["W", "x"], backend="interpret")
    assert not report.ok
    assert report.stage == "autodiff"
    assert report.fault is not None and report.fault.op == "tanh"
    assert report.fault.loc.endswith(f"test_check.py:{TANH_LINE}")
    text = report.format()
    assert "FAIL" in text and "`tanh`" in text and f"test_check.py:{TANH_LINE}" in text


def test_check_gradients_blames_a_pass_that_breaks_the_gradient(monkeypatch):
    from compiler.passes import PASSES

    def bad_dce(graph):  # "optimizes" by negating every gradient output
        from compiler.ir import Builder
        from compiler.ir.graph import copy_into

        b = Builder()
        ins = [b.add_input(v.type) for v in graph.inputs]
        outs = copy_into(b, graph, ins)
        outs = outs[:1] + [b.add("negative", [v]) for v in outs[1:]]
        return b.build(outs, graph.meta)

    monkeypatch.setitem(PASSES, "dce", bad_dce)
    report = check_gradients(_loss, _args(), (0, 1), names=["W", "x"], backend="interpret")
    assert not report.ok
    assert report.stage == "pass:dce", report.format()


def test_check_gradients_float32_uses_a_looser_tolerance():
    args = [a.astype(np.float32) for a in _args()]
    report = check_gradients(_loss, args, (0,), names=["W", "x"], backend="interpret")
    assert report.ok, report.format()
    assert report.leaves[0].tol > 1e-4


def test_check_gradients_blames_the_backend_when_only_compiled_code_is_wrong(monkeypatch):
    import compiler.pipeline as pipeline

    real_lower = pipeline.lower

    def bad_lower(low, backend, *a, **k):  # a "backend" that flips the sign of gradients
        fn = real_lower(low, "interpret")
        n_primal = low.graph.meta.get("n_primal_outputs", 1)
        return lambda *a: [o if i < n_primal else -o for i, o in enumerate(fn(*a))]

    monkeypatch.setattr(pipeline, "lower", bad_lower)
    report = check_gradients(_loss, _args(), (0, 1), names=["W", "x"], backend="interpret")
    assert not report.ok
    assert report.stage == "codegen", report.format()


def test_check_gradients_names_custom_rules_when_they_differ_from_fd():
    from compiler import stop_gradient

    def f(x):
        return np.sum(stop_gradient(x) * x)

    report = check_gradients(f, [np.ones(3)], (0,), names=["x"], backend="interpret")
    assert not report.ok and report.stage == "autodiff"
    assert "user-defined derivative rules (stop_gradient)" in report.verdict
