"""Randomized differential testing: random NumPy programs, Numba backend vs interpreter vs
NumPy itself, gradients vs finite differences (tests/robustness/differential.py).

Each compiling example costs a few tenths of a second, so a test run checks a few dozen
programs: every op family once as the first step of a short program, plus random programs
(GRADC_FUZZ_EXAMPLES, default 30), and one program under every config (each transform with
each memory policy and with each pass disabled in turn) on the interpreter, which runs the
same planned graphs without compiling. `python -m tests.robustness.campaign -n 5000 --seed S`
runs a large campaign of fresh programs. Every failure found is kept below as an explicit
regression program (CORPUS).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.differential import check_config, check_program, configs
from tests.robustness.programs import FAMILIES, Program, programs, random_program

N_RANDOM = int(os.environ.get("GRADC_FUZZ_EXAMPLES", "30"))
COMPILING = settings(
    deadline=None,
    max_examples=N_RANDOM,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _assert_passes(prog: Program) -> None:
    problems = check_program(prog)
    assert not problems, f"{prog!r}\n" + "\n".join(problems)


@COMPILING
@given(prog=programs())
def test_differential_random_programs(prog):
    _assert_passes(prog)


@pytest.mark.parametrize("family", FAMILIES)
@settings(deadline=None, max_examples=2, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_differential_every_family(family, data):
    prog = data.draw(programs(max_steps=3, first=family), label="program")
    _assert_passes(prog)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_differential_fixed_seeds(seed):
    """The campaign's own programs (reproducible by number, independent of hypothesis)."""
    _assert_passes(random_program(seed))


# -- the corpus: every program a campaign found failing, minimised -------------------------------

CORPUS = {
    # tracer: `s = a[0]` on a 1-D array is a NumPy scalar (a copy); `s *= 2` wrote back into
    # `a` through a view. Fixed in compiler/trace/indexing.py.
    "scalar_index_is_a_copy": Program(
        args=(((3, 3), "float64"),),
        body=(
            "v1 = x0[np.array([-1, -3]), np.array([-1, -1])]",
            "v5 = np.zeros_like(v1)",
            "v6 = v5[0]",
            "v6 *= 2.0",
            "v6 += 1.0",
            "v7 = x0[1, 2]",
            "v7 += 4.0",
            "v9 = np.concatenate([v5, v1], axis=0) * v7",
        ),
        results=("v1", "v5", "v9", "x0"),
        loss_expr="np.sum(v9 * np.linspace(-1.0, 1.5, 4))",
        fd=True,
        seed=20996,
    ),
    # codegen: a reduction over axes of size 1 (keepdims) has its input's shape, so the driver
    # reused the input's buffer for the output, and the kernel's initialisation (0, -inf or
    # +inf) overwrote the input before reading it: wrong values (batch size 1) and NaN grads.
    # Fixed in codegen (lone reductions now run as np.sum/np.max(..., out=)).
    "keepdims_sum_over_size_one_axis": Program(
        args=(((1, 1, 1), "float64"),),
        body=(
            "v1 = np.concatenate([x0, x0 * 2.0], axis=1)",
            "v2 = np.mean(v1, axis=(0,), keepdims=True)",
            "v3 = np.linspace(-0.5, 1.15, 2).reshape((1, 2)) @ v2",
        ),
        results=("v1", "v2", "v3"),
        loss_expr="np.sum(v3 * 0.75)",
        fd=True,
        seed=783,
    ),
    "keepdims_min_gradient_over_size_one_axis": Program(
        args=(((3, 1), "float64"),),
        body=(
            "v1 = np.linspace(-0.5, 1.15, 3).reshape((1, 3)) @ x0",
            "v2 = v1.min(axis=0, keepdims=True)",
        ),
        results=("v1", "v2"),
        loss_expr="np.sum(v2 * 0.75)",
        fd=True,
        seed=1726,
    ),
    "keepdims_max_after_scatter_add": Program(
        args=(((1, 4), "float32"),),
        body=(
            "v4 = x0 * 1.0",
            "np.add.at(v4, np.array([[0, 0], [0, -1]]), np.tanh(x0[np.array([0, 0])]) * 2.0)",
            "v9 = np.max(v4, axis=(0,), keepdims=True)",
        ),
        results=("v4", "v9"),
        loss_expr="np.sum(v9 * np.linspace(-1.0, 1.5, 4).astype(np.float32))",
        fd=False,
        seed=221,
    ),
}


