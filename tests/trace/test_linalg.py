"""np.linalg / scipy.linalg as user code calls them: values equal NumPy's/SciPy's, gradients
equal finite differences (interpreter backend; the ops' compiled path is in the registry)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl

from compiler import grad, trace
from compiler.interpret import interpret
from tests.helpers import assert_tree_matches, fd_grad

R = np.random.default_rng(21)
A = R.normal(size=(4, 3))
SQ = R.normal(size=(3, 3)) + 3 * np.eye(3)
BATCH = R.normal(size=(2, 3, 3)) + 3 * np.eye(3)
B = R.normal(size=3)


def _spd(a):
    return a @ a.T + 3.0 * np.eye(a.shape[0])


CASES = {
    "solve_vec": (lambda a: np.linalg.solve(a, B), SQ),
    "solve_batch": (lambda a: np.linalg.solve(a, np.ones((3, 2))), BATCH),
    "inv": (np.linalg.inv, BATCH),
    "det": (np.linalg.det, BATCH),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1] * np.linalg.slogdet(a).sign, SQ),
    "cholesky": (lambda a: np.linalg.cholesky(_spd(a)), SQ),
    "cholesky_upper": (lambda a: np.linalg.cholesky(_spd(a), upper=True), SQ),
    "eigh": (lambda a: np.linalg.eigh(_spd(a))[0], SQ),
    "eigvalsh": (lambda a: np.linalg.eigvalsh(_spd(a), UPLO="U"), SQ),
    "svd": (lambda a: np.linalg.svd(a, full_matrices=False).S, A),
    "svdvals": (lambda a: np.linalg.svd(a, compute_uv=False), A.T),
    "qr_r": (lambda a: np.abs(np.linalg.qr(a).R), A),
    "pinv": (np.linalg.pinv, A),
    "lstsq": (lambda a: np.linalg.lstsq(a, np.arange(4.0), rcond=None)[0], A),
    "norm": (lambda a: np.linalg.norm(a), A),
    "norm_fro": (lambda a: np.linalg.norm(a, "fro", axis=(0, 1), keepdims=True), A),
    "norm_1": (lambda a: np.linalg.norm(a, 1), A),
    "norm_inf": (lambda a: np.linalg.norm(a, np.inf), A),
    "norm_2": (lambda a: np.linalg.norm(a, 2), A),
    "norm_vec_axis": (lambda a: np.linalg.norm(a, axis=1), A),
    "norm_vec_ord": (lambda a: np.linalg.norm(a[0], 3), A),
    "norm_vec_inf": (lambda a: np.linalg.norm(a, -np.inf, axis=0), A),
    "trace": (lambda a: np.trace(a) + np.trace(a, 1), SQ),
    "diag": (lambda a: np.diag(a) + np.diag(a, -1).sum(), SQ),
    "diag_vec": (lambda a: np.diag(a[0], 1), SQ),
    "diagonal": (lambda a: np.diagonal(a, 0, 1, 2), BATCH),
    "solve_triangular": (lambda a: sl.solve_triangular(a, B, lower=True), SQ),
    "solve_triangular_t": (
        lambda a: sl.solve_triangular(a, np.ones((3, 2)), trans="T", unit_diagonal=True),
        SQ,
    ),
    "cho": (lambda a: sl.cho_solve(sl.cho_factor(_spd(a)), B), SQ),
    "cho_lower": (lambda a: sl.cho_solve(sl.cho_factor(_spd(a), lower=True), B), SQ),
    "sl_cholesky": (lambda a: sl.cholesky(_spd(a)), SQ),
    "sl_solve_inv_det": (lambda a: sl.solve(a, B) + sl.inv(a)[0] + sl.det(a), SQ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_linalg_value_and_gradient(name):
    f, a = CASES[name]
    want = f(a.copy())
    assert_tree_matches(interpret(trace(f, a), a), want, rtol=1e-9)
    w = np.random.default_rng(len(name)).normal(size=np.shape(want))

    def loss(x):
        return np.sum(f(x) * w)

    g = grad(loss, backend="interpret")(a)
    np.testing.assert_allclose(g, fd_grad(loss, [a], 0), rtol=1e-5, atol=1e-7)


def test_linalg_unsupported_forms_say_what_to_use():
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        trace(lambda a: np.linalg.svd(a)[0], A)
    with pytest.raises(NotImplementedError, match="transpose"):
        trace(lambda a: np.linalg.qr(a)[0], A.T.copy())
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        trace(np.linalg.inv, A)


def test_linalg_import_compiler_leaves_scipy_linalg_unloaded_until_user_code_imports_it():
    """scipy.linalg loads SciPy's own OpenBLAS, whose threads slow NumPy's matmuls on small
    machines: `import compiler` must not load it, and scipy.linalg imported afterwards (by the
    user) is still traced."""
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, compiler\n"
        "assert 'scipy.linalg' not in sys.modules, 'import compiler loaded scipy.linalg'\n"
        "import scipy.linalg\n"
        "def f(a, b):\n"
        "    return np.sum(scipy.linalg.solve_triangular(a, b, lower=True))\n"
        "a = np.tril(np.ones((3, 3))) + 2 * np.eye(3); b = np.arange(3.0)\n"
        "g = compiler.grad(f, backend='interpret')(a, b)\n"
        "ga = -np.outer(np.linalg.solve(a.T, np.ones(3)), np.linalg.solve(a, b))\n"
        "assert np.allclose(g, np.tril(ga)), (g, ga)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
