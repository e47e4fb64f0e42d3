"""Every script in examples/ runs in a subprocess and shows what it promises."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from tests.cli.util import ROOT, subprocess_env

SCRIPTS = sorted(p.name for p in (ROOT / "examples").glob("*.py"))


def _run(tmp_path, name: str, *args: str, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=tmp_path,
        env=subprocess_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_examples_all_scripts_are_tested():
    assert set(SCRIPTS) == {
        "seed_walkthrough.py",
        "mlp_sgd.py",
        "logreg_scipy.py",
        "rnn_sine_scan.py",
        "ode_fit_scipy.py",
        "logreg_dask.py",
        "newton_hessian.py",
        "trust_ncg_scipy.py",
    }


def test_examples_seed_walkthrough(tmp_path):
    out = _run(tmp_path, "seed_walkthrough.py")
    assert "L = 9.0" in out
    assert "dL/dw = 18.0  dL/dx = 12.0  dL/db = 6.0  (dL/dy = -6.0)" in out


def test_examples_mlp_sgd_loss_falls(tmp_path):
    out = _run(tmp_path, "mlp_sgd.py")
    losses = [float(x) for x in re.findall(r"epoch +\d+ +loss ([0-9.e+-]+)", out)]
    assert len(losses) >= 10
    assert losses[-1] < 0.25 * losses[0]
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 0.8 * (len(losses) - 1)


def test_examples_logreg_scipy_converges(tmp_path):
    out = _run(tmp_path, "logreg_scipy.py")
    assert "converged: True" in out
    gnorm = float(re.search(r"gradient norm at optimum ([0-9.e+-]+)", out).group(1))
    assert gnorm < 1e-5
    assert float(re.search(r"training accuracy ([0-9.]+)", out).group(1)) > 0.8
    diff = float(re.search(r"hand-written gradient: max abs diff ([0-9.e+-]+)", out).group(1))
    assert diff < 1e-10


def test_examples_rnn_sine_scan_learns(tmp_path):
    out = _run(tmp_path, "rnn_sine_scan.py")
    losses = [float(x) for x in re.findall(r"step +\d+ +loss ([0-9.e+-]+)", out)]
    assert len(losses) >= 10 and losses[-1] < 0.05 * losses[0]
    held, zero = re.search(
        r"held-out loss ([0-9.e+-]+) \(predicting 0 gives ([0-9.e+-]+)", out
    ).groups()
    assert float(held) < 0.05 * float(zero)


def test_examples_ode_fit_recovers_parameters(tmp_path):
    out = _run(tmp_path, "ode_fit_scipy.py")
    assert "converged: True" in out
    g, fd = re.search(r"gradient at start \[(.*)\], finite differences \[(.*)\]", out).groups()
    np.testing.assert_allclose(np.array(g.split(), float), np.array(fd.split(), float), rtol=1e-5)
    k, c = (float(x) for x in re.search(r"fitted k = ([0-9.]+) .* c = ([0-9.]+)", out).groups())
    assert abs(k - 9.0) < 0.05 and abs(c - 0.6) < 0.02


def test_examples_logreg_dask_matches_single_machine(tmp_path):
    # CI runs a small version on the interpreter backend, so that three processes (client and
    # two workers) do not each compile with Numba: tests/distributed covers compiled workers.
    # `python examples/logreg_dask.py` fits 2 million rows.
    args = ("--rows", "12000", "--chunk-rows", "5000")
    out = _run(tmp_path, "logreg_dask.py", *args, GRADC_BACKEND="interpret")
    assert "in 3 chunks, 2 workers" in out  # 5000, 5000, 2000: a ragged last chunk
    assert "fits match: True" in out
    diff = float(re.search(r"single-machine fit: max abs diff ([0-9.e+-]+)", out).group(1))
    assert diff < 1e-6
    assert float(re.search(r"gradient norm at the dask optimum ([0-9.e+-]+)", out).group(1)) < 1e-6
    assert float(re.search(r"training accuracy ([0-9.]+)", out).group(1)) > 0.8


def test_examples_newton_hessian_converges_quadratically(tmp_path):
    out = _run(tmp_path, "newton_hessian.py")
    diff = float(re.search(r"finite differences of grad: max abs diff ([0-9.e+-]+)", out).group(1))
    assert diff < 1e-6
    norms = [float(x) for x in re.findall(r"\|grad\| ([0-9.e+-]+)", out)]
    assert "converged: True" in out and norms[-1] < 1e-12
    # quadratic convergence: once small, each gradient norm is about the square of the last
    tail = [n for n in norms if n < 1e-1]
    assert any(b < 10 * a * a for a, b in zip(tail, tail[1:]))


def test_examples_trust_ncg_scipy_uses_hvp_and_converges(tmp_path):
    out = _run(tmp_path, "trust_ncg_scipy.py")
    assert "converged: True" in out
    assert float(re.search(r"true minimum ([0-9.e+-]+)", out).group(1)) < 1e-6
    for what in ("rosen_der", "rosen_hess_prod"):
        diff = float(re.search(what + r": max abs diff ([0-9.e+-]+)", out).group(1))
        assert diff < 1e-8, what


@pytest.mark.parametrize("name", SCRIPTS)
def test_examples_scripts_have_a_docstring_and_main_guard(name):
    text = (ROOT / "examples" / name).read_text()
    assert text.startswith('"""') and 'if __name__ == "__main__":' in text
