"""SIMD transcendentals (compiler/codegen/simd.py): accuracy against NumPy at the edge values in
both dtypes with SIMD on and off, vector calls in the generated code, routing per mode, and
one disk-cache namespace per mode across processes."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from compiler import jit
from compiler.codegen import simd
from compiler.codegen.prepare import lower_passes
from compiler.passes.route import routed
from compiler.primitives import OPS

pytestmark = pytest.mark.compiled  # about compiled code: GRADC_COMPILE=eager

ON = simd.host().level != "off"
needs_libmvec = pytest.mark.skipif(not ON, reason=f"no SIMD here: {simd.host().reason}")

# gradc op -> NumPy reference (the ops whose loop code calls libm functions with variants)
UNARY = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "tanh": np.tanh,
    "sin": np.sin, "cos": np.cos, "sinh": np.sinh, "cosh": np.cosh, "arcsin": np.arcsin,
    "arccos": np.arccos, "arctan": np.arctan, "arcsinh": np.arcsinh, "arccosh": np.arccosh,
    "arctanh": np.arctanh, "log2": np.log2, "log10": np.log10,
    # scipy's erfc is ~200 ulp off in its tail (erfc(25.0008): 7.962222286048888e-274, the
    # true value 7.962222286049111e-274): CPython's math module (glibc) is the reference
    "erf": np.vectorize(math.erf, otypes=[float]), "erfc": np.vectorize(math.erfc, otypes=[float]),
}  # fmt: skip
BINARY = {"power": np.power, "arctan2": np.arctan2, "hypot": np.hypot}
# ulp bounds: libmvec documents <= 4 ulp; measured maxima are in docs/routing.md
ULP = {np.float64: 4.0, np.float32: 4.0}


def _edges(dt: type) -> np.ndarray:
    """0, -0, denormals, +-inf, NaN, the overflow/underflow thresholds of exp/sinh/pow/erfc,
    domain edges, and values at many scales."""
    fi = np.finfo(dt)
    tiny = fi.smallest_subnormal
    if dt == np.float64:
        th = [709.782712893384, 709.7827128933841, 710.4758600739439, 710.475860073944]
        th += [-708.3964185322641, -745.1332191019411, -745.1332191019412, 26.55, 27.3]
    else:
        th = [88.72283, 88.72284, 89.41598, 89.416, -87.33654, -103.97208, -103.97209, 9.19, 10.1]
    base = [0.0, -0.0, tiny, -tiny, tiny * 1000, -tiny * 1000, fi.tiny, -fi.tiny, np.inf, -np.inf]
    base += [np.nan, 1.0, -1.0, 0.5, -0.5, 1 - fi.eps, -(1 - fi.eps), 1 + fi.eps, 2.0, 20.0, 40.0]
    base += [fi.max, -fi.max, 1e-8, -1e-8, np.pi, -np.pi, 1e5, -1e5, *th, *(-np.array(th))]
    rng = np.random.default_rng(7)
    scaled = rng.standard_normal(600) * 10.0 ** rng.integers(-6, 3, 600)
    return np.array(base + list(scaled), dtype=dt)


def _operands(dt: type) -> tuple[np.ndarray, np.ndarray]:
    """Every edge value, and every pair of a small edge set, repeated so that each lands in
    vector lanes as well as in the loop's scalar tail."""
    e = _edges(dt)
    small = np.array(
        [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, np.inf, -np.inf, np.nan, 1e-40, 1e3, -3.0], dt
    )
    px, py = (a.ravel() for a in np.meshgrid(small, small))
    x = np.concatenate([e, px, e, e[:7]])
    rng = np.random.default_rng(8)
    y = np.concatenate([rng.permutation(e), py, e[::-1], e[:7]])
    return x, y


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Distance in units of the last place of `want`; 0 where both are NaN or equal; inf where
    exactly one is NaN or inf."""
    got, want = np.asarray(got), np.asarray(want).astype(got.dtype)
    with np.errstate(all="ignore"):
        d = np.abs(got.astype(np.float64) - want.astype(np.float64))
        d = d / np.spacing(np.abs(want)).astype(np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    d = np.where(same, 0.0, d)
    return np.where(np.isnan(d), np.inf, d)


def _reference(fn, dt: type, *args: np.ndarray) -> np.ndarray:
    # float32: computed in float64 and rounded (within 0.5 ulp), so the bound is our error
    with np.errstate(all="ignore"):
        if dt == np.float32:
            return fn(*(a.astype(np.float64) for a in args)).astype(np.float32)
        return fn(*args)


def _kernel(dt: type, m: str, ops: tuple[str, ...] = (*UNARY, *BINARY)):
    """One njit function with a loop per op, each rendered the way loops.py renders it in
    mode `m` (one compile for all ops; one store per loop, so each loop vectorizes)."""
    lines, names, pre = [], [], []
    for j, op in enumerate(ops):
        text, need = simd.render(OPS[op].codegen.template, np.dtype(dt), m)
        pre += [ln for ln in need if ln not in pre]
        expr = text.format("x[i]", "y[i]", T=f"np.{np.dtype(dt).name}")
        lines.append(f"    for i in range(n):\n        o[{j}, i] = {expr}")
        names.append(op)
    src = "\n".join(pre) + "\n\n@numba.njit(error_model='numpy', fastmath=_FASTMATH)\n"
    src += "def k(x, y, o):\n    n = x.shape[0]\n" + "\n".join(lines) + "\n"
    ns = {"np": np, "numba": numba, "math": math}
    ns["_FASTMATH"] = {"arcp", "contract", "afn", "reassoc"}
    simd.setup()
    exec(compile(src, f"<simd test {m}>", "exec"), ns)
    return ns["k"], names


MODES = ["off"] + ([simd.host().level] if ON else []) + (["avx2"] if ON else [])
if simd.host().level == "avx2":
    MODES = MODES[:2]


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("m", MODES)
def test_transcendentals_match_numpy_at_edges(m, dt):
    x, y = _operands(dt)
    k, names = _kernel(dt, m)
    o = np.empty((len(names), x.size), dt)
    with np.errstate(all="ignore"):
        k(x, y, o)
    sig = k.signatures[0]
    asm = k.inspect_asm(sig)
    bad = {}
    for j, op in enumerate(names):
        fn = UNARY.get(op) or BINARY[op]
        want = _reference(fn, dt, x) if op in UNARY else _reference(fn, dt, x, y)
        u = ulps(o[j], want)
        if u.max() > ULP[dt]:
            i = int(np.argmax(u))
            bad[op] = (float(x[i]), float(y[i]), float(o[j, i]), float(want[i]), float(u[i]))
        # zeros keep their sign as in NumPy (tanh(-0) = -0)
        z = want == 0
        assert np.array_equal(np.signbit(o[j][z]), np.signbit(want[z])), op
        fname = re.search(r"math\.(\w+)\(|\*\*", OPS[op].codegen.template)
        if m != "off":
            f = "pow" if fname.group(1) is None else fname.group(1)
            suffix = "f" if dt == np.float32 else ""
            # the loop really calls the vector variants (the edge values hit vector lanes)
            assert re.search(rf"_ZGV[bde]N\d+v+_{f}{suffix}\b", asm), (op, m)
            assert ("_ZGVe" in asm) == (m == "avx512"), m
    assert not bad, f"mode {m}, {np.dtype(dt)}: (x, y, got, want, ulp) {bad}"
    if m == "off":
        assert "_ZGV" not in asm


@pytest.mark.parametrize("m", MODES)
def test_logaddexp_loop_matches_numpy_at_edges(m):
    """logaddexp's loop template (NumPy's npy_logaddexp as selects around exp and log1p, so
    both widen to SIMD) against np.logaddexp: the same NaN, infinities and zero signs at
    every edge pair; elsewhere within a few ulp of log1p's term plus the final rounding
    (near a cancellation, logaddexp(-3.18, -0.04) ~ 1e-3, ulps of the result say nothing
    about the two libm calls)."""
    for dt in (np.float64, np.float32):
        x, y = _operands(dt)
        k, _ = _kernel(dt, m, ("logaddexp",))
        o = np.empty((1, x.size), dt)
        with np.errstate(all="ignore"):
            k(x, y, o)
            want = np.logaddexp(x, y)  # NumPy's own float32 loop for float32
        got = o[0]
        odd = ~np.isfinite(want)
        assert np.array_equal(got[odd], want[odd], equal_nan=True), (m, dt)
        z = want == 0
        assert np.array_equal(np.signbit(got[z]), np.signbit(want[z])), (m, dt)
        fin = ~odd
        err = np.abs(got[fin].astype(np.float64) - want[fin])
        eps = float(np.finfo(dt).eps)
        with np.errstate(over="ignore"):  # spacing(max) is inf
            ulp = np.spacing(np.abs(want[fin])).astype(np.float64)
        bound = 16 * eps * np.log(2.0) + 4 * ulp
        assert np.all(err <= bound), (m, dt, float(np.max(err / bound)))
        if m != "off":
            asm = k.inspect_asm(k.signatures[0])
            suffix = "f" if dt == np.float32 else ""
            for f in ("exp", "log1p"):
                assert re.search(rf"_ZGV[bde]N\d+v_{f}{suffix}\b", asm), (f, m, dt)


@needs_libmvec
def test_fused_tanh_loop_calls_vector_tanh(tmp_path, monkeypatch):
    from runtime.cache import clear_memory_cache

    # a fresh cache: machine code loaded from disk has no IR to read
    monkeypatch.setenv("GRADC_CACHE_DIR", str(tmp_path))
    clear_memory_cache()

    def f(x):
        return np.tanh(x) * x + 1.0

    x = np.linspace(-30, 30, 8192)
    fn = jit(f)
    got = fn(x)
    np.testing.assert_allclose(got, f(x), rtol=4e-16, atol=0)
    from compiler.codegen.compile import _KERNELS

    level = simd.mode()
    ks = [k for k in _KERNELS.values() if f"_simd_{level}_tanh" in k.py_func.__code__.co_names]
    assert ks, "no kernel calls the tanh intrinsic"
    ir = "\n".join(k.inspect_llvm(s) for k in ks for s in k.signatures)
    assert re.search(r"call .*<\d+ x double> @_ZGV[de]N\d+v_tanh\(", ir)


def test_route_keeps_vectorized_ops_in_loops(monkeypatch):
    from compiler.trace import trace

    def f(x, y):
        return np.sum(np.tanh(x) * np.exp(x) + np.log1p(x * x) + x**y)

    for dt in (np.float64, np.float32):
        g = trace(f, np.ones(5000, dt), np.ones(5000, dt))
        monkeypatch.setenv(simd.ENV_VAR, "0")
        off = lower_passes(g, "jit").graph
        monkeypatch.setenv(simd.ENV_VAR, "1")
        on = lower_passes(g, "jit").graph
        # off: the op records' choice (NumPy's SIMD ufunc beats scalar libm)
        assert sorted(n.op for n in off.nodes if routed(n)) == ["exp", "log1p", "power", "tanh"]
        if ON:  # on: SIMD calls inside one fused loop, but pow keeps its record's routing
            assert [n.op for n in on.nodes if routed(n)] == ["power"]
            assert [n.op for n in on.nodes] == ["fused", "power", "fused"]


def test_cpu_level_from_the_kernel_flags_is_llvms():
    # the level comes from /proc/cpuinfo (cheap) and must be the one LLVM, which Numba
    # compiles for, would pick: a wider level would emit calls the CPU cannot run
    assert simd._cpu_level() == simd._level_of(simd._llvm_features())


def test_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(simd.ENV_VAR, "avx9")
    with pytest.raises(ValueError, match="GRADC_SIMD='avx9'"):
        simd.mode()
    monkeypatch.setenv(simd.ENV_VAR, "0")
    assert simd.mode() == "off" and simd.cache_mode() == "numba"
    # kernels as plain Python (Numba's debugging switch): no intrinsics, scalar math
    monkeypatch.setenv(simd.ENV_VAR, "1")
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    assert simd.mode() == "off"


_CHILD = textwrap.dedent(
    """
    import json, re, numpy as np
    from compiler import jit
    from compiler.codegen import simd
    from compiler.codegen.compile import _KERNELS
    from runtime.cache import cache_stats
    x = np.linspace(-3, 3, 8192)
    got = jit(lambda x: np.tanh(x) * x + 1.0)(x)
    ks = list(_KERNELS.values())
    simd_calls = any(n.startswith("_simd_") for k in ks for n in k.py_func.__code__.co_names)
    hits = sum(sum(k.stats.cache_hits.values()) for k in ks)
    # machine code loaded from Numba's cache has no assembly to inspect
    asm = "" if hits else "".join(k.inspect_asm(s) for k in ks for s in k.signatures)
    print(json.dumps({"mode": simd.mode(), "stats": cache_stats(),
                      "err": float(np.max(np.abs(got - (np.tanh(x) * x + 1.0)))),
                      "vector": bool(re.search("_ZGV[bde]N", asm)), "hits": hits,
                      "simd_calls": simd_calls}))
    """
)


@needs_libmvec
def test_cache_namespace_per_mode_across_processes(tmp_path):
    def child(mode: str) -> dict:
        env = {**os.environ, "GRADC_CACHE_DIR": str(tmp_path), simd.ENV_VAR: mode}
        env["GRADC_COMPILE"] = "eager"  # compiled code (the suite default is the NumPy tier)
        r = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, r.stderr[-3000:]  # a libmvec entry loaded bare would crash
        return json.loads(r.stdout.strip().splitlines()[-1])

    on1 = child("1")
    assert on1["vector"] and on1["simd_calls"] and on1["hits"] == 0
    assert on1["stats"]["written"] >= 1 and on1["stats"]["disk"] == 0
    off = child("0")  # the SIMD entry is on disk, but in another namespace: never loaded
    assert off["mode"] == "off" and not off["vector"] and not off["simd_calls"]
    assert off["stats"]["disk"] == 0 and off["stats"]["written"] >= 1 and off["hits"] == 0
    on2 = child("1")  # its own namespace: module and machine code from disk, libmvec loaded
    assert on2["simd_calls"] and on2["hits"] >= 1
    assert on2["stats"]["disk"] >= 1 and on2["stats"]["written"] == 0
    for r in (on1, off, on2):
        assert r["err"] <= 2e-15  # a few ulp of values up to 4
    dirs = {p.name for p in tmp_path.iterdir()}
    assert {"numba", simd.cache_mode(simd.host().level)} <= dirs
