"""Generic checks over every registered op and each of its `samples`.

A new op gets all of these for free: fields filled, shape rule vs impl, VJP and JVP vs
central finite differences (float64), JVP/VJP consistency, float32 preservation, and eager
rules vs the same rules traced and run through the interpreter.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from compiler.interpret import interpret
from compiler.ir import TensorType
from compiler.primitives import OPS, Kind, OpDef, Sample, bind
from compiler.trace import trace
from tests.helpers import fd_directional, unbroadcast


def _rng(name: str, salt: str = "") -> np.random.Generator:
    return np.random.default_rng(zlib.crc32((name + salt).encode()))


def _samples(name: str) -> list[Sample]:
    return list(OPS[name].samples(_rng(name)))


def _cases(pred=lambda op: True) -> list:
    out = []
    for name, op in sorted(OPS.items()):
        if op.samples is None or not pred(op):
            continue  # test_registry_op_has_samples fails for these
        out += [pytest.param(name, i, id=f"{name}-{i}") for i in range(len(_samples(name)))]
    return out


# Loop ops (scan, while_loop) and fusion groups take a body graph and have several outputs,
# so these one-output eager checks do not apply; tests/loops/ checks loops against the
# unrolled Python loop and finite differences, tests/passes/test_fuse.py fusion groups.
SAMPLED = sorted(name for name, op in OPS.items() if op.kind not in (Kind.LOOP, Kind.FUSED))

ALL_CASES = _cases()
GRAD_CASES = _cases(lambda op: op.differentiable)


def _is_float(a) -> bool:
    return np.asarray(a).dtype.kind == "f"


def _f64(args) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) if _is_float(a) else np.asarray(a) for a in args]


def _impl(op: OpDef, attrs: dict):
    return lambda *a: np.asarray(op.impl(*a, **attrs))


def _fd_settings(out: np.ndarray) -> tuple[float, float]:
    """(eps, rtol): an op that outputs float32 from float64 inputs (astype) is linear, so a
    large step loses nothing to truncation and stays above float32 resolution."""
    return (1e-3, 1e-3) if out.dtype == np.float32 else (1e-6, 1e-5)


def _setup(name: str, i: int):
    op = OPS[name]
    s = _samples(name)[i]
    args = _f64(s.args)
    out = _impl(op, s.attrs)(*args)
    rng = _rng(name, f"dirs{i}")
    return op, s, args, out, rng


# -- fields ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLED)
def test_registry_op_has_samples(name):
    op = OPS[name]
    assert op.samples is not None, f"op {name} has no samples, so no generic test covers it"
    samples = op.samples(_rng(name))
    assert len(samples) > 0, f"op {name}: samples() returned nothing"
    for s in samples:
        assert isinstance(s, Sample)
        assert all(isinstance(a, np.ndarray) for a in s.args), f"{name}: sample args not arrays"


@pytest.mark.parametrize("name", sorted(OPS))
def test_registry_op_fields_filled(name):
    op = OPS[name]
    assert op.name == name
    assert callable(op.shape_rule) and callable(op.impl)
    assert isinstance(op.kind, Kind)
    assert op.codegen is not None, f"op {name} has no codegen"
    assert op.grad_doc.strip(), f"op {name} has an empty grad_doc"
    if op.differentiable:
        assert callable(op.vjp) and callable(op.jvp), f"op {name} lacks a vjp or jvp rule"


@pytest.mark.parametrize("name", [n for n in SAMPLED if OPS[n].differentiable])
def test_registry_differentiable_op_has_a_checked_gradient(name):
    samples = OPS[name].samples(_rng(name)) if OPS[name].samples else []
    assert any(any(_is_float(a) for a in s.args) for s in samples), (
        f"op {name} is differentiable but no sample has a float input, "
        "so its VJP/JVP is never checked against finite differences"
    )


def test_registry_rejects_differentiable_op_without_rules():
    with pytest.raises(TypeError, match="needs vjp and jvp"):
        OpDef(name="bogus", shape_rule=lambda ts: ts[0], impl=np.negative, kind=Kind.ELEMENTWISE)


# -- shape rule -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,i", ALL_CASES)
def test_registry_shape_rule_matches_impl(name, i):
    op = OPS[name]
    s = _samples(name)[i]
    types = [TensorType(np.shape(a), np.asarray(a).dtype) for a in s.args]
    want = op.shape_rule(types, **s.attrs)
    got = np.asarray(op.impl(*s.args, **s.attrs))
    assert want.shape == got.shape, f"{name}: shape rule {want}, impl {got.shape}"
    assert want.dtype == got.dtype, f"{name}: shape rule {want}, impl {got.dtype}"


# -- gradients vs finite differences --------------------------------------------------------------


@pytest.mark.parametrize("name,i", GRAD_CASES)
def test_registry_vjp_matches_finite_differences(name, i):
    op, s, args, out, rng = _setup(name, i)
    eps, rtol = _fd_settings(out)
    ct = rng.normal(size=out.shape).astype(out.dtype)
    cts = op.vjp(ct, *args, out=out, **s.attrs)
    assert len(cts) == len(args), f"{name}: vjp returned {len(cts)} cotangents for {len(args)}"
    f = _impl(op, s.attrs)
    checked = 0
    for k, a in enumerate(args):
        if not _is_float(a):
            continue
        g = np.zeros_like(a) if cts[k] is None else unbroadcast(np.asarray(cts[k]), a.shape)
        assert g.shape == a.shape
        d = rng.normal(size=a.shape)
        dirs = [None] * len(args)
        dirs[k] = d
        fd = fd_directional(lambda *x: np.sum(ct * f(*x)), args, dirs, eps)
        np.testing.assert_allclose(
            np.sum(g * d), fd, rtol=rtol, atol=1e-6, err_msg=f"{name} input {k}"
        )
        checked += 1
    assert checked, f"{name} sample {i}: no float input to differentiate"


@pytest.mark.parametrize("name,i", GRAD_CASES)
def test_registry_jvp_matches_finite_differences(name, i):
    op, s, args, out, rng = _setup(name, i)
    eps, rtol = _fd_settings(out)
    f = _impl(op, s.attrs)
    floats = [k for k, a in enumerate(args) if _is_float(a)]
    # one input at a time (the others' tangents are None), then all together
    for which in [[k] for k in floats] + ([floats] if len(floats) > 1 else []):
        tans = [rng.normal(size=a.shape) if k in which else None for k, a in enumerate(args)]
        t_out = np.broadcast_to(op.jvp(tans, *args, out=out, **s.attrs), out.shape)
        fd = fd_directional(f, args, tans, eps)
        np.testing.assert_allclose(t_out, fd, rtol=rtol, atol=1e-6, err_msg=f"{name} {which}")


@pytest.mark.parametrize("name,i", GRAD_CASES)
def test_registry_jvp_vjp_consistent(name, i):
    # <vjp(c), t> == <c, jvp(t)>: both are c^T J t
    op, s, args, out, rng = _setup(name, i)
    ct = rng.normal(size=out.shape).astype(out.dtype)
    tans = [rng.normal(size=a.shape) if _is_float(a) else None for a in args]
    cts = op.vjp(ct, *args, out=out, **s.attrs)
    lhs = sum(
        np.sum(unbroadcast(np.asarray(c), a.shape) * t)
        for c, a, t in zip(cts, args, tans)
        if t is not None and c is not None
    )
    t_out = np.broadcast_to(op.jvp(tans, *args, out=out, **s.attrs), out.shape)
    rhs = np.sum(ct * t_out)
    rtol = 1e-5 if out.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(lhs, rhs, rtol=rtol, atol=1e-9)


@pytest.mark.parametrize(
    "name,i",
    [
        c
        for c in GRAD_CASES
        if any(np.asarray(a).dtype == np.float32 for a in _samples(c.values[0])[c.values[1]].args)
    ],
)
def test_registry_rules_preserve_float32(name, i):
    op = OPS[name]
    s = _samples(name)[i]
    args = [np.asarray(a) for a in s.args]
    out = np.asarray(op.impl(*args, **s.attrs))
    rng = _rng(name, f"f32{i}")
    ct = rng.normal(size=out.shape).astype(out.dtype)
    cts = op.vjp(ct, *args, out=out, **s.attrs)
    cts64 = op.vjp(ct.astype(np.float64), *_f64(args), out=out.astype(np.float64), **s.attrs)
    for k, (a, c, c64) in enumerate(zip(args, cts, cts64)):
        if c is None or not _is_float(a):
            continue
        assert np.asarray(c).dtype == a.dtype, f"{name}: vjp for input {k} is {c.dtype}"
        np.testing.assert_allclose(c, c64, rtol=1e-4, atol=1e-4)
    tans = [rng.normal(size=a.shape).astype(a.dtype) if _is_float(a) else None for a in args]
    t_out = op.jvp(tans, *args, out=out, **s.attrs)
    assert np.asarray(t_out).dtype == out.dtype, f"{name}: jvp gave {t_out.dtype}"


# -- eager rules == traced rules ------------------------------------------------------------------


def _compare(eager, traced, what):
    eager = [e for e in eager if e is not None]
    traced = list(traced) if isinstance(traced, (list, tuple)) else [traced]
    traced = [t for t in traced if t is not None]
    assert len(eager) == len(traced), what
    for e, t in zip(eager, traced):
        e, t = np.asarray(e), np.asarray(t)
        assert e.shape == t.shape, f"{what}: eager {e.shape}, traced {t.shape}"
        np.testing.assert_allclose(t, e, rtol=1e-12, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("name,i", GRAD_CASES)
def test_registry_vjp_eager_equals_traced(name, i):
    op, s, args, out, rng = _setup(name, i)
    ct = rng.normal(size=out.shape)
    eager = op.vjp(ct, *args, out=out, **s.attrs)

    def rule(c, *xs):
        return list(op.vjp(c, *xs, out=bind(name, *xs, **s.attrs), **s.attrs))

    graph = trace(rule, ct, *args)
    _compare(eager, interpret(graph, ct, *args), f"{name} vjp")


@pytest.mark.parametrize("name,i", GRAD_CASES)
def test_registry_jvp_eager_equals_traced(name, i):
    op, s, args, out, rng = _setup(name, i)
    tans = [rng.normal(size=a.shape) if _is_float(a) else None for a in args]
    eager = op.jvp(tans, *args, out=out, **s.attrs)

    def rule(ts, *xs):
        return op.jvp(list(ts), *xs, out=bind(name, *xs, **s.attrs), **s.attrs)

    graph = trace(rule, tans, *args)
    _compare([eager], interpret(graph, tans, *args), f"{name} jvp")
