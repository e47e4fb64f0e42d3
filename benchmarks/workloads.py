"""Benchmark workloads: one loss, written four ways.

Each workload has

- ``make(rng, dtype, **sizes) -> (params, data)``: ``params`` is the pytree that is differentiated
  (argument 0), ``data`` a tuple of further arguments that are not;
- ``loss(params, *data)``: plain NumPy, as a user would write it; this is what gradc traces;
- ``numpy_vg(params, *data) -> (value, grads)``: hand-written backpropagation (the textbook
  recurrences, no autodiff), written the way an expert would write it in plain NumPy;
- ``jax_loss()`` / ``torch_loss()``: the same loss in JAX / PyTorch, built on first request,
  ``None`` when the library does not import.

Only the ops the gradc tracer is meant to cover appear in the plain-NumPy losses.

Decisions worth knowing:

- ``mlp`` takes its labels as a one-hot float matrix ``Y`` (same dtype as the params) passed as
  data, so the cross-entropy is ``-sum(Y * log_softmax(z)) / n``: elementwise and a reduction,
  no integer gather. The hand-written gradient ``(softmax(z) - Y) / n`` relies on rows of ``Y``
  summing to one, which ``make`` guarantees.
- ``rnn`` takes its initial state ``h0`` (zeros) as data and reads the final state with MSE
  against a target.
- ``logreg`` keeps ``b`` as a shape-(1,) array and starts from a non-zero ``w`` so that no
  logit is exactly zero (where ``max`` and ``abs`` have kinks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# ---------------------------------------------------------------------------------------------
# pytree helpers (dict / list / tuple; dict keys in sorted order)


def tree_flatten(tree: Any) -> tuple[list[Any], Any]:
    """Leaves in a fixed order, and a spec that ``tree_unflatten`` rebuilds the tree from."""
    if isinstance(tree, dict):
        keys = sorted(tree)
        leaves, specs = [], []
        for k in keys:
            sub, spec = tree_flatten(tree[k])
            leaves += sub
            specs.append(spec)
        return leaves, ("dict", keys, specs)
    if isinstance(tree, (list, tuple)):
        leaves, specs = [], []
        for item in tree:
            sub, spec = tree_flatten(item)
            leaves += sub
            specs.append(spec)
        return leaves, (type(tree).__name__, None, specs)
    return [tree], None


def tree_unflatten(spec: Any, leaves: list[Any]) -> Any:
    it = iter(leaves)

    def build(s):
        if s is None:
            return next(it)
        kind, keys, specs = s
        items = [build(sub) for sub in specs]
        if kind == "dict":
            return dict(zip(keys, items))
        return tuple(items) if kind == "tuple" else list(items)

    return build(spec)


# ---------------------------------------------------------------------------------------------
# the workload record


@dataclass
class Workload:
    name: str
    make: Callable[..., tuple[Any, tuple]]
    loss: Callable[..., Any]
    numpy_vg: Callable[..., tuple[Any, Any]]
    build_jax: Callable[[], Callable] | None = None
    build_torch: Callable[[], Callable] | None = None
    dtype: Any = np.float64
    small: dict = field(default_factory=dict)  # sizes for the finite-difference check
    description: str = ""
    gradc_options: dict = field(default_factory=dict)  # extra value_and_grad options (memory)
    _built: dict = field(default_factory=dict, repr=False)

    def _lazy(self, key, builder):
        if key not in self._built:
            try:
                self._built[key] = builder() if builder is not None else None
            except ImportError:
                self._built[key] = None
        return self._built[key]

    def jax_loss(self) -> Callable | None:
        return self._lazy("jax", self.build_jax)

    def torch_loss(self) -> Callable | None:
        return self._lazy("torch", self.build_torch)


# ---------------------------------------------------------------------------------------------
# seed: L = (w*x + b - y)**2 on Python floats (per-call overhead)


def seed_make(rng, dtype=np.float64):
    return (2.0, 3.0, 1.0, 4.0), ()


def seed_loss(params):
    w, x, b, y = params
    return (w * x + b - y) ** 2


def seed_numpy_vg(params):
    w, x, b, y = params
    r = w * x + b - y
    g = 2.0 * r
    return r * r, (g * x, g * w, g, -g)


def seed_jax():
    def loss(params):
        w, x, b, y = params
        return (w * x + b - y) ** 2

    return loss


def seed_torch():
    return seed_loss  # operators only; works on tensors as written


# ---------------------------------------------------------------------------------------------
# mlp: tanh MLP with softmax cross-entropy (one-hot labels)


def mlp_make(rng, dtype=np.float64, batch=256, sizes=(784, 1024, 1024, 10)):
    params = {}
    for k, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{k}"] = (rng.standard_normal((m, n)) / np.sqrt(m)).astype(dtype)
        params[f"b{k}"] = (0.1 * rng.standard_normal(n)).astype(dtype)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    labels = rng.integers(0, sizes[-1], size=batch)
    Y = np.zeros((batch, sizes[-1]), dtype=dtype)
    Y[np.arange(batch), labels] = 1
    return params, (x, Y)


def mlp_loss(p, x, Y):
    h1 = np.tanh(x @ p["W1"] + p["b1"])
    h2 = np.tanh(h1 @ p["W2"] + p["b2"])
    z = h2 @ p["W3"] + p["b3"]
    s = z - np.max(z, axis=1, keepdims=True)
    logp = s - np.log(np.sum(np.exp(s), axis=1, keepdims=True))
    return -np.sum(Y * logp) / x.shape[0]


def mlp_numpy_vg(p, x, Y):
    n = x.shape[0]
    W1, b1, W2, b2, W3, b3 = p["W1"], p["b1"], p["W2"], p["b2"], p["W3"], p["b3"]
    # forward; a1, a2 hold the activations and are later overwritten with tanh' = 1 - a**2
    a1 = x @ W1
    a1 += b1
    np.tanh(a1, out=a1)
    a2 = a1 @ W2
    a2 += b2
    np.tanh(a2, out=a2)
    z = a2 @ W3
    z += b3
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    se = e.sum(axis=1, keepdims=True)
    value = np.sum(Y * (np.log(se) - z)) / n
    # backward
    dz = e
    dz /= se
    dz -= Y
    dz /= n
    gW3 = a2.T @ dz
    gb3 = dz.sum(axis=0)
    d2 = dz @ W3.T
    np.multiply(a2, a2, out=a2)
    np.subtract(1, a2, out=a2)
    d2 *= a2
    gW2 = a1.T @ d2
    gb2 = d2.sum(axis=0)
    d1 = d2 @ W2.T
    np.multiply(a1, a1, out=a1)
    np.subtract(1, a1, out=a1)
    d1 *= a1
    gW1 = x.T @ d1
    gb1 = d1.sum(axis=0)
    grads = {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2, "W3": gW3, "b3": gb3}
    return value, grads


def mlp_jax():
    import jax
    import jax.numpy as jnp

    def loss(p, x, Y):
        h1 = jnp.tanh(x @ p["W1"] + p["b1"])
        h2 = jnp.tanh(h1 @ p["W2"] + p["b2"])
        z = h2 @ p["W3"] + p["b3"]
        return -jnp.sum(Y * jax.nn.log_softmax(z, axis=1)) / x.shape[0]

    return loss


def mlp_torch():
    import torch

    def loss(p, x, Y):
        h1 = torch.tanh(x @ p["W1"] + p["b1"])
        h2 = torch.tanh(h1 @ p["W2"] + p["b2"])
        z = h2 @ p["W3"] + p["b3"]
        return -torch.sum(Y * torch.log_softmax(z, dim=1)) / x.shape[0]

    return loss


# ---------------------------------------------------------------------------------------------
# chain: a long elementwise chain with transcendentals, summed


def vector_make(rng, dtype=np.float64, n=2**22):
    return rng.uniform(-2.0, 2.0, size=n).astype(dtype), ()


def chain_loss(x):
    a = np.tanh(x)
    g = np.exp(-0.5 * x * x)
    c = np.log1p(x * x)
    s = np.sin(x)
    e = a * g + c * s
    f = e / (1.0 + g)
    return np.sum(f * f + 0.1 * a)


def chain_numpy_vg(x):
    a = np.tanh(x)
    x2 = x * x
    g = np.exp(-0.5 * x2)
    c = np.log1p(x2)
    s = np.sin(x)
    q = 1.0 + g
    f = a * g
    f += c * s
    f /= q
    value = np.sum(f * f) + 0.1 * np.sum(a)
    # backward: ge = dL/de = 2 f / q;  dL/dg = ge * a + dL/dq = ge * (a - f)
    ge = f / q
    ge *= 2.0
    gg = a - f
    gg *= ge
    ga = ge * g
    ga += 0.1
    # dL/dx = ga tanh' + gg g' + (ge s) log1p' + (ge c) sin'
    gx = ga
    gx *= 1.0 - a * a
    gg *= g
    gg *= x
    gx -= gg
    gx += (ge * s) * (2.0 * x / (1.0 + x2))
    gx += (ge * c) * np.cos(x)
    return value, gx


def chain_jax():
    import jax.numpy as jnp

    def loss(x):
        a = jnp.tanh(x)
        g = jnp.exp(-0.5 * x * x)
        c = jnp.log1p(x * x)
        e = a * g + c * jnp.sin(x)
        f = e / (1.0 + g)
        return jnp.sum(f * f + 0.1 * a)

    return loss


def chain_torch():
    import torch

    def loss(x):
        a = torch.tanh(x)
        g = torch.exp(-0.5 * x * x)
        c = torch.log1p(x * x)
        e = a * g + c * torch.sin(x)
        f = e / (1.0 + g)
        return torch.sum(f * f + 0.1 * a)

    return loss


# ---------------------------------------------------------------------------------------------
# arith: a long elementwise chain of arithmetic only, summed (memory-bound)


def arith_loss(x):
    a = 1.5 * x + 0.5
    b = a * x - 0.25
    c = np.square(b) + x
    d = c / (1.0 + a * a)
    e = 0.75 * d - b * x
    return np.sum(e * e)


def arith_numpy_vg(x):
    a = 1.5 * x
    a += 0.5
    b = a * x
    b -= 0.25
    c = b * b
    c += x
    q = a * a
    q += 1.0
    d = c / q
    e = 0.75 * d
    e -= b * x
    value = np.dot(e, e)
    # backward
    ge = e
    ge *= 2.0  # e is dead
    gd = 0.75 * ge
    gc = gd / q
    gq = gc * d  # gq = -gd * d / q; sign folded into its use below
    gb = 2.0 * b * gc
    gb -= x * ge
    gx = gc  # gc is dead
    gx -= b * ge
    ga = x * gb
    ga -= 2.0 * a * gq
    gx += a * gb
    gx += 1.5 * ga
    return value, gx


def arith_jax():
    import jax.numpy as jnp

    def loss(x):
        a = 1.5 * x + 0.5
        b = a * x - 0.25
        c = jnp.square(b) + x
        d = c / (1.0 + a * a)
        e = 0.75 * d - b * x
        return jnp.sum(e * e)

    return loss


def arith_torch():
    import torch

    def loss(x):
        a = 1.5 * x + 0.5
        b = a * x - 0.25
        c = torch.square(b) + x
        d = c / (1.0 + a * a)
        e = 0.75 * d - b * x
        return torch.sum(e * e)

    return loss


# ---------------------------------------------------------------------------------------------
# deep: residual tanh stack, MSE loss


def deep_make(rng, dtype=np.float64, depth=64, width=256, batch=64):
    scale = 0.1 / np.sqrt(width)  # keeps the residual stream near unit scale
    params = [
        (
            (scale * rng.standard_normal((width, width))).astype(dtype),
            (0.01 * rng.standard_normal(width)).astype(dtype),
        )
        for _ in range(depth)
    ]
    x = rng.standard_normal((batch, width)).astype(dtype)
    target = rng.standard_normal((batch, width)).astype(dtype)
    return params, (x, target)


def deep_loss(params, x, target):
    h = x
    for W, b in params:
        h = h + np.tanh(h @ W + b)
    return np.mean((h - target) ** 2)


def deep_numpy_vg(params, x, target):
    depth = len(params)
    hs = [x]  # layer inputs
    ts = []  # tanh outputs
    h = x
    for W, b in params:
        t = h @ W
        t += b
        np.tanh(t, out=t)
        ts.append(t)
        h = h + t
        hs.append(h)
    r = h - target
    value = np.mean(r * r)
    dh = r
    dh *= 2.0 / r.size
    grads = [None] * depth
    for k in range(depth - 1, -1, -1):
        W = params[k][0]
        dz = ts[k]
        np.multiply(dz, dz, out=dz)
        np.subtract(1, dz, out=dz)
        dz *= dh
        grads[k] = (hs[k].T @ dz, dz.sum(axis=0))
        dh += dz @ W.T
    return value, grads


def deep_jax():
    import jax.numpy as jnp

    def loss(params, x, target):
        h = x
        for W, b in params:
            h = h + jnp.tanh(h @ W + b)
        return jnp.mean((h - target) ** 2)

    return loss


def deep_torch():
    import torch

    def loss(params, x, target):
        h = x
        for W, b in params:
            h = h + torch.tanh(h @ W + b)
        return torch.mean((h - target) ** 2)

    return loss


# ---------------------------------------------------------------------------------------------
# rnn: tanh RNN unrolled with a Python loop, MSE of the final state (BPTT)


def rnn_make(rng, dtype=np.float64, steps=100, batch=32, n_in=32, hidden=128):
    params = {
        "Wx": (rng.standard_normal((n_in, hidden)) / np.sqrt(n_in)).astype(dtype),
        "Wh": (0.9 * rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(dtype),
        "b": (0.1 * rng.standard_normal(hidden)).astype(dtype),
    }
    xs = rng.standard_normal((steps, batch, n_in)).astype(dtype)
    h0 = np.zeros((batch, hidden), dtype=dtype)
    target = (0.5 * rng.standard_normal((batch, hidden))).astype(dtype)
    return params, (xs, h0, target)


def rnn_loss(p, xs, h0, target):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ p["Wx"] + h @ p["Wh"] + p["b"])
    return np.mean((h - target) ** 2)


def rnn_numpy_vg(p, xs, h0, target):
    Wx, Wh, b = p["Wx"], p["Wh"], p["b"]
    steps, batch, n_in = xs.shape
    hidden = Wh.shape[0]
    # all input projections in one GEMM; hs[t] is the state before step t
    hs = np.empty((steps + 1, batch, hidden), dtype=h0.dtype)
    hs[0] = h0
    zx = (xs.reshape(steps * batch, n_in) @ Wx).reshape(steps, batch, hidden)
    zx += b
    for t in range(steps):
        z = hs[t] @ Wh
        z += zx[t]
        np.tanh(z, out=hs[t + 1])
    r = hs[steps] - target
    value = np.mean(r * r)
    # BPTT: dz[t] = dh_t * (1 - h_{t+1}**2); dh_{t-1} = dz[t] @ Wh.T
    dz = zx  # reuse the projection buffer
    dh = r
    dh *= 2.0 / r.size
    for t in range(steps - 1, -1, -1):
        np.multiply(hs[t + 1], hs[t + 1], out=dz[t])
        np.subtract(1, dz[t], out=dz[t])
        dz[t] *= dh
        dh = dz[t] @ Wh.T
    dz2 = dz.reshape(steps * batch, hidden)
    grads = {
        "Wx": xs.reshape(steps * batch, n_in).T @ dz2,
        "Wh": hs[:steps].reshape(steps * batch, hidden).T @ dz2,
        "b": dz2.sum(axis=0),
    }
    return value, grads


def rnn_jax():
    import jax.numpy as jnp

    def loss(p, xs, h0, target):
        h = h0
        for t in range(xs.shape[0]):
            h = jnp.tanh(xs[t] @ p["Wx"] + h @ p["Wh"] + p["b"])
        return jnp.mean((h - target) ** 2)

    return loss


def rnn_torch():
    import torch

    def loss(p, xs, h0, target):
        h = h0
        for t in range(xs.shape[0]):
            h = torch.tanh(xs[t] @ p["Wx"] + h @ p["Wh"] + p["b"])
        return torch.mean((h - target) ** 2)

    return loss


# ---------------------------------------------------------------------------------------------
# logreg: logistic regression NLL + L2, stable softplus form

LOGREG_L2 = 1e-3


def logreg_make(rng, dtype=np.float64, n=10000, d=50):
    params = {
        "w": (0.1 * rng.standard_normal(d)).astype(dtype),
        "b": np.array([0.05], dtype=dtype),
    }
    X = rng.standard_normal((n, d)).astype(dtype)
    w_true = rng.standard_normal(d)
    y = (X @ w_true + 0.5 * rng.standard_normal(n) > 0).astype(dtype)
    return params, (X, y)


def logreg_loss(p, X, y):
    z = X @ p["w"] + p["b"]
    softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    return np.mean(softplus - y * z) + 0.5 * LOGREG_L2 * np.sum(p["w"] * p["w"])


def logreg_numpy_vg(p, X, y):
    w, b = p["w"], p["b"]
    n = X.shape[0]
    z = X @ w
    z += b
    e = np.exp(-np.abs(z))
    value = (np.sum(np.maximum(z, 0.0)) + np.sum(np.log1p(e)) - y @ z) / n
    value += 0.5 * LOGREG_L2 * (w @ w)
    # sigmoid(z) without overflow: 1/(1+e) for z >= 0, e/(1+e) for z < 0
    sig = np.where(z >= 0, 1.0, e)
    sig /= 1.0 + e
    dz = sig
    dz -= y
    dz /= n
    gw = X.T @ dz
    gw += LOGREG_L2 * w
    return value, {"w": gw, "b": np.sum(dz, keepdims=True)}


def logreg_jax():
    import jax.numpy as jnp

    def loss(p, X, y):
        z = X @ p["w"] + p["b"]
        softplus = jnp.logaddexp(z, 0.0)
        return jnp.mean(softplus - y * z) + 0.5 * LOGREG_L2 * jnp.sum(p["w"] * p["w"])

    return loss


def logreg_torch():
    import torch

    def loss(p, X, y):
        z = X @ p["w"] + p["b"]
        softplus = torch.nn.functional.softplus(z)
        return torch.mean(softplus - y * z) + 0.5 * LOGREG_L2 * torch.sum(p["w"] * p["w"])

    return loss


# ---------------------------------------------------------------------------------------------
# registry


def _workloads() -> dict[str, Workload]:
    ws = [
        Workload(
            "seed",
            seed_make,
            seed_loss,
            seed_numpy_vg,
            seed_jax,
            seed_torch,
            description="(w*x + b - y)**2 on Python floats: per-call overhead",
        ),
        Workload(
            "mlp",
            mlp_make,
            mlp_loss,
            mlp_numpy_vg,
            mlp_jax,
            mlp_torch,
            small={"batch": 5, "sizes": (7, 6, 5, 4)},
            description="784-1024-1024-10 tanh MLP, batch 256, softmax cross-entropy",
        ),
        Workload(
            "mlp-f32",
            mlp_make,
            mlp_loss,
            mlp_numpy_vg,
            mlp_jax,
            mlp_torch,
            dtype=np.float32,
            small={"batch": 5, "sizes": (7, 6, 5, 4)},
            description="the mlp workload in float32",
        ),
        Workload(
            "chain",
            vector_make,
            chain_loss,
            chain_numpy_vg,
            chain_jax,
            chain_torch,
            small={"n": 64},
            description="2**22 elements, elementwise chain with transcendentals, summed",
        ),
        Workload(
            "chain-f32",
            vector_make,
            chain_loss,
            chain_numpy_vg,
            chain_jax,
            chain_torch,
            dtype=np.float32,
            small={"n": 64},
            description="the chain workload in float32",
        ),
        Workload(
            "arith",
            vector_make,
            arith_loss,
            arith_numpy_vg,
            arith_jax,
            arith_torch,
            small={"n": 64},
            description="2**22 elements, arithmetic-only elementwise chain, summed",
        ),
        Workload(
            "deep",
            deep_make,
            deep_loss,
            deep_numpy_vg,
            deep_jax,
            deep_torch,
            small={"depth": 4, "width": 6, "batch": 3},
            description="64 residual tanh layers, width 256, batch 64, MSE",
        ),
        Workload(
            "deep-sqrt",
            deep_make,
            deep_loss,
            deep_numpy_vg,
            deep_jax,
            deep_torch,
            small={"depth": 4, "width": 6, "batch": 3},
            description="the deep workload with gradc's memory='sqrt' (checkpointed segments)",
            gradc_options={"memory": "sqrt"},
        ),
        Workload(
            "rnn",
            rnn_make,
            rnn_loss,
            rnn_numpy_vg,
            rnn_jax,
            rnn_torch,
            small={"steps": 5, "batch": 3, "n_in": 4, "hidden": 6},
            description="tanh RNN, hidden 128, input 32, 100 steps, batch 32, BPTT",
        ),
        Workload(
            "logreg",
            logreg_make,
            logreg_loss,
            logreg_numpy_vg,
            logreg_jax,
            logreg_torch,
            small={"n": 40, "d": 5},
            description="logistic regression NLL + L2, n=10000, d=50",
        ),
    ]
    return {w.name: w for w in ws}


WORKLOADS: dict[str, Workload] = _workloads()
