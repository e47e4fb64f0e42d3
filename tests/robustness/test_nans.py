"""NaN, inf and signed zeros propagate as NumPy's IEEE arithmetic says, and
GRADC_DEBUG_NANS names the node that made the first NaN.

Every function is evaluated by NumPy itself on inputs holding 0, -0, +-1, +-inf, NaN, huge
and subnormal values, and by gradc on the Numba backend through its three code paths (fused
loop kernels, NumPy ufuncs called from the driver, the all-scalar njit driver). NaN and inf
positions, and the sign of infinities and zeros, must agree exactly; finite values within a
few ulp (libm and NumPy's SIMD transcendentals differ in the last bit).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import debug_nans, grad, jit, trace, value_and_grad, vjp
from tests.robustness.differential import kernels_always

inf, nan = np.inf, np.nan
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, inf, -inf, nan, 1e308, 1e-310, -2.5, 0.5, 3.0])
REPO = Path(__file__).resolve().parents[2]
# NumPy's ufuncs in the compiled driver warn about invalid values, as NumPy itself does
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

UNARY = {
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "sin": np.sin,
    "cos": np.cos,
    "abs": np.abs,
    "sign": np.sign,
    "negative": lambda x: -x,
    "square": lambda x: x * x,
    "cube": lambda x: x**3,
    "reciprocal": lambda x: 1.0 / x,
    "inverse_power": lambda x: x**-1.0,
    "exp2": lambda x: 2.0**x,
    "inf_minus_inf": lambda x: x - x,
    "div_self": lambda x: x / x,
    "maximum": lambda x: np.maximum(x, 1.0),
    "minimum": lambda x: np.minimum(0.5, x),
    "clip": lambda x: np.clip(x, -1.0, 1.0),
    "where": lambda x: np.where(x > 0, x, -x),
    "where_nan_cond": lambda x: np.where(x != x, 7.0, x),
    "equal": lambda x: x == x,
    "not_equal": lambda x: x != x,
    "less": lambda x: x < 1.0,
    "logaddexp": lambda x: np.logaddexp(x, x),
    "logaddexp0": lambda x: np.logaddexp(x, 0.0),
    "softplus_chain": lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0),
    "sqrt_square": lambda x: np.sqrt(x * x) - np.abs(x),
    "ratio": lambda x: (x * x + 1.0) / (x * x + 1.0),
    "outer": lambda x: np.sum(x[:, None] * x[None, :], axis=0),
    "mixed_chain": lambda x: np.tanh(x) * np.exp(-x) + np.sin(x) / (1.0 + x * x),
}
REDUCTIONS = {
    "sum": np.sum,
    "max": np.max,
    "min": np.min,
    "mean": np.mean,
    "max_axis": lambda x: np.max(x.reshape(3, -1), axis=1),
    "min_axis": lambda x: np.min(x.reshape(3, -1), axis=0),
    "matmul": lambda x: x.reshape(3, -1) @ x.reshape(-1, 3),
    "dot_ones": lambda x: x @ np.ones_like(x),
    "logsumexp": lambda x: np.log(np.sum(np.exp(x - np.max(x)))) + np.max(x),
}


def assert_ieee_equal(got, want, ulps: float = 4, what: str = "", scale: float = 0.0) -> None:
    """Same dtype and shape; NaN, inf and zeros (with their signs) exactly where NumPy has
    them; finite values within `ulps` units in the last place (of `scale`, when larger: the
    size of the terms a sum cancelled)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, f"{what}: {got!r} vs {want!r}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    msg = f"{what}\n got  {got!r}\n want {want!r}"
    assert np.array_equal(np.isnan(got), np.isnan(want)), "NaN differs: " + msg
    # zeros are exact for elementwise results; a sum's zero may be cancellation
    exact = np.isinf(want) | ((want == 0) if scale == 0 else False)
    assert np.array_equal(got[exact], want[exact]), "inf or zero differs: " + msg
    assert np.array_equal(np.signbit(got[exact]), np.signbit(want[exact])), "sign differs: " + msg
    finite = np.isfinite(want) & ~exact
    tol = ulps * np.spacing(np.maximum(np.abs(want[finite]), scale).astype(want.dtype))
    assert np.all(np.abs(got[finite] - want[finite]) <= tol), "value differs: " + msg


