"""The pass registry and runner."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import trace
from compiler.ir import Graph, Node, VerifyError
from compiler.passes import (
    DEFAULT_PASSES,
    PASSES,
    disabled_from_env,
    fixpoint,
    format_report,
    get_pass,
    known_passes,
    register_pass,
    run_passes,
)


def _g():
    return trace(lambda x: np.tanh(x * 1.0) + np.tanh(x * 1.0), np.ones(3))


def test_default_passes_are_explicit_with_fuse_last():
    assert DEFAULT_PASSES == ("loops", "simplify", "fold", "batch", "cse", "dce", "fuse")
    assert set(DEFAULT_PASSES) <= set(known_passes())


def test_register_pass_rejects_duplicates():
    with pytest.raises(ValueError, match="registered twice"):
        register_pass("dce")(lambda g: g)


@pytest.mark.parametrize(
    "kw", [{"names": ("simplify", "nope")}, {"disable": ("nope",)}, {"print_after": "nope"}]
)
def test_run_passes_unknown_name_lists_known_passes(kw):
    with pytest.raises(ValueError, match="unknown pass 'nope'.*known passes: batch, cse, dce"):
        run_passes(_g(), **kw)


def test_run_passes_disable_and_report():
    report = []
    g = _g()
    out = run_passes(g, disable=("cse", "fuse"), report=report)
    names = [r.name for r in report]
    assert "cse" not in names and names[:5] == ["loops", "simplify", "fold", "batch", "dce"]
    assert report[0].changed is False  # no loops
    assert report[1].nodes_before == len(g.nodes) and report[1].changed
    assert report[2].changed is False  # fold finds no constants
    assert report[-1].nodes_after == len(out.nodes)
    assert all(r.seconds >= 0 for r in report)
    assert "simplify" in format_report(report)
    assert [n.op for n in out.nodes].count("tanh") == 2  # no cse


def test_run_passes_check_names_the_failing_pass(monkeypatch):
    def broken(g: Graph) -> Graph:
        n = g.nodes[0]
        bad = Node(n.op, n.inputs, {"shape": (7,)}, n.outputs)  # attrs that break the type
        return Graph(g.inputs, (bad,) + g.nodes[1:], g.outputs)

    monkeypatch.setitem(PASSES, "broken", broken)
    g = trace(lambda x: np.reshape(x, (3, 1)), np.ones(3))
    assert run_passes(g, names=("broken",)) is not g  # unchecked: passes through
    with pytest.raises(VerifyError, match="after pass 'broken'"):
        run_passes(g, names=("broken",), check=True)


def test_run_passes_print_after(capsys):
    run_passes(_g(), print_after=("cse",))
    out = capsys.readouterr().out
    assert out.startswith("# after cse\ngraph(") and "after dce" not in out


def test_run_passes_skips_an_optional_pass_that_is_not_installed(monkeypatch):
    monkeypatch.delitem(PASSES, "fuse", raising=False)
    report = []
    run_passes(_g(), report=report, disable=("fuse",))
    run_passes(_g(), report=report)
    assert "fuse" not in [r.name for r in report]
    with pytest.raises(ValueError, match="not available"):
        get_pass("fuse")


def test_fixpoint_stops_when_nothing_changes():
    calls = []

    def counting(g: Graph) -> Graph:
        calls.append(1)
        return g

    out = fixpoint(["simplify", "cse", "dce", counting], _g())
    assert [n.op for n in out.nodes] == ["tanh", "add"]
    assert len(calls) == 2  # one round that changed something, one that did not


def test_fixpoint_warns_at_the_iteration_cap():
    def churn(g: Graph) -> Graph:
        return Graph(g.inputs, g.nodes, g.outputs, g.meta)  # always a new object

    with pytest.warns(RuntimeWarning, match="did not reach a fixpoint in 3 rounds"):
        fixpoint([churn], _g(), max_iter=3)


def test_disabled_from_env():
    assert disabled_from_env({}) == ()
    assert disabled_from_env({"GRADC_DISABLE_PASSES": " cse, fuse,,cse "}) == ("cse", "fuse")
    with pytest.raises(ValueError, match="GRADC_DISABLE_PASSES.*known passes"):
        disabled_from_env({"GRADC_DISABLE_PASSES": "cse,fusion"})
