"""`batch_graph`: one run over a batch axis equals one run per batch element (the interpreter
is the oracle), for every op in the registry and each of its inputs; and ops without a rule
are refused, so Jacobians fall back to unrolled sweeps with the same numbers."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from compiler import jacfwd, jacrev, jit, stop_gradient, trace, verify
from compiler.autodiff.batch import NotBatchable, batch_graph
from compiler.interpret import run_graph
from compiler.ir.graph import Builder
from compiler.ir.types import TensorType
from compiler.primitives import OPS

B = 3


def _cases() -> list:
    out = []
    for name, op in sorted(OPS.items()):
        if op.samples is None:
            continue
        samples = op.samples(np.random.default_rng(zlib.crc32(name.encode())))
        for i, s in enumerate(samples):
            for k, a in enumerate(s.args):
                if np.asarray(a).dtype.kind in "fb":  # indices stay shared (never batched)
                    out.append(pytest.param(name, s, k, id=f"{name}-{i}-in{k}"))
    return out


@pytest.mark.parametrize("name,sample,k", _cases())
def test_batch_graph_every_op_equals_one_run_per_element(name, sample, k):
    args = [np.asarray(a) for a in sample.args]
    b = Builder()
    ins = [b.add_input(TensorType(a.shape, a.dtype)) for a in args]
    g = b.build([b.add(name, ins, sample.attrs)])
    batched = verify(batch_graph(g, [k], B))
    rng = np.random.default_rng(zlib.crc32(f"{name}{k}".encode()))
    a = args[k]
    if a.dtype == bool:
        stack = rng.random((B, *a.shape)) < 0.5
    else:  # perturb the sample (keeps its domain: positive stays positive)
        stack = np.stack([a * (1.0 + 0.1 * j) for j in range(B)]).astype(a.dtype)
    got = run_graph(batched, [stack if j == k else x for j, x in enumerate(args)])[0]
    for j in range(B):
        want = run_graph(g, [stack[j] if m == k else x for m, x in enumerate(args)])[0]
        np.testing.assert_allclose(got[j], want, rtol=1e-12, atol=1e-12, err_msg=f"element {j}")


def test_batch_graph_unbatched_outputs_are_broadcast_and_inputs_shared():
    b = Builder()
    x = b.add_input(TensorType((2,), np.dtype(np.float64)))
    w = b.add_input(TensorType((2, 3), np.dtype(np.float64)))
    g = b.build([b.add("matmul", [b.add("reshape", [x], {"shape": (1, 2)}), w], {}), w])
    batched = batch_graph(g, [0], 4)
    assert [v.shape for v in batched.inputs] == [(4, 2), (2, 3)]
    xs, wv = np.arange(8.0).reshape(4, 2), np.arange(6.0).reshape(2, 3)
    prod, w_out = run_graph(batched, [xs, wv])
    np.testing.assert_allclose(prod, (xs @ wv)[:, None, :])
    np.testing.assert_array_equal(w_out, np.broadcast_to(wv, (4, 2, 3)))


def test_batch_graph_refuses_an_op_without_a_rule():
    graph = trace(lambda x: stop_gradient(x) * 2.0, np.ones(3))  # a `custom` node
    with pytest.raises(NotBatchable, match="custom"):
        batch_graph(graph, [0], 2)


def test_jacobian_sweeps_are_one_batched_sweep_whose_size_does_not_grow_with_n():
    def f(x):
        return np.tanh(x * x.sum()) @ np.ones((x.shape[0], 2))

    sizes = [len(trace(jit(jacfwd(f)), np.ones(n)).nodes) for n in (2, 5, 9)]
    assert sizes[0] == sizes[1] == sizes[2]
    sizes = [len(trace(jit(jacrev(lambda x: np.tanh(x) * 2.0)), np.ones(n)).nodes) for n in (2, 7)]
    assert sizes[0] == sizes[1]


def test_jacobian_falls_back_to_unrolled_sweeps_with_the_same_numbers():
    from compiler import custom_jvp

    @custom_jvp
    def ident(t):
        return t

    ident.defjvp(lambda p, t: (ident(p[0]), t[0]))

    @custom_jvp
    def sq(x):
        return x * x

    @sq.defjvp
    def _(p, t):  # a custom call on the tangent: a `custom` node in the linear sweep
        return sq(p[0]), 2.0 * p[0] * ident(t[0])

    x = np.array([0.5, -1.5, 2.0])
    graph = trace(jit(jacfwd(lambda x: sq(x) * 3.0)), x)
    assert any("3 unrolled sweeps" in note for note in graph.meta["notes"])
    got = jacfwd(lambda x: sq(x) * 3.0, backend="interpret")(x)
    np.testing.assert_allclose(got, np.diag(6.0 * x), rtol=1e-12)
