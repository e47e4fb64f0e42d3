"""Five realistic programs, end to end through the compiled pipeline, against finite
differences: a Gaussian-process marginal likelihood, a layer-normalized MLP with a
logsumexp cross-entropy, an einsum bilinear model, a trimmed-mean (sorted) loss, and
dropout with a generator in the closure."""

from __future__ import annotations

import copy

import numpy as np
import scipy.linalg
from scipy.special import logsumexp

from compiler import grad, value_and_grad
from tests.helpers import fd_grad

R = np.random.default_rng(101)


# -- Gaussian process negative log marginal likelihood --------------------------------------------

GP_X, GP_Y = R.normal(size=(8, 2)), R.normal(size=8)


def gp_nlml(log_params):
    ell, sf, sn = np.exp(log_params)
    d = GP_X[:, None, :] - GP_X[None, :, :]
    k = sf**2 * np.exp(-0.5 * np.sum(d**2, axis=-1) / ell**2) + (sn**2 + 1e-6) * np.eye(8)
    chol = np.linalg.cholesky(k)
    alpha = scipy.linalg.cho_solve((chol, True), GP_Y)
    n = GP_Y.shape[0]
    return 0.5 * GP_Y @ alpha + np.sum(np.log(np.diag(chol))) + 0.5 * n * np.log(2 * np.pi)


def gp_nlml_slogdet(log_params):
    ell, sf, sn = np.exp(log_params)
    d = GP_X[:, None, :] - GP_X[None, :, :]
    k = sf**2 * np.exp(-0.5 * np.sum(d**2, axis=-1) / ell**2) + (sn**2 + 1e-6) * np.eye(8)
    _, logdet = np.linalg.slogdet(k)
    return 0.5 * GP_Y @ np.linalg.solve(k, GP_Y) + 0.5 * logdet + 4 * np.log(2 * np.pi)


def test_e2e_gaussian_process_nlml():
    p = np.array([0.2, 0.1, -1.0])
    v, g = value_and_grad(gp_nlml)(p)
    np.testing.assert_allclose(v, gp_nlml(p), rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(gp_nlml, [p], 0), rtol=1e-6, atol=1e-8)
    # the same quantity through slogdet and solve
    g2 = grad(gp_nlml_slogdet)(p)
    np.testing.assert_allclose(gp_nlml_slogdet(p), gp_nlml(p), rtol=1e-10)
    np.testing.assert_allclose(g2, g, rtol=1e-8)


# -- layer-normalized MLP, softmax cross-entropy through scipy.special.logsumexp ------------------

MLP_X, MLP_T = R.normal(size=(6, 5)), R.integers(0, 3, size=6)


def mlp_loss(params):
    h = MLP_X @ params["w1"] + params["b1"]
    mu = np.mean(h, axis=-1, keepdims=True)
    h = (h - mu) / np.sqrt(np.var(h, axis=-1, keepdims=True) + 1e-5) * params["g"]
    h = np.tanh(h)
    logits = h @ params["w2"]
    logp = logits - logsumexp(logits, axis=1, keepdims=True)
    return -np.mean(logp[np.arange(6), MLP_T])


def test_e2e_layernorm_mlp_cross_entropy():
    params = {
        "w1": R.normal(size=(5, 4)),
        "b1": R.normal(size=4),
        "g": R.uniform(0.5, 1.5, size=4),
        "w2": R.normal(size=(4, 3)),
    }
    v, g = value_and_grad(mlp_loss)(params)
    np.testing.assert_allclose(v, mlp_loss(params), rtol=1e-12)
    for k, leaf in params.items():

        def f(x, k=k):
            return mlp_loss({**params, k: x})

        np.testing.assert_allclose(g[k], fd_grad(f, [leaf], 0), rtol=1e-6, atol=1e-8)


# -- einsum bilinear model ------------------------------------------------------------------------

BI_U, BI_V, BI_Y = R.normal(size=(7, 3)), R.normal(size=(7, 4)), R.normal(size=7)


def bilinear_loss(w, b):
    pred = np.einsum("ni,ij,nj->n", BI_U, w, BI_V) + np.einsum("i,ni->n", b, BI_U)
    return np.mean((pred - BI_Y) ** 2) + 0.01 * np.einsum("ij,ij->", w, w)


def test_e2e_einsum_bilinear_model():
    w, b = R.normal(size=(3, 4)), R.normal(size=3)
    gw, gb = grad(bilinear_loss, argnums=(0, 1))(w, b)
    np.testing.assert_allclose(gw, fd_grad(bilinear_loss, [w, b], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, fd_grad(bilinear_loss, [w, b], 1), rtol=1e-6, atol=1e-8)


# -- trimmed-mean (sorted) regression loss --------------------------------------------------------

TM_X, TM_Y = R.normal(size=(12, 2)), R.normal(size=12)


def trimmed_loss(w):
    r = (TM_X @ w - TM_Y) ** 2
    return np.mean(np.sort(r)[: 12 - 3])  # drop the three largest residuals


def test_e2e_trimmed_mean_sorted_loss():
    w = np.array([0.3, -0.7])
    v, g = value_and_grad(trimmed_loss)(w)
    np.testing.assert_allclose(v, trimmed_loss(w), rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(trimmed_loss, [w], 0), rtol=1e-6, atol=1e-8)


# -- dropout with a generator in the closure -------------------------------------------------------

DO_X, DO_Y = R.normal(size=(5, 16)), R.normal(size=5)


def make_dropout_loss(rng):
    def loss(w):
        keep = rng.random(w.shape) > 0.3
        h = DO_X @ (np.where(keep, w, 0.0) / 0.7)
        return np.mean((h - DO_Y) ** 2)

    return loss


def test_e2e_dropout_generator_in_closure():
    rng = np.random.default_rng(5)
    ref = np.random.default_rng(5)
    vg = value_and_grad(make_dropout_loss(rng))
    w = R.normal(size=16)
    values = []
    for _ in range(3):
        state = copy.deepcopy(ref)
        want = make_dropout_loss(ref)(w)
        v, g = vg(w)
        values.append(v)
        np.testing.assert_allclose(v, want, rtol=1e-12)

        def frozen(x, s=state):
            return make_dropout_loss(copy.deepcopy(s))(x)

        np.testing.assert_allclose(g, fd_grad(frozen, [w], 0), rtol=1e-6, atol=1e-8)
    assert len(set(np.round(values, 12))) == 3  # a fresh mask on every call
