"""`gradc` through a subprocess: demo, ir stages and formats, check, bench, cache, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from compiler.ir import Graph, format_graph
from tests.cli.util import numba_backend_available, run_gradc, subprocess_env

MODEL = textwrap.dedent(
    """\
    import numpy as np


    def loss(W, x, n):
        h = np.tanh(x @ W)
        return np.sum(h ** 2) / n


    def branchy(W, x):
        h = x @ W
        if h > 0:
            return np.sum(h)
        return -np.sum(h)


    def broken(W, x):
        return np.sum(W) + undefined_name


    def vector(W, x):
        return np.tanh(x @ W)
    """
)
MODEL_ARGS = ["--arg", "W=f64[5,3]", "--arg", "x=f64[4,5]"]


@pytest.fixture
def model(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    return tmp_path


def _ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_cli_demo_prints_walkthrough_numbers(tmp_path):
    out = _ok(run_gradc(tmp_path, "demo"))
    assert "L = 9.0" in out
    assert "dL/dw = 18.0  dL/dx = 12.0  dL/db = 6.0  (dL/dy = -6.0)" in out
    assert "square" in out and "negative" in out  # traced and joint IR are printed
    assert "agree with finite differences" in out


def test_cli_ir_traced_stage_has_forward_ops_only(tmp_path):
    out = _ok(run_gradc(tmp_path, "ir", "--example", "mlp", "--stage", "traced"))
    for op in ("matmul", "tanh", "exp", "log", "sum", "max"):
        assert f"= {op} " in out, op
    assert "transpose" not in out  # adjoint-only ops appear in the joint graph


def test_cli_ir_grad_stage_has_adjoint_ops(tmp_path):
    out = _ok(run_gradc(tmp_path, "ir", "--example", "mlp", "--stage", "grad"))
    assert "= transpose " in out and "= matmul " in out
    assert out.rstrip().endswith("}")
    ret = [line for line in out.splitlines() if line.strip().startswith("return")][0]
    assert ret.count("%") == 5  # the loss and four gradients


def test_cli_ir_passes_stage_is_smaller_than_joint_graph(tmp_path):
    joint = _ok(run_gradc(tmp_path, "ir", "--example", "rnn", "--stage", "grad"))
    opt = _ok(run_gradc(tmp_path, "ir", "--example", "rnn", "--stage", "passes"))

    def top_level_nodes(text):  # fused bodies are printed indented below their node
        return sum(1 for line in text.splitlines() if line.startswith("  %"))

    assert top_level_nodes(opt) < top_level_nodes(joint)


def test_cli_ir_dot_format_is_graphviz(tmp_path):
    out = _ok(run_gradc(tmp_path, "ir", "--example", "seed", "--format", "dot"))
    assert out.startswith("digraph")
    assert "->" in out


def test_cli_ir_json_round_trips_through_graph_from_json(tmp_path):
    text = _ok(run_gradc(tmp_path, "ir", "--example", "logreg", "--stage", "grad"))
    data = json.loads(
        _ok(run_gradc(tmp_path, "ir", "--example", "logreg", "--stage", "grad", "--format", "json"))
    )
    graph = Graph.from_json(data)
    assert format_graph(graph) == text.rstrip("\n")
    assert Graph.from_json(graph.to_json()).fingerprint() == graph.fingerprint()


def test_cli_ir_output_file(tmp_path):
    proc = run_gradc(tmp_path, "ir", "--example", "seed", "--format", "json", "-o", "g.json")
    _ok(proc)
    assert Graph.from_json(json.loads((tmp_path / "g.json").read_text())).nodes


def test_cli_ir_locs_name_the_user_file(model):
    out = _ok(
        run_gradc(
            model, "ir", "model.py:loss", *MODEL_ARGS, "--arg", "n=2", "--stage", "traced", "--locs"
        )
    )
    assert "= tanh %" in out and "# model.py:5" in out
    assert "# model.py:6" in out


def test_cli_ir_print_after_pass(model):
    out = _ok(
        run_gradc(model, "ir", "model.py:loss", *MODEL_ARGS, "--arg", "n=2", "--print-after", "cse")
    )
    assert out.startswith("graph(")


def test_cli_ir_vjp_mode_prints_forward_and_backward(model):
    out = _ok(run_gradc(model, "ir", "model.py:vector", *MODEL_ARGS, "--mode", "vjp"))
    assert "# forward" in out and "# backward" in out


def test_cli_ir_jacobian_mode_says_which_mode_it_picked(model):
    # vector: W f64[5,3] and x f64[4,5] (35 elements) -> f64[4,3] (12): reverse is cheaper
    args = ["ir", "model.py:vector", *MODEL_ARGS, "--mode", "jacobian", "--stage", "traced"]
    out = _ok(run_gradc(model, *args))
    assert out.startswith("# jacobian: reverse mode (35 input elements, 12 output elements)")
    (model / "tall.py").write_text(
        "import numpy as np\n\ndef tall(x):\n    return x[:, None] * x\n"
    )
    out = _ok(run_gradc(model, "ir", "tall.py:tall", "--arg", "x=f64[3]", "--mode", "jacobian"))
    assert out.startswith("# jacobian: forward mode (3 input elements, 9 output elements)")


def test_cli_ir_jit_mode_has_no_grad_stage(tmp_path):
    proc = run_gradc(tmp_path, "ir", "--example", "seed", "--mode", "jit", "--stage", "grad")
    assert proc.returncode == 2
    assert "no gradient stage" in proc.stderr


def test_cli_ir_svg_without_graphviz_says_so(tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = subprocess_env(tmp_path, PATH=str(empty))
    proc = run_gradc(tmp_path, "ir", "--example", "seed", "--format", "svg", env=env)
    assert proc.returncode == 2
    assert "Graphviz" in proc.stderr and "--format dot" in proc.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_cli_ir_svg_with_graphviz(tmp_path):
    out = _ok(run_gradc(tmp_path, "ir", "--example", "seed", "--format", "svg"))
    assert "<svg" in out


def test_cli_ir_kernel_stage(tmp_path):
    proc = run_gradc(tmp_path, "ir", "--example", "seed", "--stage", "kernel")
    if numba_backend_available():
        assert proc.returncode == 0, proc.stderr
        assert "njit" in proc.stdout
    else:
        assert proc.returncode == 2 and "Numba backend" in proc.stderr


def test_cli_check_passes_on_correct_function(tmp_path):
    out = _ok(run_gradc(tmp_path, "check", "--example", "rnn"))
    assert "gradients agree with central finite differences" in out
    assert "FAIL" not in out


def test_cli_check_float32_user_function(model):
    out = _ok(
        run_gradc(
            model,
            "check",
            "model.py:loss",
            "--arg",
            "W=f32[5,3]",
            "--arg",
            "x=f32[4,5]",
            "--arg",
            "n=3",
        )
    )
    assert "d/dW" in out and "d/dx" in out and "gradients agree" in out


def test_cli_tracer_error_points_at_user_line_without_traceback(model):
    proc = run_gradc(model, "ir", "model.py:branchy", *MODEL_ARGS)
    assert proc.returncode == 1
    assert "TracerError" in proc.stderr and "model.py:11" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_verbose_shows_the_traceback(model):
    proc = run_gradc(model, "ir", "model.py:branchy", *MODEL_ARGS, "-v")
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_cli_user_exception_names_the_raising_line(model):
    proc = run_gradc(model, "ir", "model.py:broken", *MODEL_ARGS)
    assert proc.returncode == 1
    assert "NameError" in proc.stderr and "model.py:17" in proc.stderr


def test_cli_usage_errors_exit_2(model):
    proc = run_gradc(model, "ir", "model.py:loss", "--arg", "W=f64[5,3]")
    assert proc.returncode == 2 and "no value for x, n" in proc.stderr
    proc = run_gradc(model, "ir", "model.py:nope")
    assert proc.returncode == 2 and "defines: branchy, broken, loss, vector" in proc.stderr
    proc = run_gradc(model, "ir", "--example", "nope")
    assert proc.returncode == 2 and "seed" in proc.stderr


def test_cli_bench_prints_a_table(tmp_path):
    out = _ok(
        run_gradc(
            tmp_path, "bench", "--example", "logreg", "--backend", "interpret", "--time", "0.05"
        )
    )
    assert "interpret" in out and "per call" in out and "MiB" in out


@pytest.mark.compiled
def test_cli_cache_info_and_clear(tmp_path):
    out = _ok(run_gradc(tmp_path, "cache", "info"))
    assert str(tmp_path / "gradc-cache") in out and "entries" in out
    assert "modules   0 in the current folder" in out
    code = (
        "import numpy as np; from compiler import value_and_grad; "
        "value_and_grad(lambda x: np.sum(np.sin(x) * x), compile='eager')(np.ones(5))"
    )
    env = subprocess_env(tmp_path)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    out = _ok(run_gradc(tmp_path, "cache", "info"))
    mods = [line for line in out.splitlines() if line.startswith("  gradc_")]
    assert len(mods) == 1 and "value_and_grad: python driver" in mods[0]
    assert "njit functions compiled: k_" in mods[0]  # the fused loop's kernel, by name
    assert "removed" in _ok(run_gradc(tmp_path, "cache", "clear"))


def test_cli_gradc_log_env_turns_on_logging(tmp_path):
    env = subprocess_env(tmp_path, GRADC_LOG="info")
    proc = run_gradc(tmp_path, "ir", "--example", "seed", env=env)
    assert proc.returncode == 0 and "gradc INFO" in proc.stderr


def test_cli_examples_lists_builtins(tmp_path):
    out = _ok(run_gradc(tmp_path, "examples"))
    for name in ("seed", "mlp", "logreg", "rnn"):
        assert name in out
