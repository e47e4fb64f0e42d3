"""The pass registry and runner."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import trace
from compiler.ir import Graph, Node, VerifyError
from compiler.passes import (
    ALGEBRAIC_PASSES,
    DEFAULT_PASSES,
    PASSES,
    PIPELINE,
    disabled_from_env,
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
    with pytest.raises(
        ValueError, match="unknown pass 'nope'.*known passes: batch, buffers, cse, dce"
    ):
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


def test_pipeline_only_passes_are_known_but_not_runnable_alone():
    # route, buffers, ... need the pipeline's context (backend, policy): disabling them by
    # name is fine, running them through run_passes is a clear error
    assert set(PIPELINE) <= set(known_passes())
    run_passes(_g(), disable=("route", "buffers"))
    with pytest.raises(ValueError, match="runs only in the pipeline"):
        run_passes(_g(), names=("route",))
    with pytest.raises(ValueError, match="runs only in the pipeline"):
        get_pass("schedule")


def test_pipeline_lists_every_pass_once_in_order():
    # planning after the algebraic passes (cse must not merge recomputed clones), routing
    # before fusion (routed ops are barriers), buffers last (they plan the final order)
    assert len(set(PIPELINE)) == len(PIPELINE)
    assert PIPELINE[: len(ALGEBRAIC_PASSES)] == ALGEBRAIC_PASSES
    order = [PIPELINE.index(n) for n in ("plan", "route", "fuse", "pushdown", "schedule")]
    assert order == sorted(order) and PIPELINE[-1] == "buffers"
    assert DEFAULT_PASSES == (*ALGEBRAIC_PASSES, "fuse")


def test_disabled_from_env():
    assert disabled_from_env({}) == ()
    assert disabled_from_env({"GRADC_DISABLE_PASSES": " cse, fuse,,cse "}) == ("cse", "fuse")
    with pytest.raises(ValueError, match="GRADC_DISABLE_PASSES.*known passes"):
        disabled_from_env({"GRADC_DISABLE_PASSES": "cse,fusion"})
