"""Shape functions as user code calls them: values equal NumPy's, gradients equal finite
differences; writes into their results follow NumPy's copy/view rules."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import jit, trace
from compiler.interpret import interpret
from tests.helpers import assert_tree_matches, check_value_and_grad

A = np.random.default_rng(51).normal(size=(3, 4))

CASES = {
    "tril": lambda a: np.tril(a) + np.tril(a, -1) + np.tril(a, 1),
    "triu": lambda a: np.triu(a, 1) + np.triu(a),
    "tril_batch": lambda a: np.tril(np.stack([a, 2 * a])),
    "flip": lambda a: np.flip(a),
    "flip_axis": lambda a: np.flip(a, axis=1) + np.fliplr(a) + np.flipud(a),
    "roll": lambda a: np.roll(a, 2),
    "roll_axes": lambda a: np.roll(a, (1, -1), axis=(0, 1)),
    "tile": lambda a: np.tile(a, (2, 1, 3)),
    "tile_int": lambda a: np.tile(a[0], 2),
    "repeat": lambda a: np.repeat(a, 2, axis=1),
    "repeat_flat": lambda a: a.repeat(2),
    "repeat_array": lambda a: np.repeat(a, [1, 0, 2], axis=0),
    "pad": lambda a: np.pad(a, ((1, 2), (0, 1)), constant_values=0.5),
    "pad_int": lambda a: np.pad(a, 1),
    "split": lambda a: np.split(a, 2, axis=1),
    "split_points": lambda a: np.split(a, [1, 3], axis=1),
    "array_split": lambda a: np.array_split(a, 3, axis=1),
    "moveaxis": lambda a: np.moveaxis(a[None], 0, -1),
    "moveaxis_many": lambda a: np.moveaxis(a[None], [0, 1], [-1, 0]),
    "meshgrid": lambda a: np.meshgrid(a[0], a[1, :3]),
    "meshgrid_ij": lambda a: np.meshgrid(a[0], a[1, :3], a[2, :2], indexing="ij"),
    "meshgrid_sparse": lambda a: np.meshgrid(a[0], a[1], sparse=True),
    "stacks": lambda a: (np.hstack([a[0], a[1]]), np.vstack([a[0], a[1]]), np.stack([a, a], 2)),
    "column_dstack": lambda a: (np.column_stack([a[0], a[1]]), np.dstack([a, a])),
    "atleast": lambda a: (np.atleast_2d(a[0]), np.atleast_3d(a), np.atleast_1d(a[0, 0])),
    "squeeze_expand": lambda a: np.squeeze(np.expand_dims(a, (0, 2)), 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shapes_value_and_gradient(name):
    f = CASES[name]
    check_value_and_grad(f, A)


def _write_into_results(a):
    t = np.tile(a, 2)
    t[0, 0] = 5.0  # a new array: a is unchanged
    m = np.meshgrid(a[0], a[1])[0]
    m[0, 0] = 7.0
    s = np.split(a, 2, axis=1)[0]
    s[...] = 1.0  # a view: writes reach a
    return t, m, a


def test_shapes_copies_and_views_follow_numpy():
    assert_tree_matches(interpret(trace(_write_into_results, A), A), _write_into_results(A.copy()))


def test_shapes_compiled_tile_pad_roll_match_numpy():
    def f(a):
        return np.sum(np.tile(a, (1, 2)) * np.pad(np.roll(a, 1, axis=1), ((0, 0), (2, 2))))

    np.testing.assert_allclose(jit(f, backend="numba")(A), f(A), rtol=1e-12)
