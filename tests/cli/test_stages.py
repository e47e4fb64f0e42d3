"""`gradc ir` in-process: every pipeline pass printable and disableable, and the kernel stage
compiling exactly the graph the printed stages show."""

from __future__ import annotations

import re

import pytest

from compiler.cli.stages import render, stage_sections
from compiler.cli.target import resolve
from compiler.passes import PIPELINE
from compiler.pipeline import LOWERING, lower_passes
from tests.codegen.graphs import logreg_shape_graph
from tests.codegen.util import cache_dir  # noqa: F401  (fixture)

# the stages as on every host: routing by the op records, scalar libm (docs/routing.md)
pytestmark = pytest.mark.usefixtures("scalar_libm")


@pytest.fixture(scope="module")
def mlp():
    return resolve(None, "mlp", [], None)


def _text(sections) -> str:
    return render(sections, "text").decode()


@pytest.mark.parametrize("name", PIPELINE)
def test_every_pipeline_pass_prints_after_itself(mlp, name):
    grad = stage_sections(mlp, "passes", print_after=name)
    assert len(grad) == 1
    vjp = stage_sections(mlp, "passes", mode="vjp", print_after=name)
    # the lowering passes run once per compiled stage: forward and backward
    assert len(vjp) == (2 if name in LOWERING else 1)
    if name == "buffers":
        assert "planned peak bytes" in grad[0].text
    else:
        assert grad[0].graph is not None


def test_print_after_schedule_is_the_graph_codegen_compiles(mlp):
    after = _text(stage_sections(mlp, "passes", print_after="schedule"))
    assert after == _text(stage_sections(mlp, "passes"))


def test_disable_route_keeps_every_op_in_loops(mlp):
    routed = _text(stage_sections(mlp, "passes"))
    assert "route='library'" in routed  # the mlp's tanh, exp and log
    plain = _text(stage_sections(mlp, "passes", disable=("route",)))
    assert "route=" not in plain


@pytest.mark.parametrize(
    "name, example", [("plan", "mlp"), ("fuse", "mlp"), ("schedule", "rnn"), ("buffers", "mlp")]
)
def test_each_later_pass_can_be_disabled(name, example):
    target = resolve(None, example, [], None)
    on = _text(stage_sections(target, "plan"))
    off = _text(stage_sections(target, "plan", disable=(name,)))
    assert on != off


def test_disable_pushdown_keeps_the_cheap_output_stored():
    g = logreg_shape_graph(64)

    def widest(low):
        return max(len(n.outputs) for n in low.graph.nodes if n.op == "fused")

    assert widest(lower_passes(g, "t")) == 2
    assert widest(lower_passes(g, "t", disable=("pushdown",))) == 3


def test_kernel_comments_follow_the_passes_dump(mlp):
    # every `# %N:type = op %a, %b` line of the driver is a node line of the printed graph
    line = re.compile(r"((?:%\d+:\S+(?:, )?)+) = (\w+)((?: %\d+,?)*)")

    def parse(text: str, prefix: str) -> list[tuple]:
        out = []
        for ln in text.splitlines():
            if ln.startswith(prefix):  # the graph's top level (bodies are indented deeper)
                m = line.match(ln[len(prefix) :])
                if m:
                    outs = tuple(re.findall(r"(%\d+):", m.group(1)))
                    out.append((outs, m.group(2), tuple(re.findall(r"%\d+", m.group(3)))))
        return out

    nodes = parse(_text(stage_sections(mlp, "passes")), "  ")
    steps = parse(stage_sections(mlp, "kernel")[0].text, "        # ")
    assert len(steps) >= 10
    assert set(steps) <= set(nodes)
