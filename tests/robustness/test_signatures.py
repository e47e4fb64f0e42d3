"""New signatures retrace and stay right; unusual array layouts and empty arrays work.

A new shape, dtype, pytree structure or static value must retrace (and the old entries must
still answer correctly when called again); strided, Fortran-ordered, read-only, big-endian
and unaligned arrays must give exactly what their C-contiguous twin gives; zero-size arrays
work where NumPy's math is defined and raise a clear error where it is not.
"""

from __future__ import annotations

import numpy as np
import optree
import pytest

from compiler import grad, jit, value_and_grad, vjp
from compiler.ir.graph import ShapeError
from tests.helpers import fd_grad
from tests.robustness.test_inputs import assert_unchanged


def _poly(x, n, scale):
    return scale * np.sum(np.tanh(x) ** n)


def _check_against_interpreter(fun, args, argnums=0):
    got = value_and_grad(fun, argnums=argnums)(*args)
    want = value_and_grad(fun, argnums=argnums, backend="interpret")(*args)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6 if _has_f32(args) else 1e-12)
    g, w = (got[1], want[1]) if isinstance(argnums, tuple) else ((got[1],), (want[1],))
    for a, b in zip(g, w):
        assert np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_allclose(a, b, rtol=1e-5 if _has_f32(args) else 1e-12)
    return got


def _has_f32(args):
    return any(getattr(a, "dtype", None) == np.float32 for a in args)


def test_signatures_new_shape_dtype_and_static_value_retrace():
    vg = value_and_grad(_poly)
    rng = np.random.default_rng(0)
    calls = [
        (rng.normal(size=3), 2, 1.0),
        (rng.normal(size=5), 2, 1.0),  # new shape
        (rng.normal(size=(2, 3)), 2, 1.0),  # new rank
        (rng.normal(size=3).astype(np.float32), 2, 1.0),  # new dtype
        (rng.normal(size=3), 3, 1.0),  # new static int
        (rng.normal(size=3), 3, 2.5),  # a new float value: traced, no retrace needed
        (rng.normal(size=3), 3, np.float32(2.5)),  # a NumPy scalar: its dtype is traced
    ]
    results = []
    for args in calls:
        value, g = vg(*args)
        results.append((value, g))
        x, n, scale = args
        assert g.shape == x.shape and g.dtype == x.dtype
        assert np.asarray(value).dtype == np.asarray(_poly(x, n, scale)).dtype  # NumPy's rules
        want = _poly(x.astype(np.float64), n, float(scale))
        np.testing.assert_allclose(value, want, rtol=1e-6 if x.dtype == np.float32 else 1e-12)
        if x.dtype == np.float64:
            np.testing.assert_allclose(
                g, fd_grad(lambda x, n=n, s=scale: _poly(x, n, s), [x], 0), rtol=1e-6, atol=1e-9
            )
    # every entry still answers for its own signature, in any order
    for args, (value, g) in reversed(list(zip(calls, results))):
        v2, g2 = vg(*args)
        assert v2 == value
        np.testing.assert_array_equal(g2, g)


def test_signatures_static_values_are_keyed_by_type_and_value():
    def f(x, k):
        return np.sum(x * k) if k is not True else np.sum(x * 10.0)

    g = grad(f)
    x = np.ones(2)
    np.testing.assert_array_equal(g(x, 1), [1.0, 1.0])  # static int 1
    np.testing.assert_array_equal(g(x, True), [10.0, 10.0])  # True == 1 but is another key
    np.testing.assert_array_equal(g(x, 2), [2.0, 2.0])
    np.testing.assert_array_equal(g(x, 1.0), [1.0, 1.0])  # a float: traced
    np.testing.assert_array_equal(g(x, 3.0), [3.0, 3.0])


def test_signatures_static_flags_select_control_flow():
    def f(x, mode):
        if mode == "sum":
            return np.sum(x**2)
        return np.max(x**2)

    g = grad(f)
    x = np.array([1.0, -3.0, 2.0])
    np.testing.assert_array_equal(g(x, "sum"), 2 * x)
    np.testing.assert_array_equal(g(x, "max"), [0.0, -6.0, 0.0])
    np.testing.assert_array_equal(g(x, "sum"), 2 * x)


