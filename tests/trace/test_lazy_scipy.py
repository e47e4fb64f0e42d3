"""`import compiler` imports neither SciPy nor Numba (docs/caching.md, "What a warm process
still pays"); scipy.special imported afterwards by user code is still traced: its ufuncs
(records name them by path), its compositions (logsumexp) and its error names."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """\
import sys
import numpy as np
import compiler
loaded = sorted(m for m in ("scipy", "scipy.special", "numba") if m in sys.modules)
assert not loaded, f"import compiler loaded {loaded}"
import scipy.special as sp

def f(x):
    return (np.sum(sp.expit(x)) + sp.logsumexp(x) + np.sum(sp.digamma(x))
            + np.sum(sp.xlogy(x, x)))

x = np.linspace(0.5, 2.0, 5)
g = compiler.grad(f, backend="interpret")(x)
s = 1.0 / (1.0 + np.exp(-x))
e = np.exp(x - x.max())
want = s * (1.0 - s) + e / e.sum() + sp.polygamma(1, x) + np.log(x) + 1.0
assert np.allclose(g, want, rtol=1e-12), (g, want)
try:
    compiler.grad(lambda x: np.sum(sp.gamma(x)), backend="interpret")(x)
except NotImplementedError as err:
    assert "scipy.special.gamma is not supported" in str(err), err
else:
    raise AssertionError("scipy.special.gamma traced")
print("ok")
"""


def test_scipy_special_is_imported_by_user_code_only_and_still_traced():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