# Issue #18 (found by an independent differential test; this generator did not make these
# forms then): writes through a reshape of a transposed array (a copy in NumPy), augmented
# assignment on an alias of a NumPy scalar (it only rebinds), a Python float through a ufunc
# (a strong float64), and vjp where `batch` met a transpose (a forward product batched with a
# backward one). Fixed in compiler/trace (layout.py, scalars) and compiler/passes/batch.py.
CORPUS["issue18_semantics"] = Program(
    args=(((4, 4), "float64"), ((), "float"), ((), "np.float64")),
    body=(
        "v1 = x0 @ np.linspace(-1.0, 1.0, 16).reshape((4, 4))",
        "v2 = x0.T @ x0",
        "v3 = x0.copy()",
        "v4 = v3.T.reshape(-1)",
        "v4[0] = 5.0",
        "v5 = (v3.T * 1.0).ravel()",
        "v5 *= 2.0",
        "v6 = v3[:, ::2].ravel()",
        "v6 += 1.0",
        "v7 = x0.sum()",
        "v8 = v7",
        "v7 += 1.0",
        "v9 = x2",
        "v9 -= 1.0",
        "v10 = x0 * np.exp(x1) * x2 + np.tanh(x1)",
    ),
    results=("v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10"),
    loss_expr="np.sum(v1) + np.sum(v2 * 0.5) + np.sum(v3 * v4.reshape((4, 4))) + v8 * 0.25 "
    "+ np.sum(v5 * v6.sum()) * 0.01 + np.sum(v10) * v9",
    fd=True,
    seed=18,
)
CORPUS["issue18_weak_float_through_ufunc_float32"] = Program(
    args=(((3, 2), "float32"), ((), "float"), ((), "np.float32")),
    body=(
        "v1 = x0 * np.exp(x1)",
        "v2 = np.abs(x1) * x0 + x2",
        "v3 = x0 * (x1 * 2.0) - abs(x1)",
        "v4 = np.multiply(x1, 2.0) * x0.T",
        "v5 = x2",
        "v5 *= 3.0",
        "v6 = x0.sum()",
        "v7 = v6",
        "v6 += np.float64(1.5)",
    ),
    results=("v1", "v2", "v3", "v4", "v5", "v6", "v7"),
    loss_expr="np.sum(v1) + np.sum(v2 * v3) + np.sum(v4) + v5 + v6 * v7",
    fd=False,
    seed=1818,
)

# tracer: Python's operators on Python bools (a comparison of Python float arguments) are int
# arithmetic: `~True` is -2, not False. Found by the campaign as random_program(18000466, 8).
CORPUS["python_bool_invert_is_int"] = Program(
    args=(((2, 1), "float64"), ((), "float")),
    body=("v1 = (x1 <= x1)", "v2 = v1 | v1", "v3 = ~v2", "v4 = x0 * (v3 + v1)"),
    results=("v1", "v2", "v3", "v4"),
    loss_expr="np.sum(v4 * np.linspace(-1.0, 1.5, 2).reshape((2, 1)))",
    fd=True,
    seed=1528604901,
)

# tracer: `s.flatten()` / `np.ravel(s[::2])` of a NumPy scalar argument is a new 1-D array,
# which gradc had marked a (read-only) scalar, or a view writing back into the scalar.
# Found by the campaign as random_program(18002139, 8) and random_program(18001381, 8).
CORPUS["numpy_scalar_flatten_is_an_array"] = Program(
    args=(((1,), "float32"), ((), "np.float64")),
    body=(
        "v1 = x1.flatten()",
        "v2 = v1.copy()",
        "v3 = np.ravel(v2[::2])",
        "v2[...] += 1.25",
        "v4 = np.ravel(x1)",
        "v4[0] = 5.0",
        "v5 = x0 * x1",
    ),
    results=("v1", "v2", "v3", "v4", "v5"),
    loss_expr="np.sum(v5 * np.linspace(-1.0, 1.5, 1).astype(np.float32)) + np.sum(v2 * v3)",
    fd=False,
    seed=575901322,
)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_differential_corpus(name):
    _assert_passes(CORPUS[name])


@pytest.mark.parametrize("cfg", configs(backend="interpret"), ids=str)
def test_differential_every_config(cfg):
    """Every transform x memory policy x disabled pass, on the issue #18 program (the random
    programs of a campaign take the same configs in turn, compiled)."""
    prog = CORPUS["issue18_semantics"]
    problems = check_config(prog, cfg)
    assert not problems, f"{prog!r}\n" + "\n".join(problems)