def test_signatures_new_pytree_structure_retraces():
    def f(p):
        leaves = optree.tree_leaves(p)  # dict leaves come in sorted key order
        return sum(np.sum(np.sin(v) * (i + 1)) for i, v in enumerate(leaves))

    g = grad(f)
    a, b = np.array([0.1, 0.2]), np.array([[0.3], [0.4]])
    r1 = g({"a": a, "b": b})
    r2 = g([a, b])
    r3 = g((a,))
    r4 = g({"a": a, "c": b})  # other key, same leaves
    r5 = g({"a": a, "b": (b, b)})  # deeper
    assert set(r1) == {"a", "b"} and isinstance(r2, list) and isinstance(r3, tuple)
    np.testing.assert_allclose(r1["a"], np.cos(a))
    np.testing.assert_allclose(r1["b"], 2 * np.cos(b))
    np.testing.assert_allclose(r2[1], 2 * np.cos(b))
    np.testing.assert_allclose(r3[0], np.cos(a))
    assert set(r4) == {"a", "c"}
    np.testing.assert_allclose(r4["c"], 2 * np.cos(b))
    assert isinstance(r5["b"], tuple) and len(r5["b"]) == 2
    np.testing.assert_allclose(r5["b"][1], 3 * np.cos(b))
    np.testing.assert_allclose(g({"a": a, "b": b})["b"], 2 * np.cos(b))  # first entry again


def test_signatures_kwargs_and_none_leaves():
    def f(x, *, scale=1.0, bias=None):
        out = np.sum(x * scale)
        return out if bias is None else out + np.sum(bias * x)

    g = grad(f)
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(g(x), [1.0, 1.0])
    np.testing.assert_array_equal(g(x, scale=3.0), [3.0, 3.0])
    np.testing.assert_array_equal(g(x, bias=np.array([1.0, 5.0])), [2.0, 6.0])
    np.testing.assert_array_equal(g(x, scale=2, bias=None), [2.0, 2.0])


# -- layouts ----------------------------------------------------------------------------------


def _layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    """Arrays equal to C-contiguous `x` (2-D), each laid out differently in memory."""
    wide = np.zeros((x.shape[0], 2 * x.shape[1]), x.dtype)
    wide[:, ::2] = x
    flipped = np.ascontiguousarray(x[::-1])
    rev = flipped[::-1]  # negative strides
    ro = x.copy()
    ro.setflags(write=False)
    big = x.astype(x.dtype.newbyteorder(">"))
    big_f_ro = np.asfortranarray(big)
    big_f_ro.setflags(write=False)
    raw = np.frombuffer(b"\0" + x.tobytes(), dtype=x.dtype, offset=1).reshape(x.shape)
    return {
        "strided": wide[:, ::2],
        "negative_stride": rev,
        "fortran": np.asfortranarray(x),
        "transposed_view": np.ascontiguousarray(x.T).T,
        "read_only": ro,
        "big_endian": big,
        "big_endian_fortran_read_only": big_f_ro,
        "unaligned": raw,
        "broadcast_view": np.broadcast_to(x[:1], x.shape) if x.shape[0] == 1 else x[:, :],
    }


def _loss(w, x):
    return np.sum(np.tanh(x @ w) ** 2) + np.sum(np.abs(x) * 0.5) + np.max(x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", list(_layouts(np.zeros((2, 2)))))
def test_signatures_layouts_give_the_contiguous_answer(layout, dtype):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3)).astype(dtype)
    w = rng.normal(size=(3, 2)).astype(dtype)
    vg = value_and_grad(_loss, argnums=(0, 1))
    want = vg(w, x)
    odd = _layouts(x)[layout]
    ow = _layouts(w)[layout]
    before = [a.copy() for a in (ow, odd)]
    for args in [(w, odd), (ow, x), (ow, odd)]:
        got = vg(*args)
        assert got[0] == want[0]
        for g, r in zip(got[1], want[1]):
            assert g.dtype == np.dtype(dtype) and g.dtype.isnative and g.shape == r.shape
            np.testing.assert_array_equal(g, r)
    np.testing.assert_array_equal(ow, before[0])
    np.testing.assert_array_equal(odd, before[1])
    np.testing.assert_array_equal(jit(lambda x: x * 2.0)(odd), x * 2.0)


