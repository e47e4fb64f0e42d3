"""The `rowfuse` pass (codegen/rowfuse.py) and its kernel (codegen/rowloop.py).

`z = X @ w`, the fused loop over z's rows and `X.T @ r` become one `rowfused` node. Checked:
where it fires (the benchmark's and the SciPy example's logistic regression, both dtypes),
that it keeps the graph's meaning (interpreter before and after), the compiled kernel and the
NumPy tier against the interpreter on shapes that cross the kernel's row blocks and its
four-row steps, the gradient against central finite differences, float32 accuracy against a
float64 reference, and where it must not fire (z read by something else, another matrix in
the transposed product, a loop that broadcasts across rows). No timing assertions.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from compiler import value_and_grad
from compiler.codegen import simd
from compiler.codegen.rowfuse import row_fuse
from compiler.codegen.rowloop import block_rows
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType
from compiler.ir.verify import verify
from compiler.passes.fuse import fuse
from compiler.pipeline import lower, lower_passes
from tests.codegen.graphs import joint
from tests.codegen.util import assert_same, cache_dir  # noqa: F401  (fixture)
from tests.helpers import fd_grad

pytestmark = pytest.mark.compiled  # about compiled code: GRADC_COMPILE=eager

L2 = 1e-2


def logreg(theta, X, t):
    """examples/logreg_scipy.py: w and b sliced from one vector, logaddexp, a mean."""
    w, b = theta[:-1], theta[-1]
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, -t * z)) + 0.5 * L2 * np.sum(w * w)


def softplus_nll(w, b, X, y):
    """benchmarks/workloads.py `logreg`: a shape-(1,) bias, the stable softplus form."""
    z = X @ w + b
    softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    return np.mean(softplus - y * z) + 0.5e-3 * np.sum(w * w)


def _logreg_args(n, d, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    t = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(dtype)
    return [(0.3 * rng.standard_normal(d + 1)).astype(dtype), X, t]


def _softplus_args(n, d, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (rng.random(n) < 0.5).astype(dtype)
    w = (0.2 * rng.standard_normal(d)).astype(dtype)
    return [w, np.array([0.05], dtype), X, y]


def _lowered(fun, args, wrt, disable=()):
    g = joint(fun, args, wrt, fuse=False)
    return g, lower_passes(g, "test", disable)


def _ops(graph):
    return [n.op for n in graph.nodes]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "fun, make, wrt", [(logreg, _logreg_args, 1), (softplus_nll, _softplus_args, 2)]
)
def test_rowfuse_fires_on_logistic_regression_and_keeps_its_meaning(fun, make, wrt, dtype):
    for n, d in ((1, 3), (9, 2), (40, 6)):
        args = make(n, d, dtype)
        g, low = _lowered(fun, args, wrt)
        verify(low.graph)
        ops = _ops(low.graph)
        assert ops.count("rowfused") == 1 and "matmul" not in ops, ops
        (node,) = [m for m in low.graph.nodes if m.op == "rowfused"]
        if n > 1:  # (at n = 1 the bias gradient is r itself, a graph output)
            assert node.attrs["r"] not in node.attrs["emit"]  # r is not stored
        for got, want in zip(run_graph(low.graph, args), run_graph(g, args)):
            assert_same(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_rowfuse_is_idempotent_and_can_be_disabled():
    g, low = _lowered(logreg, _logreg_args(12, 3), 1)
    assert row_fuse(low.graph) is low.graph  # nothing left to match: the same object
    off = lower_passes(g, "test", ("rowfuse",)).graph
    assert "rowfused" not in _ops(off) and _ops(off).count("matmul") == 2


# n crosses the kernel's row blocks (with a remainder) and its four-row steps; n = 1 reads
# its (1,)-shaped operands per row (another kernel text), so it runs in float64 only. d runs
# through every path LLVM generates for the dot and update loops over a row (AVX-512: 32 per
# main-loop step, then 4-wide epilogue steps, then scalar; AVX2: 16, 4 and scalar): d = 1 and
# 5 (scalar only), 13 (epilogue and scalar), 33 (main and scalar), 50 (all three). Sizes are
# kernel arguments, so the extra shapes cost no compile.
ROWS = block_rows(10**6, 5, 8)  # rows per block at d = 5
SHAPES = (
    (7, 1),
    (ROWS + 7, 5),
    (11, 13),
    (3 * block_rows(10**6, 33, 8) + 2, 33),
    (block_rows(10**6, 50, 8) + 5, 50),
)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rowfuse_kernel_and_numpy_tier_match_interpreter(dtype):
    shapes = SHAPES + (((1, 3),) if dtype == np.float64 else ())
    for n, d in shapes:
        args = _logreg_args(n, d, dtype, seed=n)
        _, low = _lowered(logreg, args, 1)
        want = run_graph(low.graph, args)
        for tier in ("eager", "never"):
            fn = lower(low, "numba", tier)
            # these small graphs also get the compiled driver (njit_driver.py): in float64
            # run it too (one more compile per kernel text; float32 keeps the Python driver)
            if hasattr(fn, "promote") and dtype == np.float64:
                fn.promote()
            for _ in range(2):  # the second call reuses the arena's buffers
                got = fn(*args)
                for a, e in zip(got, want):
                    assert_same(a, e, rtol=2e-5 if dtype == np.float32 else 1e-11)


def test_rowfuse_softplus_kernel_matches_interpreter_with_python_driver():
    args = _softplus_args(2 * block_rows(10**6, 50, 8) + 3, 50, seed=4)  # too large to njit
    _, low = _lowered(softplus_nll, args, 2)
    fn = lower(low, "numba", "eager")
    assert fn.driver_kind == "python" and "rowfused" in fn.source
    for a, e in zip(fn(*args), run_graph(low.graph, args)):
        assert_same(a, e)
    # y, read per row, is loaded through its block's slice: contiguous vector loads, where
    # `y[i0 + i]` (Numba's negative-index wraparound) made LLVM gather every element
    (kernel,) = [k for k in _kernels(fn) if "# rowfused" in _text(k)]
    asm = kernel.inspect_asm(kernel.signatures[0])
    if simd.host().level != "off":  # x86 with AVX2 or AVX-512: where gathers exist
        assert "_ZGV" in asm and "gather" not in asm


def _kernels(fn):
    return [v for k, v in vars(fn.module).items() if k.startswith("k_")]


def _text(k):
    import inspect

    return inspect.getsource(k.py_func)


def test_rowfuse_emits_a_row_shaped_output_through_its_block():
    """An aux output computed per row (here sigmoid(z)) is written by the row kernel, block
    by block, and matches the interpreter and NumPy."""

    def loss_aux(w, b, X, y):
        z = X @ w + b
        p = 1.0 / (1.0 + np.exp(-z))
        return np.mean(np.logaddexp(0.0, z) - y * z), p

    args = _softplus_args(2 * block_rows(10**6, 12, 8) + 5, 12, seed=5)
    vg = value_and_grad(loss_aux, argnums=(0, 1), has_aux=True, compile="eager")
    (value, p), (gw, gb) = vg(*args)
    ref = value_and_grad(loss_aux, argnums=(0, 1), has_aux=True, backend="interpret")
    (value2, p2), (gw2, gb2) = ref(*args)
    w, b, X, _ = args
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-(X @ w + b))), rtol=1e-14)
    np.testing.assert_allclose(p, p2, rtol=1e-14)
    np.testing.assert_allclose(value, value2, rtol=1e-14)
    np.testing.assert_allclose(gw, gw2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb, gb2, rtol=1e-12)
    (stage,) = [e.fn for e in vg._dispatch.cache.values()]
    assert "# rowfused" in stage.source and re.search(r"(o\d+)b = \1\[i0:i0 \+ m\]", stage.source)


@pytest.mark.parametrize("d", [6, 50])
def test_rowfuse_gradient_matches_finite_differences(d):
    # d = 50: the dot and update loops' vector main loop, epilogue and scalar remainder
    theta, X, t = _logreg_args(block_rows(10**6, d, 8) + 13, d, seed=7)
    value, grad = value_and_grad(logreg, compile="eager")(theta, X, t)
    assert np.isclose(value, logreg(theta, X, t), rtol=1e-13)
    np.testing.assert_allclose(grad, fd_grad(logreg, [theta, X, t], 0), rtol=1e-6, atol=1e-9)


def test_rowfuse_float32_accumulates_accurately():
    # 20000 rows: summed in float32 one row at a time, g would lose about three digits
    theta, X, t = _logreg_args(20000, 8, np.float32, seed=8)
    _, grad = value_and_grad(logreg, compile="eager")(theta, X, t)
    _, ref = value_and_grad(logreg, backend="interpret")(
        theta.astype(np.float64), X.astype(np.float64), t.astype(np.float64)
    )
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, ref, rtol=2e-5, atol=2e-6 * np.abs(ref).max())


# -- where it must not fire --------------------------------------------------------------------


def _by_hand(other_matrix: bool):
    """matmul(X, W) -> reshape -> fused loop -> reshape -> matmul(transpose(X or Y), R)."""
    n, d = 6, 3
    b = Builder()
    x = b.add_input(TensorType((n, d), np.float64))
    y = b.add_input(TensorType((n, d), np.float64))
    w = b.add_input(TensorType((d, 1), np.float64))
    z = b.add("reshape", [b.add("matmul", [x, w])], {"shape": (n,)})
    r = b.add("tanh", [z])
    s = b.add("sum", [b.add("multiply", [r, r])], {"axis": (0,), "keepdims": False})
    t = b.add("transpose", [y if other_matrix else x], {"axes": (1, 0)})
    g = b.add("matmul", [t, b.add("reshape", [r], {"shape": (n, 1)})])
    return fuse(b.build([s, g]))


def test_rowfuse_needs_the_same_matrix_in_both_products():
    same = _by_hand(other_matrix=False)
    assert "rowfused" in _ops(row_fuse(same))
    other = _by_hand(other_matrix=True)
    assert row_fuse(other) is other
    rng = np.random.default_rng(9)
    args = [rng.standard_normal((6, 3)), rng.standard_normal((6, 3)), rng.standard_normal((3, 1))]
    for a, e in zip(run_graph(row_fuse(same), args), run_graph(same, args)):
        assert_same(a, e)


def test_rowfuse_does_not_fire_when_z_has_another_reader():
    def loss(theta, X, t):  # z @ z needs all of z before the loop has run
        z = X @ theta[:-1] + theta[-1]
        return np.mean(np.logaddexp(0.0, -t * z)) + 1e-3 * (z @ z)

    args = _logreg_args(10, 3, seed=10)
    g, low = _lowered(loss, args, 1)
    assert "rowfused" not in _ops(low.graph)
    for a, e in zip(run_graph(low.graph, args), run_graph(g, args)):
        assert_same(a, e)


def test_rowfuse_does_not_fire_on_a_loop_that_broadcasts_across_rows():
    def loss(w, X, V):  # z broadcast along a second axis: the loop is [n, k], not [n]
        z = X @ w
        return np.sum(np.logaddexp(0.0, z[:, None] * V))

    rng = np.random.default_rng(11)
    args = [rng.standard_normal(3), rng.standard_normal((10, 3)), rng.standard_normal((10, 4))]
    g, low = _lowered(loss, args, 1)
    assert "rowfused" not in _ops(low.graph)
    for a, e in zip(run_graph(low.graph, args), run_graph(g, args)):
        assert_same(a, e)
