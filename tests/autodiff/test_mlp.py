"""A 3-layer tanh MLP with softmax cross-entropy, against textbook backpropagation written
by hand in NumPy (row-major batch: z = a_prev @ W + b)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import grad, value_and_grad

SIZES = [5, 7, 6, 3]  # input, two hidden tanh layers, logits
N = 8


def _params(rng, dtype=np.float64):
    return {
        f"layer{k}": {
            "W": (rng.normal(size=(m, n)) / np.sqrt(m)).astype(dtype),
            "b": (0.1 * rng.normal(size=(n,))).astype(dtype),
        }
        for k, (m, n) in enumerate(zip(SIZES[:-1], SIZES[1:]))
    }


def _data(rng, dtype=np.float64):
    x = rng.normal(size=(N, SIZES[0])).astype(dtype)
    labels = rng.integers(0, SIZES[-1], size=N)
    onehot = np.eye(SIZES[-1], dtype=dtype)[labels]
    return x, onehot


def loss(params, x, onehot):
    """Mean softmax cross-entropy of a tanh MLP; the last layer gives logits."""
    a = x
    layers = [params[f"layer{k}"] for k in range(len(SIZES) - 1)]
    for layer in layers[:-1]:
        a = np.tanh(a @ layer["W"] + layer["b"])
    z = a @ layers[-1]["W"] + layers[-1]["b"]
    z = z - z.max(axis=1, keepdims=True)  # stable log-softmax; its gradient cancels
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(onehot * logp) / x.shape[0]


def backprop(params, x, onehot):
    """The textbook recurrences: d_z = delta * sigma'(z), grad_W = a_prev^T d_z,
    grad_b = sum d_z, delta_prev = d_z W^T."""
    n_layers = len(SIZES) - 1
    acts, zs = [x], []
    for k in range(n_layers):
        layer = params[f"layer{k}"]
        z = acts[-1] @ layer["W"] + layer["b"]
        zs.append(z)
        acts.append(np.tanh(z) if k < n_layers - 1 else z)
    z = acts[-1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    value = -np.sum(onehot * np.log(p)) / x.shape[0]
    delta = (p - onehot) / x.shape[0]  # dL/d logits
    grads = {}
    for k in reversed(range(n_layers)):
        sigma_prime = 1.0 - np.tanh(zs[k]) ** 2 if k < n_layers - 1 else 1.0
        d_z = delta * sigma_prime
        grads[f"layer{k}"] = {"W": acts[k].T @ d_z, "b": d_z.sum(axis=0)}
        delta = d_z @ params[f"layer{k}"]["W"].T
    return value, grads, delta  # delta is now dL/dx


def test_mlp_grad_matches_hand_written_backprop(backend):
    rng = np.random.default_rng(0)
    params = _params(rng)
    x, onehot = _data(rng)
    value, grads = value_and_grad(loss, backend=backend)(params, x, onehot)
    want_value, want, _ = backprop(params, x, onehot)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    assert set(grads) == set(want)
    for name in want:
        for p in ("W", "b"):
            g = grads[name][p]
            assert g.shape == params[name][p].shape and g.dtype == np.float64
            np.testing.assert_allclose(g, want[name][p], rtol=1e-10, atol=1e-13, err_msg=name + p)


def test_mlp_input_gradient_matches_backprop_delta(backend):
    rng = np.random.default_rng(1)
    params = _params(rng)
    x, onehot = _data(rng)
    gx = grad(loss, argnums=1, backend=backend)(params, x, onehot)
    _, _, delta = backprop(params, x, onehot)
    np.testing.assert_allclose(gx, delta, rtol=1e-10, atol=1e-13)


def test_mlp_float32_grads_are_float32_and_close(backend):
    rng = np.random.default_rng(2)
    params = _params(rng, np.float32)
    x, onehot = _data(rng, np.float32)
    value, grads = value_and_grad(loss, backend=backend)(params, x, onehot)
    assert np.asarray(value).dtype == np.float32
    p64 = {k: {n: a.astype(np.float64) for n, a in v.items()} for k, v in params.items()}
    _, want, _ = backprop(p64, x.astype(np.float64), onehot.astype(np.float64))
    for name in want:
        for p in ("W", "b"):
            assert grads[name][p].dtype == np.float32
            np.testing.assert_allclose(grads[name][p], want[name][p], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("seed", [3, 4])
def test_mlp_gradient_step_decreases_loss(seed, backend):
    rng = np.random.default_rng(seed)
    params = _params(rng)
    x, onehot = _data(rng)
    vg = value_and_grad(loss, backend=backend)
    before, g = vg(params, x, onehot)
    stepped = {k: {n: a - 0.1 * g[k][n] for n, a in v.items()} for k, v in params.items()}
    after, _ = vg(stepped, x, onehot)  # second call: same signature, cached graph
    assert after < before
    np.testing.assert_allclose(after, loss(stepped, x, onehot), rtol=1e-12)
