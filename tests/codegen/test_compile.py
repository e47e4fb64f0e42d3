"""compile_graph as a whole: reuse across batch sizes, kernel dedup, dtypes, NaN/inf, fusion."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from compiler import trace
from compiler.codegen import compile_stats
from compiler.codegen.driver import SMALL_LOOP
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType
from compiler.passes import ALGEBRAIC_PASSES, run_passes
from compiler.passes.fuse import fuse
from compiler.pipeline import lower_graph
from tests.codegen.graphs import deep_joint, elementwise_graphs, joint
from tests.codegen.util import assert_same, cache_dir  # noqa: F401  (fixture)
from tests.passes.cases import mlp_loss

pytestmark = pytest.mark.compiled  # about compiled code: GRADC_COMPILE=eager

ROOT = Path(__file__).resolve().parents[2]


def _check(g, args, rtol=None):
    fn = lower_graph(g, stage="test")
    for a, e in zip(fn(*args), run_graph(g, list(args))):
        assert_same(a, e, rtol)
    return fn


def test_compile_new_batch_size_compiles_nothing_new():
    # both sizes are above SMALL_LOOP, so every loop runs its kernel: the first size compiles
    # them, the second must reuse them
    width = 48
    sizes = (SMALL_LOOP // width + 3, SMALL_LOOP // width + 40)
    start = compile_stats()
    g1, flat1 = deep_joint(2, width, sizes[0])
    fn1 = _check(g1, flat1)
    first = compile_stats()
    assert first.compiled + first.cache_hits > start.compiled + start.cache_hits
    g2, flat2 = deep_joint(2, width, sizes[1])
    fn2 = _check(g2, flat2)
    assert fn2.source == fn1.source
    assert fn2.module is fn1.module
    assert compile_stats().compiled == first.compiled


def test_compile_source_does_not_depend_on_constant_values():
    def f(c):
        return lambda x: np.sum(np.maximum(x * c, 0.5 * c))

    x = np.linspace(-1, 1, 7)
    a = lower_graph(run_passes(trace(f(2.0), x)))
    b = lower_graph(run_passes(trace(f(-3.0), x)))
    assert a.source == b.source
    np.testing.assert_allclose(a(x)[0], np.sum(np.maximum(x * 2.0, 1.0)))
    np.testing.assert_allclose(b(x)[0], np.sum(np.maximum(x * -3.0, -1.5)))


def test_compile_identical_layers_share_kernels():
    g3, _ = deep_joint(3, 5, 2)
    g12, flat12 = deep_joint(12, 5, 2)
    fn12 = _check(g12, flat12)
    assert fn12.kernel_count == lower_graph(g3).kernel_count
    assert fn12.kernel_count <= 12  # counting the parallel twins
    names = set(re.findall(r"def (k_\w+)\(", fn12.source))
    assert len(names) == fn12.kernel_count


def test_compile_seed_is_one_njit_function():
    def seed(w, x, b, y):
        return (w * x + b - y) ** 2

    g = joint(seed, (2.0, 3.0, 1.0, 4.0), 4)
    fn = _check(g, (2.0, 3.0, 1.0, 4.0))
    assert fn.driver_kind == "njit" and fn.kernel_count == 1
    assert [float(o) for o in fn(2.0, 3.0, 1.0, 4.0)] == [9.0, 18.0, 12.0, 6.0, -6.0]


def test_compile_nan_and_inf_propagate():
    b = Builder()
    x = b.add_input(TensorType((2, 4), np.float64))
    y = b.add_input(TensorType((2, 4), np.float64))
    outs = [
        b.add("max", [x], {"axis": (1,), "keepdims": False}),
        b.add("min", [x], {"axis": (0,), "keepdims": False}),
        b.add("sum", [b.add("exp", [x])], {"axis": (1,), "keepdims": False}),
        b.add("maximum", [x, y]),
        b.add("minimum", [y, x]),
        b.add("tanh", [b.add("multiply", [x, y])]),
        b.add("sign", [x]),
        b.add("sqrt", [b.add("subtract", [x, y])]),
        b.add("logaddexp", [x, y]),
    ]
    g = b.build(outs)
    xv = np.array([[np.nan, 1.0, -np.inf, 2.0], [np.inf, -1.0, 0.5, 3.0]])
    yv = np.array([[0.0, np.nan, np.inf, -np.inf], [np.inf, 0.0, -2.0, np.nan]])
    for gg in (g, fuse(g)):
        _check(gg, (xv, yv))
    got = lower_graph(fuse(g))(xv, yv)
    assert np.isnan(got[0][0]) and got[0][1] == np.inf and np.isnan(got[1][0])


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_compile_scalar_tail_as_scalar_operators_matches_interpreter(dt):
    """A 0-d fused tail (sums combined by / * - + and negation, and an exp) runs as NumPy
    scalar operators in the driver: same values, dtype, inf and NaN as the interpreter."""

    def f(x, y):
        a, b = np.sum(x), np.sum(y)
        return -(a / b - 2.0 * np.sum(x * x)) + np.exp(b) - a * b

    x = np.linspace(-1, 2, 8, dtype=dt)
    g = run_passes(trace(f, x, x), ALGEBRAIC_PASSES)
    fg = fuse(g)
    assert any(n.op == "fused" and not n.out.ndim for n in fg.nodes)
    fn = None
    cases = [(x, x[::-1].copy()), (x, np.zeros(8, dt)), (np.zeros(8, dt), np.zeros(8, dt))]
    for xv, yv in cases:  # a regular value, x / 0 = inf, 0 / 0 = NaN
        with np.errstate(all="ignore"):
            fn = _check(fg, (xv, yv), rtol=1e-6 if dt == np.float32 else None)
            assert fn(xv, yv)[0].dtype == dt
    # the tail's operands are read once as scalars, combined by operators, not ufuncs
    assert re.search(r"e\d+_\d+ = v\d+\[\(\)\]", fn.source)
    assert re.search(r"s\d+_\d+ = e\d+_\d+ \* e\d+_\d+", fn.source)
    assert "np.multiply(" not in fn.source and "np.subtract(" not in fn.source
    assert "np.exp(" in fn.source


def test_compile_float32_stays_float32():
    def f(x):
        return np.sum(np.sqrt(x * x + 1.0) * 0.5 - np.abs(x) / 3.0, axis=1)

    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    g = run_passes(trace(f, x))
    fn = _check(g, (x,))
    assert fn(x)[0].dtype == np.float32
    # no float64 arithmetic or widening inside any kernel (only argument unboxing)
    for name in re.findall(r"def (k_\w+)\(", fn.source):
        for ir in getattr(fn.module, name).inspect_llvm().values():
            assert not re.search(r"\b(fadd|fsub|fmul|fdiv|fpext)\b[^\n]*double", ir), name


def test_compile_transcendentals_run_as_numpy_ufuncs():
    # through the pipeline's own order: the algebraic passes, then route before fuse
    f = trace(lambda x: np.sum(np.tanh(x) * np.exp(-x) + x * x), np.ones(16))
    g = run_passes(f, ALGEBRAIC_PASSES)
    fn = _check(g, (np.linspace(-3, 3, 16),))
    assert "np.tanh(" in fn.source and "np.exp(" in fn.source
    assert "math.tanh" not in fn.source and "math.exp" not in fn.source


def test_compile_matmul_layouts_and_batches():
    b = Builder()
    a = b.add_input(TensorType((4, 3), np.float64))
    c = b.add_input(TensorType((2, 3, 5), np.float64))
    d = b.add_input(TensorType((2, 5, 4), np.float64))
    at = b.add("transpose", [a], {"axes": (1, 0)})  # F-contiguous view
    s = b.add("slice", [a], {"index": ((0, 2, 2), (0, 1, 3))})  # strided view
    outs = [
        b.add("matmul", [at, a]),
        b.add("matmul", [s, at]),
        b.add("matmul", [c, d]),
        b.add(
            "matmul",
            [
                b.add("transpose", [d], {"axes": (0, 2, 1)}),
                b.add("transpose", [c], {"axes": (0, 2, 1)}),
            ],
        ),
    ]
    rng = np.random.default_rng(0)
    args = [rng.normal(size=v.shape) for v in (a, c, d)]
    _check(b.build(outs), args)


def test_compile_inplace_reuse_never_clobbers_a_live_view():
    b = Builder()
    x = b.add_input(TensorType((1, 4), np.float64))
    t = b.add("multiply", [x, x])
    tb = b.add("broadcast_to", [t], {"shape": (3, 4)})
    r = b.add("reshape", [t], {"shape": (4,)})
    u = b.add("add", [t, t])  # t's last direct use: must not overwrite t (tb, r still read it)
    w = b.add("multiply", [tb, u])
    g = b.build(
        [
            w,
            b.add("negative", [r]),
            b.add("matmul", [b.add("transpose", [tb], {"axes": (1, 0)}), tb]),
        ]
    )
    _check(g, (np.arange(4.0).reshape(1, 4) + 1,))


def test_compile_unfused_and_fused_agree_on_joint_graphs():
    mlp = mlp_loss
    rng = np.random.default_rng(0)
    sizes = [5, 7, 6, 3]
    params = [(rng.normal(size=(m, n)), rng.normal(size=n)) for m, n in zip(sizes, sizes[1:])]
    x, y = rng.normal(size=(4, 5)), np.eye(3)[[0, 2, 1, 1]]
    flat = [a for wb in params for a in wb] + [x, y]
    unfused = joint(mlp, (params, x, y), 6, fuse=False)
    fused = joint(mlp, (params, x, y), 6, fuse=True)
    runs = [
        lower_graph(unfused, disable=("route", "fuse"))(*flat),
        lower_graph(unfused)(*flat),
        lower_graph(fused)(*flat),
    ]
    for outs in runs:
        for p, e in zip(outs, run_graph(unfused, flat)):
            assert_same(p, e)


@settings(deadline=None, max_examples=6)
@given(elementwise_graphs(max_nodes=6))
def test_compile_random_fused_graphs_match_unfused(case):
    g, args = case
    want = run_graph(g, args)
    fns = [lower_graph(g, disable=("fuse",)), lower_graph(g), lower_graph(fuse(g))]
    for fn in fns:
        for a, e in zip(fn(*args), want):
            assert_same(a, e, rtol=1e-9)


def test_compile_module_runs_with_jit_disabled(tmp_path):
    script = textwrap.dedent("""
        import numpy as np
        from compiler import trace
        from compiler.codegen import compile_stats
        from compiler.pipeline import lower_graph
        from compiler.interpret import run_graph
        from compiler.passes import run_passes

        def f(x, w):
            return np.sum(np.maximum(np.tanh(x @ w + 1.0), 0.1) ** 2, axis=0)

        for args in [(np.ones((3, 4)) * 0.3, np.eye(4)), (0.5, 2.0)]:
            if np.ndim(args[0]) == 0:
                g = run_passes(trace(lambda a, b: (a * b - 1.0) ** 2, *args))
            else:
                g = run_passes(trace(f, *args))
            fn = lower_graph(g)
            for a, e in zip(fn(*args), run_graph(g, list(args))):
                np.testing.assert_allclose(a, e, rtol=1e-12)
        assert compile_stats().compiled == 0
        print("ok", fn.driver_kind)
    """)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", GRADC_CACHE_DIR=str(tmp_path))
    res = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok njit"


def test_compile_large_loops_use_prange_and_stay_exact():
    b = Builder()
    x = b.add_input(TensorType((512, 160), np.float64))
    y = b.add_input(TensorType((160,), np.float64))
    z = b.add_input(TensorType((512, 160), np.float64))
    w = b.add_input(TensorType((512, 160), np.float64))
    e = b.add("multiply", [b.add("add", [x, y]), b.add("sin", [x])])  # libm: parallel here
    zz = b.add("multiply", [z, z])
    ww = b.add("multiply", [w, w])
    g = fuse(
        b.build(
            [
                e,
                b.add("sum", [e], {"axis": (0, 1), "keepdims": False}),  # scalar parfor reduction
                b.add("max", [zz], {"axis": (1,), "keepdims": True}),  # per-row accumulator
                b.add("sum", [ww], {"axis": (0,), "keepdims": False}),  # stays serial
            ]
        )
    )
    assert sum(n.op == "fused" for n in g.nodes) == 3
    rng = np.random.default_rng(0)
    args = [rng.normal(size=v.shape) for v in g.inputs]
    fn = _check(g, args, rtol=1e-10)
    assert fn.source.count("numba.prange") == 2
    small = Builder()
    xs = small.add_input(TensorType((4, 160), np.float64))
    small_g = small.build([small.add("negative", [small.add("multiply", [xs, xs])])])
    # decided per call from the size bound in P, so the text does not depend on it
    assert re.search(r"if P\[\d+\] >= 1048576 else", lower_graph(fuse(small_g)).source)
