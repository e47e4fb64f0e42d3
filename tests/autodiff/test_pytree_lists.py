"""Lists and tuples of arrays nested in dicts are pytrees everywhere; a Python list of traced
values used where NumPy expects an array is made an array, as NumPy does."""

from __future__ import annotations

import numpy as np

from compiler import grad
from tests.helpers import fd_grad

R = np.random.default_rng(91)


def _loss(p, x):
    h = x
    for w, b in p["layers"]:
        h = np.tanh(h @ w + b)
    return np.sum(h) * p["scale"][0] + np.sum(p["extra"]["v"] @ [p["scale"][1], 2.0])


def test_pytree_lists_tuples_in_dicts_gradients_keep_structure_and_match_fd():
    p = {
        "layers": [
            (R.normal(size=(3, 4)), R.normal(size=4)),
            (R.normal(size=(4, 2)), R.normal(size=2)),
        ],
        "scale": [1.5, 0.5],
        "extra": {"v": R.normal(size=(3, 2))},
    }
    x = R.normal(size=(5, 3))
    g = grad(_loss, backend="interpret")(p, x)
    assert isinstance(g["layers"], list) and isinstance(g["layers"][0], tuple)
    assert isinstance(g["scale"], list) and isinstance(g["scale"][0], float)
    for i, (w, b) in enumerate(p["layers"]):
        for j, leaf in enumerate((w, b)):

            def f(v, i=i, j=j):
                q = {**p, "layers": [list(t) for t in p["layers"]]}
                q["layers"][i][j] = v
                return _loss(q, x)

            np.testing.assert_allclose(g["layers"][i][j], fd_grad(f, [leaf], 0), rtol=1e-6)


def test_pytree_python_list_argument_used_as_an_array():
    def f(v):
        return np.sum(np.asarray(v) ** 2) + v @ np.ones(3) + np.mean(v)

    g = grad(f, backend="interpret")([1.0, 2.0, 3.0])
    np.testing.assert_allclose(g, [2 + 1 + 1 / 3, 4 + 1 + 1 / 3, 6 + 1 + 1 / 3], rtol=1e-12)
    assert isinstance(g, list)
