"""Golden dumps of the later pipeline stages on each case's joint graph: the graph after
`fuse`, the plan stage (decisions, slots, peak bytes) and the generated kernel module.

Refresh with `pytest tests/passes --update-golden` and review the diff like code.
"""

from __future__ import annotations

import pytest

from compiler.pipeline import Options, grad_stages, lower
from compiler.plan import format_plan
from tests.codegen.util import cache_dir  # noqa: F401  (fixture)

# the stages as on every host: routing by the op records, scalar libm (docs/routing.md)
pytestmark = pytest.mark.usefixtures("scalar_libm")


@pytest.fixture
def stages(case):
    fused = []
    st = grad_stages(
        case.graph, case.joint, Options(), keep=lambda n, g: n == "fuse" and fused.append(g)
    )
    return st, fused[0]


def test_golden_fuse(case, stages, golden):
    golden(f"fuse/{case.name}.txt", str(stages[1]))


def test_golden_plan(case, stages, golden):
    st, _ = stages
    low = st.lowered[0]
    golden(f"plan/{case.name}.txt", format_plan(st.plan, [(low.name, low.graph, low.buffers)]))


def test_golden_kernel(case, stages, golden):
    source = lower(stages[0].lowered[0], "numba").source
    # the first line names gradc's version: kept out so a release does not rewrite these
    golden(f"kernel/{case.name}.py.txt", source.split("\n", 1)[1])