def _numpy(f, *args):
    with np.errstate(all="ignore"):
        return f(*[np.array(a, copy=True) for a in args])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_nans_elementwise_special_values_match_numpy(name, dtype):
    f = UNARY[name]
    x = SPECIAL.astype(dtype)
    want = _numpy(f, x)
    assert_ieee_equal(jit(f)(x), want, what=f"{name} on an array (NumPy calls)")
    with kernels_always():  # the same, compiled (on the first call) into Numba loop kernels
        assert_ieee_equal(jit(f)(x), want, what=f"{name} on an array (kernels)")
    assert_ieee_equal(jit(f, backend="interpret")(x), want, what=f"{name} interpret")
    if name == "outer":
        return
    scalar = jit(f, compile="eager")  # 0-d inputs: the all-scalar njit driver
    for v in x:
        assert_ieee_equal(scalar(np.asarray(v)), _numpy(f, np.asarray(v)), what=f"{name}({v})")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("case", ["nan", "inf", "both_infs", "finite"])
def test_nans_reductions_and_matmul_propagate(name, dtype, case):
    x = np.linspace(-2.0, 2.0, 12)
    if case == "nan":
        x[5] = nan
    elif case == "inf":
        x[3] = inf
    elif case == "both_infs":
        x[3], x[8] = inf, -inf
    x = x.astype(dtype)
    f = REDUCTIONS[name]
    want = _numpy(f, x)
    ulps = 64 if name in ("matmul", "sum", "mean", "logsumexp", "dot_ones") else 4  # order
    scale = float(np.sum(np.abs(x[np.isfinite(x)])) ** 2)  # matmul sums products
    assert_ieee_equal(jit(f)(x), want, ulps, what=f"{name}[{case}]", scale=scale)
    with kernels_always():
        assert_ieee_equal(jit(f)(x), want, ulps, what=f"{name}[{case}] kernels", scale=scale)


def test_nans_maximum_and_minimum_propagate_nan_from_either_side():
    a = np.array([nan, 1.0, nan, -inf, 0.0])
    b = np.array([1.0, nan, nan, nan, 2.0])  # (max of +0 and -0 may be either)
    for f in (np.maximum, np.minimum):
        assert_ieee_equal(jit(f)(a, b), _numpy(f, a, b), what=f.__name__)
        assert_ieee_equal(jit(f)(b, a), _numpy(f, b, a), what=f.__name__)
    h = lambda a, b: np.max(np.stack([a, b]), axis=0)  # noqa: E731
    assert_ieee_equal(jit(h)(a, b), _numpy(h, a, b), what="max over a stack")


@pytest.mark.parametrize(
    "name", ["tanh", "exp", "log", "sqrt", "abs", "maximum", "softplus_chain", "ratio"]
)
def test_nans_gradients_at_special_values_match_the_interpreter(name):
    f = UNARY[name]
    loss = lambda x: np.sum(f(x) * np.linspace(0.5, 1.5, x.size))  # noqa: E731
    x = SPECIAL.copy()
    want = value_and_grad(loss, backend="interpret")(x)
    for path in ["NumPy calls", "kernels"]:
        with kernels_always() if path == "kernels" else contextlib.nullcontext():
            got = value_and_grad(loss)(x)
        assert_ieee_equal(got[0], want[0], 64, what=f"value of {name}, {path}", scale=1.0)
        assert_ieee_equal(got[1], want[1], 8, what=f"gradient of {name}, {path}", scale=1.0)


def test_nans_no_fast_math_flag_drops_nan_or_inf_semantics():
    from compiler.codegen.source import FASTMATH

    flags = FASTMATH if isinstance(FASTMATH, str) else repr(FASTMATH)
    assert "True" not in flags and "fast" not in flags
    assert "nnan" not in flags and "ninf" not in flags


def test_nans_inf_is_not_reassociated_away():
    # 'reassoc' with 'nsz' let LLVM fold (x + y) - y to x; codegen no longer sets 'nsz'
    f = lambda x, y: (x + y) - y  # noqa: E731
    x, y = np.array([1.0, 2.0, 3.0]), np.array([inf, -inf, 1.0])
    with kernels_always():
        assert_ieee_equal(jit(f)(x, y), _numpy(f, x, y), what="loop kernel")
    assert_ieee_equal(jit(f)(1.0, inf), _numpy(f, 1.0, inf), what="scalar driver")


