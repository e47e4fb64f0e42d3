"""Transformed functions pickle as the user's function plus options (compiled code stays
behind and is rebuilt), and a shipped loss is loaded once per process."""

from __future__ import annotations

import pickle

import cloudpickle
import numpy as np
import pytest

from compiler import grad, jit, value_and_grad
from compiler.distributed.shipping import Options, ship, worker_stats

R = np.random.default_rng(5)


def cube(x, y):
    return np.sum(x**3 * y)


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_shipping_transform_round_trip(dumps):
    f = value_and_grad(cube, argnums=(0, 1), backend="interpret", disable=("cse",))
    x, y = R.standard_normal(4), R.standard_normal(4)
    want = f(x, y)  # compiled (traced) before pickling: the cache must not travel
    g = pickle.loads(dumps(f))
    assert g is not f and g.fun is cube and g._cache == {}
    assert (g.mode, g.argnums, g.single, g.backend) == (
        "value_and_grad",
        (0, 1),
        False,
        "interpret",
    )
    assert "cse" in g.disable
    value, (gx, gy) = g(x, y)
    np.testing.assert_allclose(value, want[0], rtol=1e-15)
    np.testing.assert_allclose(gx, 3 * x**2 * y, rtol=1e-13)
    np.testing.assert_allclose(gy, x**3, rtol=1e-13)


def test_shipping_closure_over_a_transform_pickles():
    # a loss that calls another gradc transform (nested) travels with cloudpickle
    inner = grad(lambda x: np.sum(np.sin(x)), backend="interpret")
    scale = jit(lambda x: 2.0 * x, backend="interpret")

    def loss(x):
        return np.sum(inner(x) * scale(x))

    x = R.standard_normal(3)
    back = cloudpickle.loads(cloudpickle.dumps(value_and_grad(loss, backend="interpret")))
    value, g = back(x)
    np.testing.assert_allclose(value, np.sum(np.cos(x) * 2 * x), rtol=1e-13)
    np.testing.assert_allclose(g, 2 * np.cos(x) - 2 * x * np.sin(x), rtol=1e-12)


def test_shipping_loads_once_per_process_and_token_is_content():
    opts = Options(0, "interpret", ("cse",), None, None)  # options no other test uses
    a = ship(cube, opts)
    b = ship(cube, opts)
    assert a.token == b.token  # the same function and options: one worker cache entry
    assert ship(cube, Options(1, "interpret", ("cse",), None, None)).token != a.token
    remote = pickle.loads(pickle.dumps(a))
    before = worker_stats()["loaded"]
    t1 = remote.transform()
    t2 = pickle.loads(pickle.dumps(a)).transform()
    assert t1 is t2 and worker_stats()["loaded"] - before == 1
    x, y = R.standard_normal(3), R.standard_normal(3)
    np.testing.assert_allclose(t1(x, y)[1], 3 * x**2 * y, rtol=1e-13)


def test_shipping_large_closure_warns():
    big = np.zeros(3 * 2**20)  # 24 MiB captured by accident

    def loss(w):
        return np.sum(w * big[:3])

    with pytest.warns(UserWarning, match=r"pickles to 24 MiB.*pass big arrays as arguments"):
        ship(loss, Options(0, "interpret", (), None, None))
