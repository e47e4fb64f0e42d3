"""The plan stage is the plan that runs: for every benchmark workload (small sizes) and every
compiled stage, `gradc ir --stage plan --format json`'s `peak_bytes` equals the bytes of the
arena that `--stage kernel --format json` reports the compiled stage allocating."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import value_and_grad
from compiler.cli.stages import render, stage_sections
from compiler.cli.target import Target
from tests.codegen.util import cache_dir  # noqa: F401  (fixture)

# end to end through compiled code (the suite default is the NumPy tier, tests/conftest.py)
pytestmark = pytest.mark.compiled

ROOT = Path(__file__).resolve().parents[2]


def _workloads():
    spec = importlib.util.spec_from_file_location(
        "bench_workloads", ROOT / "benchmarks/workloads.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod.WORKLOADS


WORKLOADS = _workloads()


def _target(w) -> Target:
    params, data = w.make(np.random.default_rng(0), w.dtype, **w.small)
    args = [params, *data]
    names = [f"a{i}" for i in range(len(args))]
    return Target(w.name, w.loss, names, args, ["?"] * len(args), (0,))


def _json(target, stage, mode, memory) -> list[dict]:
    out = json.loads(render(stage_sections(target, stage, mode, memory=memory), "json"))
    if stage == "plan":
        return out["stages"]
    return [out] if "source" in out else list(out.values())


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_plan_peak_bytes_is_the_compiled_arena(name):
    w = WORKLOADS[name]
    target = _target(w)
    memory = w.gradc_options.get("memory")
    for mode in ("value_and_grad", "vjp", "jit"):
        plans = _json(target, "plan", mode, memory)
        kernels = _json(target, "kernel", mode, memory)
        assert [p["name"] for p in plans] == [k["name"] for k in kernels]
        for p, k in zip(plans, kernels):
            assert p["peak_bytes"] == k["arena_bytes"], (mode, p["name"])
            arena = [s for s in p["slots"] if not s["fresh"]]
            assert sum(s["bytes"] for s in arena) == p["peak_bytes"]


def test_plan_json_says_which_values_are_stored_or_recomputed():
    w = WORKLOADS["deep-sqrt"]
    plan = json.loads(render(stage_sections(_target(w), "plan", memory="sqrt"), "json"))["plan"]
    storage = {v["storage"] for v in plan["values"]}
    assert {"stored", "recomputed"} <= storage
    recomputed = [v for v in plan["values"] if v["storage"] == "recomputed"]
    assert plan["recompute_count"] >= 1
    names = {v["value"] for v in plan["values"]}
    assert all(v["recomputes"] in names for v in recomputed)


def test_the_api_runs_exactly_the_lowered_graph_and_plan():
    w = WORKLOADS["mlp"]
    params, data = w.make(np.random.default_rng(0), w.dtype, **w.small)
    vg = value_and_grad(w.loss)
    vg(params, *data)
    (entry,) = vg._cache.values()
    (low,) = vg.stages(params, *data).lowered
    assert entry.fn.graph is low.graph and entry.fn.buffers is low.buffers
    assert entry.fn.arena.nbytes == low.arena_bytes > 0
