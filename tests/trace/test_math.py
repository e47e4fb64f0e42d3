"""Elementwise math and SciPy special functions as user code calls them: values equal
NumPy's/SciPy's, gradients equal finite differences (zero for the piecewise-constant ops)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp

from compiler import trace
from tests.helpers import check_value_and_grad

A = np.random.default_rng(61).uniform(0.2, 0.9, size=(3, 4))

CASES = {
    "sinh": np.sinh,
    "cosh": np.cosh,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "arcsinh": np.arcsinh,
    "arccosh": lambda a: np.arccosh(a + 1.5),
    "arctanh": np.arctanh,
    "exp2": np.exp2,
    "log2": np.log2,
    "log10": np.log10,
    "cbrt": np.cbrt,
    "sinc": np.sinc,
    "deg2rad": np.deg2rad,
    "rad2deg": np.rad2deg,
    "arctan2": lambda a: np.arctan2(a, a[0]),
    "hypot": lambda a: np.hypot(a, 2.0),
    "fmax": lambda a: np.fmax(a, 0.5),
    "fmin": lambda a: np.fmin(a, 0.5),
    "mod_operator": lambda a: a % 0.3,
    "fmod": lambda a: np.fmod(a, 0.3),
    "floordiv_operator": lambda a: a // 0.3,
    "rounding": lambda a: (
        np.floor(a * 3)
        + np.ceil(a * 3)
        + np.trunc(a * 3)
        + np.round(a, 1)
        + np.round(a)
        + a.round(2)
    ),
    "heaviside": lambda a: np.heaviside(a - 0.5, 0.5),
    "int_remainder": lambda a: 7 % np.arange(1, 4) + a[0, :3],
    "expit": sp.expit,
    "logit": sp.logit,
    "erf_erfc": lambda a: sp.erf(a) * sp.erfc(a),
    "erfinv": lambda a: sp.erfinv(a - 0.5),
    "ndtr_log_ndtr": lambda a: sp.ndtr(a) + sp.log_ndtr(-3 * a),
    "gammaln_digamma": lambda a: sp.gammaln(a) + sp.digamma(a) + sp.psi(a + 1),
    "xlogy": lambda a: sp.xlogy(a - 0.5, a) + sp.xlog1py(a, a),
    "logsumexp": lambda a: sp.logsumexp(a, axis=1, b=2.0) + sp.logsumexp(a),
    "logsumexp_keepdims": lambda a: sp.logsumexp(a, axis=0, keepdims=True, b=a),
    "softmax": lambda a: sp.softmax(a, axis=0) + sp.log_softmax(a, axis=1),
    "softmax_all": lambda a: sp.softmax(a) * sp.log_softmax(a),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_math_value_and_gradient(name):
    f = CASES[name]
    check_value_and_grad(f, A, atol=1e-7)


def test_math_unsupported_scipy_function_is_named_by_its_real_name():
    with pytest.raises(NotImplementedError, match=r"^scipy\.special\.gamma is not supported"):
        trace(sp.gamma, A)
