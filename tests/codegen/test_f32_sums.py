"""float32 sums inside generated loop kernels accumulate in float64 (codegen/loops.py).

Each case is large enough (>= SMALL_LOOP) that the driver runs the loop kernel, not NumPy's
pairwise `np.sum`, and the test checks that a kernel ran. The reference is the float64 sum of
the same float32 inputs, which a sequential float32 accumulator misses by ~1e-5 here.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler import value_and_grad
from compiler.codegen import compile_stats
from compiler.codegen.tuning import SMALL_LOOP
from compiler.ir import Builder, TensorType
from compiler.passes.fuse import fuse
from compiler.pipeline import lower_graph
from tests.codegen.util import cache_dir  # noqa: F401  (fixture)

pytestmark = pytest.mark.compiled  # about compiled code: GRADC_COMPILE=eager

N = 10**7


@pytest.fixture(scope="module")
def x32():
    return np.random.default_rng(0).uniform(0.0, 1.0, N).astype(np.float32)


def _kernel_runs() -> int:
    s = compile_stats()
    return s.compiled + s.cache_hits


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize(
    "shape, axis",
    [
        ((N,), (0,)),  # one register, parfor reduction (parallel kernel)
        ((4, N // 4), (1,)),  # a register per row
        ((N // 4, 4), (0,)),  # accumulates across outer iterations: float64 scratch
    ],
)
def test_f32_kernel_sum_within_1e6_of_float64(x32, shape, axis):
    assert N // shape[-1] * shape[-1] >= SMALL_LOOP
    b = Builder()
    x = b.add_input(TensorType(shape, np.float32))
    y = b.add("multiply", [x, b.add("add", [x, x])])  # fused with the sum: one loop kernel
    g = fuse(b.build([b.add("sum", [y], {"axis": axis, "keepdims": False})]))
    assert [n.op for n in g.nodes] == ["fused"]
    fn = lower_graph(g, stage="test")
    assert "np.float64(0)" in fn.source  # the float64 accumulator
    xs = x32.reshape(shape)
    before = _kernel_runs()
    (out,) = fn(xs)
    assert _kernel_runs() > before  # a kernel compiled (or loaded) and ran
    assert out.dtype == np.float32
    x64 = xs.astype(np.float64)
    assert _rel(out, np.sum(2.0 * x64 * x64, axis=axis)) <= 1e-6


def test_f32_fused_tanh_sum_and_its_gradient(x32):
    vg = value_and_grad(lambda x: np.sum(np.tanh(x) * x))
    v, g = vg(x32)
    assert v.dtype == np.float32 and g.dtype == np.float32
    x64 = x32.astype(np.float64)
    t = np.tanh(x64)
    assert _rel(v, np.sum(t * x64)) <= 1e-6
    assert _rel(g, t + x64 * (1.0 - t * t)) <= 2e-6


def _chain(x):
    a = np.tanh(x)
    g = np.exp(-0.5 * x * x)
    e = a * g + np.log1p(x * x) * np.sin(x)
    f = e / (1.0 + g)
    return np.sum(f * f + 0.1 * a)


def _chain_grad_by_hand(x):
    """The gradient of `_chain` written out in float64 NumPy (the reference)."""
    a, g, x2 = np.tanh(x), np.exp(-0.5 * x * x), x * x
    c, s = np.log1p(x2), np.sin(x)
    q = 1.0 + g
    f = (a * g + c * s) / q
    ge = 2.0 * f / q  # dL/de
    ga = ge * g + 0.1  # dL/da
    gg = ge * (a - f)  # dL/dg, through e and through q
    return ga * (1.0 - a * a) - gg * g * x + ge * s * 2.0 * x / (1.0 + x2) + ge * c * np.cos(x)


def test_f32_chain_gradient_matches_float64():
    x32 = np.random.default_rng(1).uniform(-2.0, 2.0, 1 << 20).astype(np.float32)
    v32, g32 = value_and_grad(_chain)(x32)
    assert v32.dtype == np.float32 and g32.dtype == np.float32
    x64 = x32.astype(np.float64)
    assert _rel(v32, _chain(x64)) <= 1e-6
    assert _rel(g32, _chain_grad_by_hand(x64)) <= 2e-6
