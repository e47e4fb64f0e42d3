"""The compiled driver for small array graphs (codegen/njit_driver.py).

Each graph's njit driver (`stage.compiled()`, compiled on its first call) is checked against
the interpreter and against the Python driver of the same stage; gradients through the whole
API are checked against central finite differences. No timing assertions.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler import trace, value_and_grad
from compiler.autodiff import vjp_graph
from compiler.codegen.njit_driver import driver_env, njit_rule, switch_after
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType
from compiler.passes.fuse import fuse
from compiler.pipeline import lower_graph
from tests.codegen.graphs import joint
from tests.codegen.util import assert_same, cache_dir  # noqa: F401  (fixture)

pytestmark = pytest.mark.compiled  # about compiled code: GRADC_COMPILE=eager

SIZES = (5, 4, 3)  # a 5-4-3 tanh MLP, its parameters packed in one flat vector


def mlp_flat(theta, x, y):
    """Flat params: slices, reshapes, matmuls, a broadcast bias, tanh, reductions."""
    a, b, c = SIZES
    w1 = theta[: a * b].reshape(a, b)
    b1 = theta[a * b : a * b + b]
    w2 = theta[a * b + b : a * b + b + b * c].reshape(b, c)
    h = np.tanh(x @ w1 + b1)
    out = h @ w2
    return np.mean((out - y) ** 2) + 0.01 * np.max(np.abs(theta))


def logreg(theta, X, t):
    """The examples/logreg_scipy.py loss: matrix-vector products, logaddexp, 0-d values."""
    w, b = theta[:-1], theta[-1]
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, -t * z)) + 0.005 * np.sum(w * w)


def _mlp_args(dtype=np.float64, seed=0):
    a, b, c = SIZES
    rng = np.random.default_rng(seed)
    theta = 0.5 * rng.standard_normal(a * b + b + b * c).astype(dtype)
    return [
        theta,
        rng.standard_normal((6, a)).astype(dtype),
        rng.standard_normal((6, c)).astype(dtype),
    ]


def _logreg_args(seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((20, 4))
    return [0.3 * rng.standard_normal(5), X, np.where(rng.random(20) < 0.5, 1.0, -1.0)]


def _stage(g):
    assert njit_rule(g)
    fn = lower_graph(g, stage="test")
    assert fn.compiled().driver_kind == "njit-array"
    assert fn.driver_kind == "python"  # the first tier
    return fn


def _agree(g, fn, args, rtol=None):
    want = run_graph(g, list(args))
    got_py = fn(*args)
    for _ in range(2):  # the second call reuses the arena's buffer set
        got = fn.compiled()(*args)
        assert len(got) == len(want)
        for a, p, e in zip(got, got_py, want):
            assert_same(a, e, rtol)
            assert_same(a, p, rtol)


def test_njit_driver_matches_interpreter_on_flat_mlp_gradient():
    args = _mlp_args()
    g = joint(mlp_flat, args, 1)
    ops = {n.op for n in g.nodes}
    assert {"matmul", "slice", "set_slice", "reshape", "transpose"} <= ops
    _agree(g, _stage(g), args)


def test_njit_driver_matches_interpreter_on_logreg_gradient():
    args = _logreg_args()
    g = joint(logreg, args, 1)
    _agree(g, _stage(g), args)


def test_njit_driver_reductions_broadcasts_and_python_scalars():
    b = Builder()
    x = b.add_input(TensorType((3, 4), np.float32))
    row = b.add_input(TensorType((4,), np.float32))
    s = b.add_input(TensorType((), np.float32))
    y = b.add("multiply", [b.add("add", [x, row]), s])  # broadcast row and 0-d scalar
    g = fuse(
        b.build(
            [
                y,
                b.add("sum", [y], {"axis": (0,), "keepdims": False}),
                b.add("max", [y], {"axis": (1,), "keepdims": True}),
                b.add("matmul", [b.add("transpose", [x], {"axes": (1, 0)}), x]),
            ]
        )
    )
    rng = np.random.default_rng(2)
    args = [
        rng.standard_normal((3, 4)).astype(np.float32),
        rng.standard_normal(4).astype(np.float32),
    ]
    fn = _stage(g)
    for scalar in (np.array(1.5, np.float32), 1.5):  # a Python float arrives as well
        _agree(g, fn, [*args, scalar])


def test_njit_driver_gradient_matches_finite_differences(monkeypatch):
    monkeypatch.setenv("GRADC_NJIT_DRIVER", "eager")  # the compiled driver from the first call
    theta, x, y = _mlp_args(seed=3)
    vg = value_and_grad(mlp_flat)
    value, grad = vg(theta, x, y)
    assert np.isclose(value, mlp_flat(theta, x, y), rtol=1e-12)
    eps = 1e-6
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        fd[i] = (mlp_flat(theta + e, x, y) - mlp_flat(theta - e, x, y)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_njit_rule_and_switch():
    small = joint(logreg, _logreg_args(), 1)
    assert njit_rule(small)
    assert switch_after(small) > 1000  # rent, then buy: a compile costs seconds
    rng = np.random.default_rng(4)
    big = vjp_graph(
        trace(logreg, rng.standard_normal(101), np.ones((50_000, 100)), np.ones(50_000)), [0]
    )
    assert not njit_rule(big)  # the arithmetic dominates: the Python driver stays


def test_njit_driver_off_and_promote(monkeypatch):
    def loss(theta, X, t):  # a structure no other test compiles
        return logreg(theta, X, t) + np.sum(np.abs(theta))

    args = _logreg_args(seed=5)
    g = joint(loss, args, 1)
    monkeypatch.setenv("GRADC_NJIT_DRIVER", "0")
    assert not njit_rule(g)
    assert not hasattr(lower_graph(g, stage="test"), "compiled")
    monkeypatch.delenv("GRADC_NJIT_DRIVER")
    fn = lower_graph(g, stage="test")
    before = fn(*args)
    body = fn.compiled().module._body
    assert not body.overloads  # nothing compiled yet: the Python driver ran
    fn.promote()
    after = fn(*args)
    assert body.overloads  # the compiled driver ran
    for a, b in zip(after, before):
        assert_same(a, b)


def test_njit_driver_switch_compiles_in_the_background(monkeypatch):
    # at the switch the caller gets the Python driver's answer and a background job compiles
    # the compiled driver; the stage runs it once the job is done (no call waits on Numba)
    from runtime import background

    def loss(theta, X, t):  # a structure no other test compiles
        return logreg(theta, X, t) + np.sum(theta * theta * theta)

    monkeypatch.delenv("GRADC_NJIT_DRIVER", raising=False)
    args = _logreg_args(seed=6)
    fn = lower_graph(joint(loss, args, 1), stage="test")
    tiers = fn.func
    tiers.left = 0  # the switch is due on the next call
    submitted = background.stats()["submitted"]
    before = fn(*args)
    assert background.stats()["submitted"] == submitted + 1
    assert background.wait_idle(120)
    assert tiers.tested and fn.compiled().module._body.overloads
    after = fn(*args)  # the compiled driver
    for a, b in zip(after, before):
        assert_same(a, b)


@pytest.mark.parametrize(
    "raw, want",
    [("", "auto"), ("auto", "auto"), ("0", "off"), ("False", "off"), ("no", "off")]
    + [("eager", "eager"), ("1", "eager"), ("on", "eager")],
)
def test_driver_env_spellings(monkeypatch, raw, want):
    """GRADC_NJIT_DRIVER reads runtime.env's spellings of on (eager) and off (never)."""
    monkeypatch.setenv("GRADC_NJIT_DRIVER", raw)
    assert driver_env() == want
