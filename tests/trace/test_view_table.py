"""The copy-versus-view table in docs/user-guide.md, walked against NumPy and against gradc.

Each row names how `a` is made from `x`, one or more operations on `a` and what NumPy returns.
The table is parsed from the doc itself, so it cannot drift: for every operation, NumPy must
return what the row says (`np.shares_memory` on real arrays, a NumPy scalar, read-only), and
gradc, writing through the result and then into `a`, must compute what NumPy computes (values,
and gradients against finite differences).
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from compiler import jit, value_and_grad
from tests.robustness.differential import fd_grad_typed

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"
KINDS = ("view", "view (read-only)", "copy", "copy (a NumPy scalar)")


def _rows() -> list[tuple[str, str, str]]:
    """(setup, operation, kind) for every operation of every row of the table."""
    text = DOC.read_text()
    body = text.split("<!-- view-table:start -->")[1].split("<!-- view-table:end -->")[0]
    out = []
    for line in body.strip().splitlines()[2:]:  # after the header and the rule
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"a table row needs 3 cells: {line!r}"
        setup, ops, kind = cells
        assert kind in KINDS, f"unknown kind {kind!r} in {line!r}"
        (setup,) = _code(setup)
        for op in _code(ops):
            out.append((setup, op, kind))
    return out


def _code(cell: str) -> list[str]:
    """The code spans of a cell, except those inside a parenthesized remark."""
    out, depth = [], 0
    for i, part in enumerate(re.split(r"`([^`]*)`", cell)):
        if i % 2:
            if depth == 0:
                out.append(part)
        else:
            depth += part.count("(") - part.count(")")
    return out


ROWS = _rows()
X = np.arange(24.0).reshape(4, 6)


def _make(setup: str, op: str, x):
    a = eval(setup, {"np": np, "x": x})
    return a, eval(op, {"np": np, "a": a})


def _program(setup: str, op: str):
    def f(x):
        a, r = _make(setup, op, x)
        r += 100.0  # through a view into a; into a copy only; a scalar rebinds
        a *= 2.0  # and back: a view sees it
        return a, r

    return f


def test_view_table_parses_every_row():
    assert len(ROWS) >= 40
    assert {k for _, _, k in ROWS} == set(KINDS)


@pytest.mark.parametrize("setup,op,kind", ROWS, ids=[f"{s} -> {o}" for s, o, _ in ROWS])
def test_view_table_row_is_numpy_and_gradc_matches(setup, op, kind):
    a, r = _make(setup, op, X.copy())
    assert np.shares_memory(a, r) == kind.startswith("view"), "the doc disagrees with NumPy"
    assert isinstance(r, np.generic) == kind.endswith("scalar)")
    f = _program(setup, op)
    if kind == "view (read-only)":
        assert not r.flags.writeable
        for run in (f, jit(f, backend="interpret")):
            with pytest.raises(ValueError, match="read-only"):
                run(X.copy())
        return
    want = f(X.copy())
    got = jit(f, backend="interpret")(X.copy())
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, w)

    def loss(x):
        a, r = f(x)
        return np.sum(a * a) * 0.01 + np.sum(r * r) * 0.01

    x = np.linspace(-1.0, 1.0, 24).reshape(4, 6)
    value, g = value_and_grad(loss, backend="interpret")(x)
    np.testing.assert_allclose(value, loss(x.copy()), rtol=1e-6)
    if "float32" not in setup + op:  # float32 is too coarse for finite differences
        np.testing.assert_allclose(g, fd_grad_typed(loss, [x], 0), rtol=1e-5, atol=1e-5)