def test_nans_gradient_past_an_overflow_matches_the_interpreter():
    # d/dx sin(x) / (1 + x*x) at x = 1e308: 2*x overflows; the interpreter's order gives 0
    loss = lambda x: np.sum(np.sin(x) / (1.0 + x * x))  # noqa: E731
    x = np.array([1e308, 0.5])
    with kernels_always():
        got = value_and_grad(loss)(x)
    want = value_and_grad(loss, backend="interpret")(x)
    assert_ieee_equal(got[1], want[1], 8, what="gradient", scale=1.0)


def test_nans_zero_times_inf_is_nan():
    f = lambda x: 0.0 * x  # noqa: E731
    x = np.array([inf, -inf, nan, 1.0])
    assert_ieee_equal(jit(f, backend="interpret")(x), _numpy(f, x), what="0 * x")


# -- GRADC_DEBUG_NANS ---------------------------------------------------------------------------


@pytest.fixture
def debug_on(monkeypatch):
    monkeypatch.setattr(debug_nans, "ENABLED", True)


def _log_of_shifted(x):
    y = np.sqrt(x)
    z = np.log(y - 1.0)  # NaN where sqrt(x) < 1
    return np.sum(z * 2.0)


def _line_of(fun, text: str) -> int:
    import inspect

    lines, start = inspect.getsourcelines(fun)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_debug_nans_names_the_forward_node_and_line(debug_on):
    x = np.array([4.0, 0.25, 9.0])
    line = _line_of(_log_of_shifted, "np.log(")
    for fn, what in [(value_and_grad(_log_of_shifted), "value_and_grad"),
                     (grad(_log_of_shifted), "grad"), (jit(_log_of_shifted), "jit")]:  # fmt: skip
        with pytest.raises(FloatingPointError) as info:
            fn(x)
        msg = str(info.value)
        assert f"{what}(_log_of_shifted)" in msg
        assert "from log at" in msg and f"test_nans.py:{line}" in msg, msg
        assert "at index (1,)" in msg and "log(-0.5)" in msg, msg
        if what != "jit":
            assert "forward pass" in msg


def test_debug_nans_names_the_backward_node(debug_on):
    def f(x):
        return np.sum(np.sqrt(x * x))  # d sqrt at 0: inf * 0 in the backward pass

    line = _line_of(f, "np.sqrt(")
    with pytest.raises(FloatingPointError, match=rf"test_nans.py:{line} \(backward pass"):
        grad(f)(np.array([0.0, 1.0]))
    out, pullback = vjp(lambda x: np.sqrt(x * x), np.array([0.0, 1.0]))
    with pytest.raises(FloatingPointError, match=r"vjp\(<lambda>\) pullback.*backward pass"):
        pullback(np.ones(2))


def test_debug_nans_is_quiet_when_nan_comes_from_inputs_or_is_absent(debug_on):
    f = value_and_grad(lambda x: np.sum(np.tanh(x)))
    value, g = f(np.array([nan, 1.0]))  # the caller's NaN: reported by nobody
    assert np.isnan(value) and np.isnan(g[0])
    value, g = f(np.array([inf, 1.0]))  # inf but no NaN
    assert g[0] == 0.0
    v, g = value_and_grad(_log_of_shifted)(np.array([4.0, 9.0]))
    assert np.isfinite(v)


def test_debug_nans_off_returns_nan_silently(monkeypatch):
    monkeypatch.setattr(debug_nans, "ENABLED", False)
    value, g = value_and_grad(_log_of_shifted)(np.array([4.0, 0.25]))
    assert np.isnan(value) and g[1] == pytest.approx(-4.0)  # log's NaN is in the value only


def test_debug_nans_reports_compiled_nan_the_interpreter_does_not_make():
    graph = trace(lambda x: np.sum(x * 2.0), np.ones(3))
    with pytest.raises(FloatingPointError, match="gradc bug"):
        debug_nans.check(graph, [np.ones(3)], [np.array(nan)], "jit(f)")
    debug_nans.check(graph, [np.ones(3)], [np.array(6.0)], "jit(f)")  # no NaN: silent


def test_debug_nans_env_var_turns_it_on(tmp_path):
    script = tmp_path / "user_code.py"
    script.write_text(
        "import numpy as np\n"
        "from compiler import grad\n"
        "def loss(w):\n"
        "    return np.sum(np.log(w - 1.0))\n"
        "grad(loss)(np.array([3.0, 0.5]))\n"
    )
    env = dict(os.environ, GRADC_DEBUG_NANS="1", PYTHONPATH=str(REPO))
    env["GRADC_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "FloatingPointError" in proc.stderr
    assert "user_code.py:4" in proc.stderr and "from log at" in proc.stderr
