"""Golden IR dumps: each pass (and the pipeline without fuse) on each case's joint graph.

Refresh with `pytest tests/passes --update-golden` and review the diff like code.
"""

from __future__ import annotations

import pytest

from compiler.passes import PASSES, run_passes


@pytest.mark.parametrize("name", ["simplify", "fold", "batch", "cse", "dce"])
def test_golden_pass(name, case, golden):
    golden(f"{name}/{case.name}.txt", str(PASSES[name](case.joint)))


def test_golden_pipeline(case, golden):
    # fuse is left out so these dumps do not change with the fusion heuristics
    golden(f"pipeline/{case.name}.txt", str(run_passes(case.joint, disable=("fuse",))))