def test_signatures_big_endian_scalars_and_vjp_cotangents():
    x = np.array([0.5, 1.0, 2.0], dtype=">f8")
    out, pullback = vjp(lambda x: np.sin(x) * 2.0, x)
    (g,) = pullback(np.ones(3, dtype=">f8")[::-1])
    np.testing.assert_allclose(g, 2.0 * np.cos(x.astype(np.float64)))
    (g2,) = pullback(np.asfortranarray(np.ones((3,))))
    np.testing.assert_array_equal(g2, g)
    s = np.array(1.5, dtype=">f8")  # a 0-d big-endian array
    assert grad(lambda a: a * a)(s) == 3.0


def test_signatures_ndarray_subclasses_are_refused_or_plain():
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match=r"numpy.matrix.*np.asarray"):
        grad(lambda a: np.sum(a * a))(m)  # a * a is a matrix product for np.matrix
    ma = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(TypeError, match="MaskedArray"):
        grad(lambda a: np.sum(a * a))(ma)


def test_signatures_memmap_arguments_work(tmp_path):
    mm = np.memmap(tmp_path / "x.dat", dtype="f8", mode="w+", shape=(3,))
    mm[:] = [1.0, 2.0, 3.0]
    g = grad(lambda a: np.sum(a * a))(mm)
    assert type(g) is np.ndarray
    np.testing.assert_array_equal(g, [2.0, 4.0, 6.0])


# -- zero-size arrays -------------------------------------------------------------------------

EMPTY_CASES = {
    "sum": (lambda x: np.sum(x), (0, 3)),
    "sum_axis0": (lambda x: np.sum(np.sum(x, axis=0) ** 2), (0, 3)),
    "elementwise": (lambda x: np.sum(np.exp(x) * x), (0,)),
    "matmul_inner_empty": (lambda x: np.sum((x @ x.T) ** 2), (2, 0)),
    "max_nonempty_axis": (lambda x: np.sum(np.max(x, axis=1)), (0, 3)),
    "broadcast": (lambda x: np.sum(x + np.ones((2, 1, 1))), (0, 3)),
    "concatenate": (lambda x: np.sum(np.concatenate([x, x * 2.0])), (0, 2)),
    "reshape": (lambda x: np.sum(x.reshape(3, 0) ** 2), (0, 3)),
}


@pytest.mark.parametrize("case", sorted(EMPTY_CASES))
def test_signatures_zero_size_arrays(case):
    f, shape = EMPTY_CASES[case]
    x = np.zeros(shape)
    value, g = value_and_grad(f)(x)
    assert value == f(x)
    assert g.shape == shape and g.dtype == np.float64
    np.testing.assert_array_equal(jit(f)(x), f(x))


def test_signatures_zero_size_mean_is_nan_like_numpy():
    x = np.zeros((0, 3))
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.mean(x, axis=0)  # NumPy: nan with a warning
    np.testing.assert_array_equal(jit(lambda x: np.mean(x, axis=0))(x), want)


@pytest.mark.parametrize("op", ["max", "min"])
def test_signatures_zero_size_max_raises_a_clear_error(op):
    f = lambda x: np.sum(getattr(np, op)(x, axis=0))  # noqa: E731
    x = np.zeros((0, 3))
    with pytest.raises(ValueError, match="zero-size"):
        getattr(np, op)(x, axis=0)  # NumPy's own error
    with pytest.raises(ShapeError, match=rf"{op}: zero-size reduction has no identity") as info:
        grad(f)(x)
    assert isinstance(info.value, ValueError)  # so `except ValueError` code keeps working
    assert "test_signatures.py" in str(info.value)  # and it names the user's line
    with pytest.raises(ShapeError):
        jit(f, backend="interpret")(x)


def test_signatures_layouts_do_not_corrupt_the_cache():
    """A layout call between two normal ones leaves the normal answer unchanged."""
    f = value_and_grad(lambda x: np.sum(np.sin(x) * np.arange(x.size).reshape(x.shape)))
    x = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    first = f(x)
    f(np.asfortranarray(x)[:, ::-1])
    f(x.astype(">f8"))
    again = f(x)
    assert again[0] == first[0]
    np.testing.assert_array_equal(again[1], first[1])
    assert_unchanged(x, np.linspace(0.0, 1.0, 12).reshape(3, 4))
